#!/usr/bin/env node
// The core speed figures, in one run (`npm run bench`):
//   1. map + scan vs fs.readFileSync + scan of a 1 GiB file in the page cache, each in its
//      own child process so its peak anonymous memory (RssAnon) is its own;
//   2. 1,000,000 random 4-byte reads through a mapping vs fs.readSync;
//   3. one-page mmap + unmap vs a C loop (native/loops/map_unmap.c, compiled here with cc);
//   4. first writes over 256 MiB of anonymous memory vs the same loop in C.
// Prints a Markdown table for bench/RESULTS.md. Options: --size 1G, --repeat 5, --dir DIR,
// --only scan,random,map-unmap,first-writes (a subset of the sections), --quick (a tenth of
// the loops and 16 MiB of first writes: every row, for the test that runs them all, not for
// figures).
'use strict';
const { execFileSync } = require('node:child_process');
const { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { parseArgs } = require('node:util');

const lib = join(__dirname, '..', 'lib');

// In a child: run one scan and print its timing as JSON.
if (process.argv[2] === '--child') {
  const { io } = require(join(lib, 'cli', 'measure'));
  const [, , , variant, path] = process.argv;
  io.warmUpScan();
  const before = io.rssAnon();
  const timing = variant === 'mmap' ? io.scanMapped(path) : io.scanReadFile(path);
  process.stdout.write(JSON.stringify({ ...timing, rssAnonBefore: before }));
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    repeat: { type: 'string', default: '5' },
    dir: { type: 'string', default: tmpdir() },
    only: { type: 'string', default: 'scan,random,map-unmap,first-writes' },
    quick: { type: 'boolean', default: false },
  },
});
const scale = values.quick ? 10 : 1;
const only = new Set(values.only.split(','));
const { PAGE_SIZE, mmap, Prot, MapFlags } = require(lib);

const { createScratchFile, io, machineInfo, median, parseSize, runFaultBench, touchFile } = require(join(lib, 'cli', 'measure'));

const size = parseSize(values.size);
const repeat = Number(values.repeat);
const MiB = 2 ** 20;
const log = (text) => process.stderr.write(`${text}\n`);
const rows = [];
const row = (measure, library, baseline, ratio, goal, met) => rows.push({ measure, library, baseline, ratio, goal, met });

function scans(path) {
  const runs = { mmap: [], readFileSync: [] };
  for (let rep = 0; rep < repeat; rep++) {
    for (const variant of rep % 2 ? ['readFileSync', 'mmap'] : ['mmap', 'readFileSync']) {
      const out = execFileSync(process.execPath, [__filename, '--child', variant, path], { encoding: 'utf8' });
      runs[variant].push(JSON.parse(out));
    }
  }
  const mapped = median(runs.mmap.map((r) => r.ms));
  const copied = median(runs.readFileSync.map((r) => r.ms));
  const mappedAnon = Math.max(...runs.mmap.map((r) => r.rssAnon)) / MiB;
  const copiedAnon = Math.max(...runs.readFileSync.map((r) => r.rssAnon)) / MiB;
  if (runs.mmap[0].checksum !== runs.readFileSync[0].checksum) throw new Error('scan checksums differ');
  const ratio = copied / mapped;
  row(`map + scan ${values.size} (Uint32Array sum), ms`, mapped.toFixed(0), `readFileSync + scan: ${copied.toFixed(0)}`,
    `${ratio.toFixed(2)}× faster`, '≥ 2.5× faster', ratio >= 2.5);
  row('peak RssAnon during the scan, MiB', mappedAnon.toFixed(1), `readFileSync: ${copiedAnon.toFixed(1)}`,
    `${(copiedAnon / mappedAnon).toFixed(0)}× less`, '< 50 MiB', mappedAnon < 50);
}

function randomReads(path) {
  const indexes = io.randomWordIndexes(1_000_000 / scale, size >>> 2);
  const mapped = [];
  const syscalls = [];
  for (let rep = 0; rep < Math.max(3, repeat); rep++) {
    mapped.push(io.randomMapped(path, indexes).ms);
    syscalls.push(io.randomReadSync(path, indexes).ms);
  }
  const ratio = median(syscalls) / median(mapped);
  row(`${(1_000_000 / scale).toLocaleString('en-US')} random 4-byte reads (map included), ms`, median(mapped).toFixed(1),
    `fs.readSync: ${median(syscalls).toFixed(1)}`, `${ratio.toFixed(1)}× faster`, '≥ 10× faster', ratio >= 10);
}

function compileCLoop() {
  const dir = mkdtempSync(join(tmpdir(), 'mman-c-'));
  const binary = join(dir, 'map_unmap');
  execFileSync('cc', ['-O2', '-o', binary, join(__dirname, '..', 'native', 'loops', 'map_unmap.c')]);
  return { binary, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// The one-page map + unmap loops compared, from the bare C loop up to the public API; `fd`
// is a descriptor of a one-page file, for the file-backed loops. The public-API loops (the
// ones the goals are about) are PUBLIC_LOOPS; the others only show where the time goes.
const PUBLIC_LOOPS = new Set(['mmap() + unmap()', 'mmap() + .bytes + unmap()', 'file: mmap(fd) + unmap()', 'file: mmap(fd) + .bytes + unmap()']);
function mapUnmapVariants(fd) {
  const { rawAddon: native, lend, tools } = require(join(lib, 'internal.js'));
  const prot = Prot.Read | Prot.Write;
  const flags = MapFlags.Private | MapFlags.Anonymous;
  const OWNER = Symbol('owner'); // what Mapping does with each buffer it makes (ownerOf)
  const timed = (loop) => (iterations) => {
    const start = process.hrtime.bigint();
    loop(iterations);
    return Number(process.hrtime.bigint() - start) / iterations;
  };
  return {
    'C loop in this process (native mapUnmapLoop)': (iterations) => tools.mapUnmapLoop(iterations),
    'addon map() + unmap(), no Mapping object': timed((n) => {
      for (let i = 0; i < n; i++) native.unmap(native.map(PAGE_SIZE, prot, flags, -1, 0, undefined, '', 0, PAGE_SIZE), null, false);
    }),
    'addon map() + buffer() + unmap(), no Mapping object': timed((n) => {
      for (let i = 0; i < n; i++) {
        const handle = native.map(PAGE_SIZE, prot, flags, -1, 0, undefined, '', 0, PAGE_SIZE);
        native.unmap(handle, lend(undefined, handle, 0, PAGE_SIZE, true, false).buffer, false);
      }
    }),
    'addon map() + buffer() + new Uint8Array + unmap()': timed((n) => {
      for (let i = 0; i < n; i++) {
        const handle = native.map(PAGE_SIZE, prot, flags, -1, 0, undefined, '', 0, PAGE_SIZE);
        const buffer = lend(undefined, handle, 0, PAGE_SIZE, true, false).buffer;
        void new Uint8Array(buffer);
        native.unmap(handle, buffer, false);
      }
    }),
    'addon map() + buffer() + owner property + unmap()': timed((n) => {
      for (let i = 0; i < n; i++) {
        const handle = native.map(PAGE_SIZE, prot, flags, -1, 0, undefined, '', 0, PAGE_SIZE);
        const buffer = lend(undefined, handle, 0, PAGE_SIZE, true, false).buffer;
        buffer[OWNER] = handle;
        native.unmap(handle, buffer, false);
      }
    }),
    'mmap() + unmap()': timed((n) => {
      for (let i = 0; i < n; i++) mmap(PAGE_SIZE, prot, flags).unmap();
    }),
    'mmap() + .bytes + unmap()': timed((n) => {
      for (let i = 0; i < n; i++) {
        const mapping = mmap(PAGE_SIZE, prot, flags);
        void mapping.bytes;
        mapping.unmap();
      }
    }),
    'file: mmap(fd) + unmap()': timed((n) => {
      for (let i = 0; i < n; i++) mmap(PAGE_SIZE, Prot.Read, MapFlags.Shared, fd).unmap();
    }),
    'file: mmap(fd) + .bytes + unmap()': timed((n) => {
      for (let i = 0; i < n; i++) {
        const mapping = mmap(PAGE_SIZE, Prot.Read, MapFlags.Shared, fd);
        void mapping.bytes;
        mapping.unmap();
      }
    }),
  };
}

function mapUnmap() {
  let c;
  try {
    c = compileCLoop();
  } catch (err) {
    row('one-page mmap + unmap', 'n/a', `no C compiler: ${err.message.split('\n')[0]}`, '', '≤ 2× C', false);
    return;
  }
  const iterations = 200_000 / scale;
  const cPlain = [];
  const cTouched = [];
  const cFile = [];
  const page = join(c.dir, 'page.bin');
  writeFileSync(page, Buffer.alloc(PAGE_SIZE, 1));
  const fd = openSync(page, 'r');
  const variants = mapUnmapVariants(fd);
  const times = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  // The public loops first, alone: the raw-addon loops hand lend() buffers no Mapping made,
  // which changes the object shapes V8 has seen there and slowed every public loop after
  // them by up to a quarter (measured: file-backed .bytes 1.93x C alone, 2.29-2.36x after them).
  const publicLoops = Object.entries(variants).filter(([name]) => PUBLIC_LOOPS.has(name));
  const otherLoops = Object.entries(variants).filter(([name]) => !PUBLIC_LOOPS.has(name));
  try {
    for (const [, loop] of publicLoops) loop(20_000 / scale);
    for (let rep = 0; rep < repeat; rep++) {
      const out = JSON.parse(execFileSync(c.binary, [String(iterations), page], { encoding: 'utf8' }));
      cPlain.push(out.mapUnmapNs);
      cTouched.push(out.mapTouchUnmapNs);
      cFile.push(out.fileMapUnmapNs);
      for (const [name, loop] of publicLoops) times[name].push(loop(iterations));
    }
    for (const [, loop] of otherLoops) loop(20_000 / scale);
    for (let rep = 0; rep < repeat; rep++) {
      for (const [name, loop] of otherLoops) times[name].push(loop(iterations));
    }
  } finally {
    closeSync(fd);
    c.remove();
  }
  const base = median(cPlain);
  const plain = median(times['mmap() + unmap()']);
  const bytes = median(times['mmap() + .bytes + unmap()']);
  row('one-page mmap() + unmap(), ns', plain.toFixed(0), `C mmap + munmap (native/loops/map_unmap.c): ${base.toFixed(0)}`,
    `${(plain / base).toFixed(2)}× C`, '≤ 2× C', plain / base <= 2);
  row('one-page mmap() + .bytes + unmap(), ns', bytes.toFixed(0), `C mmap + munmap (native/loops/map_unmap.c): ${base.toFixed(0)}`,
    `${(bytes / base).toFixed(2)}× C`, '≤ 2× C', bytes / base <= 2);
  const fileBase = median(cFile);
  const fileBytes = median(times['file: mmap(fd) + .bytes + unmap()']);
  row('one-page file mmap(fd) + .bytes + unmap(), ns', fileBytes.toFixed(0),
    `C mmap(fd) + munmap, same descriptor: ${fileBase.toFixed(0)}`, `${(fileBytes / fileBase).toFixed(2)}× C`, '≤ 2× C',
    fileBytes / fileBase <= 2);
  row('(for scale) C mmap + write 1 byte + munmap, ns', '', median(cTouched).toFixed(0), '', '', null);
  for (const [name, values] of Object.entries(times)) {
    const against = name.startsWith('file:') ? fileBase : base;
    row(`(where the time goes) ${name}, ns`, median(values).toFixed(0), '', `${(median(values) / against).toFixed(2)}× C`, '', null);
  }
}

function firstWrites() {
  const report = runFaultBench({ size: (256 / scale) * MiB, kinds: ['anon-private-write'], repeat });
  const k = report.kinds[0];
  row(`first write per page, ${256 / scale} MiB anonymous, ns/page`, k.nsPerPage.toFixed(0), `C loop: ${k.nativeNsPerPage.toFixed(0)}`,
    `${k.ratio.toFixed(3)}× C`, '≤ 1.10× C', k.ratio <= 1.1);
}

const machine = machineInfo();
log(`machine: ${machine.cpus} CPUs, ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.node}`);
if (only.has('scan') || only.has('random')) {
  const file = createScratchFile(size, values.dir);
  try {
    touchFile(file.path);
    if (only.has('scan')) {
      log('scan: mmap vs readFileSync, each in a child process');
      scans(file.path);
    }
    if (only.has('random')) {
      log('random reads: mmap vs readSync');
      randomReads(file.path);
    }
  } finally {
    file.remove();
  }
}
if (only.has('map-unmap')) {
  log('one-page mmap + unmap vs C');
  mapUnmap();
}
if (only.has('first-writes')) {
  log('first writes over 256 MiB vs C');
  firstWrites();
}

console.log(`Machine: \`nproc\` ${machine.cpus}, ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.node}, THP ${machine.thp}; load average ${machine.loadAverage.toFixed(2)} at the start, ${require('node:os').loadavg()[0].toFixed(2)} at the end`);
console.log(`Command: \`npm run bench\` (node bench/core.js --size ${values.size} --repeat ${repeat}); medians of ${repeat} runs\n`);
console.log('| measure | mman | baseline | ratio | goal | met |');
console.log('|---|---:|---|---:|---|---|');
for (const r of rows) {
  console.log(`| ${r.measure} | ${r.library} | ${r.baseline} | ${r.ratio} | ${r.goal} | ${r.met === null ? '' : r.met ? 'yes' : '**no**'} |`);
}
