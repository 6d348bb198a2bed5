// N node:cluster workers (1, 2, 4) each opening one large read-only file: mapFile() (one copy of
// the file, the page cache's, mapped by every worker) against fs.readFileSync() (a copy in each
// worker's heap). Per configuration: each worker's time to open (ms: the mapFile() call, or the
// whole read), its time to touch every page (a sum of one byte a page), and the PSS of the
// primary and all workers together (/proc/<pid>/smaps_rollup) once every worker has touched the
// whole file. The file is written to a temp directory and read once first, so every run reads
// from the page cache. The two methods alternate, and each configuration runs ROUNDS times: the
// medians are reported.
//
//   node bench/cluster.js                   (--size MiB, default 256; --rounds, default 3;
//                                            --workers 1,2,4; --quick: 64 MiB, one round)
'use strict';
const cluster = require('node:cluster');
const fs = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { parseArgs } = require('node:util');
const { PAGE_SIZE, mapFile } = require('../lib');
const { machineInfo, median } = require('../lib/cli/measure');

const MIB = 1 << 20;

// Sums one byte of every page: each page is faulted in (mapFile) or read (a Buffer in the heap).
function touch(bytes) {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += PAGE_SIZE) sum += bytes[i];
  return sum;
}

if (cluster.isWorker) {
  const { BENCH_METHOD: method, BENCH_FILE: file } = process.env;
  const t0 = process.hrtime.bigint();
  const bytes =
    method === 'mapFile' ? mapFile(file, { mode: 'r' }).bytes : method === 'readFileSync' ? fs.readFileSync(file) : null;
  const t1 = process.hrtime.bigint();
  const sum = bytes === null ? 0 : touch(bytes);
  const t2 = process.hrtime.bigint();
  process.send({ openMs: Number(t1 - t0) / 1e6, touchMs: Number(t2 - t1) / 1e6, sum, length: bytes?.length ?? 0 });
  // Stay, with the file in hand, until the primary has read every worker's PSS.
  process.on('disconnect', () => void bytes?.[0]);
} else {
  const { values } = parseArgs({
    options: {
      size: { type: 'string' },
      rounds: { type: 'string' },
      workers: { type: 'string', default: '1,2,4' },
      quick: { type: 'boolean', default: false },
    },
  });
  const size = Number(values.size ?? (values.quick ? 64 : 256)) * MIB;
  const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
  const counts = values.workers.split(',').map(Number);
  const machine = machineInfo();

  const dir = fs.mkdtempSync(join(os.tmpdir(), 'mman-bench-cluster-'));
  const file = join(dir, 'data.bin');
  const chunk = Buffer.alloc(MIB);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  const fd = fs.openSync(file, 'w');
  for (let written = 0; written < size; written += MIB) fs.writeSync(fd, chunk, 0, Math.min(MIB, size - written));
  fs.closeSync(fd);
  // Warm the page cache (every run below reads the file from memory), in chunks: the primary
  // keeps no copy of its own.
  let expected = 0;
  {
    const rfd = fs.openSync(file, 'r');
    for (let at = 0, n; (n = fs.readSync(rfd, chunk, 0, MIB, at)) > 0; at += n) expected += touch(chunk.subarray(0, n));
    fs.closeSync(rfd);
  }

  // PSS in kB of a process, from its smaps_rollup.
  const pss = (pid) => Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'))[1]);

  // Forks `n` workers opening the file with `method`; once all have touched it, the PSS of the
  // primary and the workers, then the workers leave.
  async function run(method, n) {
    const workers = [];
    const reports = [];
    await new Promise((resolve, reject) => {
      for (let i = 0; i < n; i++) {
        const worker = cluster.fork({ BENCH_METHOD: method, BENCH_FILE: file });
        workers.push(worker);
        worker.once('message', (report) => {
          reports.push(report);
          if (reports.length === n) resolve();
        });
        worker.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
      }
    });
    const totalPssKb = pss(process.pid) + workers.reduce((sum, w) => sum + pss(w.process.pid), 0);
    await Promise.all(workers.map((w) => new Promise((resolve) => { w.once('exit', resolve); w.disconnect(); })));
    for (const r of reports) {
      if (method !== 'none' && (r.sum !== expected || r.length !== size)) throw new Error(`a worker read other bytes: ${JSON.stringify(r)}`);
    }
    return { openMs: median(reports.map((r) => r.openMs)), touchMs: median(reports.map((r) => r.touchMs)), pssMiB: totalPssKb / 1024 };
  }

  (async () => {
    const startLoad = os.loadavg()[0];
    const results = {};
    for (let round = 0; round < rounds; round++) {
      for (const n of counts) {
        // 'none': workers that open nothing, the baseline PSS of the primary and n workers.
        const order = round % 2 === 0 ? ['none', 'mapFile', 'readFileSync'] : ['readFileSync', 'mapFile', 'none'];
        for (const method of order) ((results[`${method} ${n}`] ??= []).push(await run(method, n)));
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });

    const pick = (key, field) => median(results[key].map((r) => r[field]));
    console.log(`Machine: \`nproc\` ${machine.cpus}, ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.node}; load average ${startLoad.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end`);
    console.log(`File: ${size / MIB} MiB, in the page cache; ${rounds} round(s), medians; PSS of the primary and every worker, each having touched every page\n`);
    console.log(
      '| workers | open, mapFile (ms/worker) | open, readFileSync (ms/worker) | readFileSync / mapFile | touch, mapFile (ms) | touch, readFileSync (ms) | PSS, no file (MiB) | PSS, mapFile (MiB) | PSS, readFileSync (MiB) | readFileSync / mapFile | above no file: mapFile | readFileSync | readFileSync / mapFile |',
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const n of counts) {
      const m = (f) => pick(`mapFile ${n}`, f);
      const r = (f) => pick(`readFileSync ${n}`, f);
      const base = pick(`none ${n}`, 'pssMiB');
      console.log(
        `| ${n} | ${m('openMs').toFixed(3)} | ${r('openMs').toFixed(1)} | ${(r('openMs') / m('openMs')).toFixed(0)}× | ` +
          `${m('touchMs').toFixed(1)} | ${r('touchMs').toFixed(1)} | ${base.toFixed(0)} | ${m('pssMiB').toFixed(0)} | ${r('pssMiB').toFixed(0)} | ` +
          `${(r('pssMiB') / m('pssMiB')).toFixed(2)}× | ${(m('pssMiB') - base).toFixed(0)} | ${(r('pssMiB') - base).toFixed(0)} | ` +
          `${((r('pssMiB') - base) / (m('pssMiB') - base)).toFixed(2)}× |`,
      );
    }
  })().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
