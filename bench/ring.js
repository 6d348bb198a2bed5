// RingBuffer with many writers and readers, against what a user would otherwise use: messages
// of 64 B and 4 KiB, one writer to one reader (1→1), four writers to one reader (4→1) and one
// writer to four readers (1→4), between processes and between worker threads:
//   ring-many   RingBuffer.create(1 MiB, { writers: 'many', readers: 'many' })
//   ring-one    RingBuffer.create(1 MiB), the one-writer one-reader ring (1→1 only)
//   ipc         process.send (serialization: 'advanced') between processes, postMessage
//               between threads; the receiver acknowledges every 1024 messages and a sender
//               keeps at most 8192 unacknowledged, so that no queue grows without bound
//   c           the same protocol as ring-many in C (native/loops/ring_mpmc.c, compiled here
//               with cc; fork() or pthreads), its own processes or threads
// This process is the reader for 1→1 and 4→1 and the writer for 1→4; the others are child
// processes (mman's fork) or worker threads. Messages per second over the whole run (from the
// moment every peer is ready to the last message read), and the one-way latency of every 64th
// message, from a CLOCK_MONOTONIC timestamp the writer puts in it (process.hrtime, the same
// clock in every process) to the moment its reader has it: p50 and p99 in µs. The writers run
// flat out, so that latency is mostly the time a message waits in a full queue (the ring holds
// 1 MiB: ~14,000 messages of 64 B, 255 of 4 KiB). A second table paces one writer to one
// message every PACE_US µs (busy-waiting in between), a rate every way keeps up with, and
// samples every message: the one-way latency of a queue that is not full (1→1, 64 B).
//
// The peers are new processes or threads each round, so a JavaScript way's rate includes the
// time its code takes to be compiled (tens of ms: a few percent of a round of 4,000,000 64 B
// or 800,000 4 KiB messages, which the rings and C each move; ipc moves a fortieth). With --warm,
// every ring peer, and this process, first runs WARM_MESSAGES through a ring of its own in one
// thread (write() then read(), in batches) before it says it is ready: the rate of compiled
// code, as C's is. ipc is not warmed (its cost is mostly Node's own, compiled or not).
//
//   node bench/ring.js [--quick] [--warm] [--json FILE] [--only ring-many,ring-one,ipc,c] [--paced-only]
//                      [--kind process,thread] [--topology 1-1,4-1,1-4] [--size 64,4096] [--no-paced]
//   node bench/ring.js --solo [--quick] [--size 64,4096]   (the CPU a message costs, one thread: see solo())
// (--kind, --topology and --size choose rows of the first table; --paced-only skips it, --no-paced the second)
'use strict';
const { execFileSync, fork: forkPlain } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { isMainThread, parentPort, workerData, Worker } = require('node:worker_threads');
const { RingBuffer, SharedMemory, fork } = require('../lib');

const QUICK = process.argv.includes('--quick');
const REPEAT = QUICK ? 1 : 3;
// Messages a run: the rings and C move the same number (a run of well over a second at 64 B, so
// that a rate is not mostly start-up); ipc a fortieth as many: it is far slower, and a rate is a rate.
const COUNT = { 64: QUICK ? 40_000 : 4_000_000, 4096: QUICK ? 8_000 : 800_000 };
const IPC_SHARE = 40;
const CAPACITY = 1 << 20;
const SAMPLE_EVERY = 64;
const ACK_EVERY = 1024;
const PACE_US = 100;
const PACED = QUICK ? 1_000 : 10_000;
const WINDOW = 8192;
const ROLE_ENV = 'MMAN_RING_BENCH_PEER';
const PACED_ONLY = process.argv.includes('--paced-only');
const WARM = process.argv.includes('--warm');
const WARM_MESSAGES = 100_000;
const SOLO_MESSAGES = QUICK ? 200_000 : 2_000_000;
const NO_PACED = process.argv.includes('--no-paced');
const list = (flag) => (process.argv.includes(flag) ? process.argv[process.argv.indexOf(flag) + 1].split(',') : undefined);
const ONLY = list('--only');
const KINDS = list('--kind') ?? ['process', 'thread'];
const TOPOLOGIES = list('--topology') ?? ['1-1', '4-1', '1-4'];
const SIZES = (list('--size') ?? ['64', '4096']).map(Number);

const now = () => Number(process.hrtime.bigint());

// ---- a peer: a child process or a worker thread ----

// `send` reports to the main thread/process; `inbox` yields what it sends here.
async function peer(task, shared, send, inbox) {
  const { way, role, size, count } = task;
  if (way === 'ipc') return ipcPeer(task, send, inbox);
  if (task.warm) warmUp(way, size);
  const ring = RingBuffer.attach(shared);
  send({ ready: true });
  await inbox.next(); // go
  if (role === 'writer') {
    const message = new Uint8Array(size).fill(task.id);
    const view = new DataView(message.buffer);
    const begin = now();
    for (let seq = 0; seq < count; seq++) {
      if (task.pace) while (now() < begin + seq * task.pace * 1e3);
      view.setFloat64(0, task.pace || seq % SAMPLE_EVERY === 0 ? now() : 0, true);
      ring.write(message);
    }
    await send({ done: count });
  } else {
    const samples = [];
    let got = 0;
    const stamps = new DataView(ring.mapping.buffer); // the timestamp at a message's offset, as C's memcpy reads it
    for (let m; (m = ring.read()) !== null; got++) {
      const t = stamps.getFloat64(m.byteOffset, true);
      if (t !== 0) samples.push(now() - t);
    }
    await send({ done: got, samples, end: now() });
  }
  ring.close();
}

// Runs WARM_MESSAGES of `size` bytes through a ring of this thread's own, of the kind `way`
// names: its write() and read() are compiled when the timed run starts.
function warmUp(way, size) {
  const ring = RingBuffer.create(CAPACITY, way === 'ring-many' ? { writers: 'many', readers: 'many' } : {});
  const message = new Uint8Array(size);
  const batch = Math.floor(CAPACITY / 2 / (size + 16));
  for (let done = 0; done < WARM_MESSAGES; done += batch) {
    for (let i = 0; i < batch; i++) ring.write(message);
    for (let i = 0; i < batch; i++) ring.read();
  }
  ring.close();
}

async function ipcPeer(task, send, inbox) {
  const { role, size, count } = task;
  send({ ready: true });
  if (role === 'writer') {
    await inbox.next(); // go
    const message = new Uint8Array(size).fill(task.id);
    const view = new DataView(message.buffer);
    let acked = 0;
    const begin = now();
    for (let seq = 0; seq < count; seq++) {
      while (seq - acked >= WINDOW) acked = (await inbox.next()).acked;
      // Paced, the wait turns the event loop: a message process.send() queued goes out then.
      if (task.pace) while (now() < begin + seq * task.pace * 1e3) await new Promise((resolve) => setImmediate(resolve));
      view.setFloat64(0, task.pace || seq % SAMPLE_EVERY === 0 ? now() : 0, true);
      void send(message);
    }
    await send({ done: count });
  } else {
    const samples = [];
    let got = 0;
    for (;;) {
      const m = await inbox.next();
      if (m === 'go') continue;
      if (m.end) break;
      const bytes = ArrayBuffer.isView(m) ? m : new Uint8Array(m);
      const t = new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);
      if (t !== 0) samples.push(now() - t);
      if (++got % ACK_EVERY === 0) void send({ acked: got });
    }
    await send({ done: got, samples, end: now() });
  }
}

// What arrives, as an async queue (messages come as events).
function inboxOf(subscribe) {
  const queued = [];
  const waiting = [];
  subscribe((m) => (waiting.length > 0 ? waiting.shift()(m) : queued.push(m)));
  return { next: () => (queued.length > 0 ? Promise.resolve(queued.shift()) : new Promise((r) => waiting.push(r))) };
}

if (process.env[ROLE_ENV]) {
  const task = JSON.parse(process.env[ROLE_ENV]);
  const shared = task.way === 'ipc' ? undefined : SharedMemory.inherited()[0];
  const inbox = inboxOf((listener) => process.on('message', listener));
  // The last report is awaited: disconnect() would drop what is still queued.
  peer(task, shared, (m) => new Promise((resolve) => process.send(m, resolve)), inbox).then(
    () => process.disconnect(),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
} else if (!isMainThread) {
  const { task, handle } = workerData;
  const shared = handle === undefined ? undefined : SharedMemory.from(handle);
  const inbox = inboxOf((listener) => parentPort.on('message', listener));
  peer(task, shared, (m) => parentPort.postMessage(m), inbox).then(() => parentPort.close());
}

// ---- the main process ----

// Starts a peer for `task`: { send(m), inbox, exited }.
function start(kind, task, ring) {
  if (kind === 'thread') {
    const w = new Worker(__filename, { workerData: { task, handle: ring?.memory.share() } });
    return { send: (m) => w.postMessage(m), inbox: inboxOf((l) => w.on('message', l)), exited: new Promise((r) => w.on('exit', r)) };
  }
  const env = { ...process.env, [ROLE_ENV]: JSON.stringify(task) };
  const options = { env, serialization: 'advanced' };
  const child = ring ? fork(__filename, [], { ...options, share: [ring.memory] }) : forkPlain(__filename, [], options);
  child.on('error', () => {}); // an acknowledgement sent as a writer that had its last one left: nobody needs it
  return {
    send: (m) => child.connected && child.send(m),
    inbox: inboxOf((l) => child.on('message', l)),
    exited: new Promise((r) => child.on('exit', r)),
  };
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

// One run of a JavaScript way: { rate, p50, p99 } (µs).
async function runJs(kind, way, writers, readers, size, pace = 0) {
  const total = pace ? PACED : way === 'ipc' ? COUNT[size] / IPC_SHARE : COUNT[size];
  const ring =
    way === 'ipc' ? undefined : RingBuffer.create(CAPACITY, way === 'ring-many' ? { writers: 'many', readers: 'many' } : {});
  const mainReads = readers === 1;
  const warm = WARM && way !== 'ipc';
  if (warm) warmUp(way, size);
  const peers = [];
  if (mainReads) for (let id = 1; id <= writers; id++) peers.push(start(kind, { way, role: 'writer', id, size, count: total / writers, pace, warm }, ring));
  else for (let id = 1; id <= readers; id++) peers.push(start(kind, { way, role: 'reader', id, size, warm }, ring));
  for (const p of peers) await p.inbox.next(); // ready
  const samples = [];
  let ends = [];
  const t0 = now();
  for (const p of peers) p.send('go');
  if (mainReads) {
    if (way === 'ipc') {
      // Every writer's messages arrive here as events; acknowledge them in windows.
      await Promise.all(
        peers.map(async (p) => {
          for (let got = 0; got < total / writers; ) {
            const m = await p.inbox.next();
            if (!ArrayBuffer.isView(m)) continue;
            const t = new DataView(m.buffer, m.byteOffset, 8).getFloat64(0, true);
            if (t !== 0) samples.push(now() - t);
            if (++got % ACK_EVERY === 0 && got < total / writers) p.send({ acked: got });
          }
        }),
      );
    } else {
      const stamps = new DataView(ring.mapping.buffer);
      for (let got = 0; got < total; got++) {
        const m = ring.read();
        const t = stamps.getFloat64(m.byteOffset, true);
        if (t !== 0) samples.push(now() - t);
      }
    }
    ends = [now()];
    for (const p of peers) while (!(await p.inbox.next()).done);
  } else {
    const message = new Uint8Array(size).fill(9);
    const view = new DataView(message.buffer);
    if (way === 'ipc') {
      const sent = peers.map(() => 0);
      const acked = peers.map(() => 0);
      const pump = peers.map((p, i) => (async () => { for (;;) { const m = await p.inbox.next(); if (m.acked) acked[i] = m.acked; else return m; } })());
      for (let seq = 0; seq < total; seq++) {
        const i = seq % readers;
        while (sent[i] - acked[i] >= WINDOW) await new Promise((r) => setImmediate(r));
        view.setFloat64(0, seq % SAMPLE_EVERY === 0 ? now() : 0, true);
        peers[i].send(message);
        sent[i]++;
      }
      for (const p of peers) p.send({ end: true });
      for (const report of await Promise.all(pump)) {
        samples.push(...report.samples);
        ends.push(report.end);
      }
    } else {
      for (let seq = 0; seq < total; seq++) {
        view.setFloat64(0, seq % SAMPLE_EVERY === 0 ? now() : 0, true);
        ring.write(message);
      }
      ring.end();
      for (const p of peers) {
        const report = await p.inbox.next();
        samples.push(...report.samples);
        ends.push(report.end);
      }
    }
  }
  await Promise.all(peers.map((p) => p.exited));
  ring?.close();
  samples.sort((a, b) => a - b);
  return { rate: total / ((Math.max(...ends) - t0) / 1e9), p50: percentile(samples, 50) / 1e3, p99: percentile(samples, 99) / 1e3 };
}

function runC(binary, kind, writers, readers, size, pace = 0) {
  const count = pace ? PACED : COUNT[size];
  const args = [kind === 'thread' ? 'thread' : 'proc', writers, readers, size, count, CAPACITY, 20000, pace * 1e3];
  const out = execFileSync(binary, args.map(String), {
    encoding: 'utf8',
  });
  const r = JSON.parse(out);
  return { rate: r.messages / r.seconds, p50: r.p50 / 1e3, p99: r.p99 / 1e3 };
}

const { median } = require('../lib/cli/measure/stats'); // the one median every benchmark takes

// --solo: the CPU a message costs each side, in one thread with no other side (no waiting, no
// cache line moving between CPUs): batches of write() then as many read()s (and release(), on
// the one-writer ring) on a ring of this thread's own, four rounds, the last three reported (ns
// a message); C's `ring_mpmc solo` does the same with the protocol's C code.
function soloJs(way, size, messages) {
  const ring = RingBuffer.create(CAPACITY, way === 'ring-many' ? { writers: 'many', readers: 'many' } : {});
  const message = new Uint8Array(size).fill(7);
  const view = new DataView(message.buffer);
  const stamps = new DataView(ring.mapping.buffer);
  const batch = Math.floor(CAPACITY / 2 / (size + 16));
  const one = way === 'ring-one';
  const rounds = [];
  let sum = 0;
  for (let round = 0; round < 4; round++) {
    let write = 0;
    let read = 0;
    let done = 0;
    for (; done < messages; done += batch) {
      const t0 = now();
      for (let i = 0; i < batch; i++) {
        view.setFloat64(0, i % SAMPLE_EVERY === 0 ? now() : 0, true);
        ring.write(message);
      }
      const t1 = now();
      for (let i = 0; i < batch; i++) {
        sum += stamps.getFloat64(ring.read().byteOffset, true);
        if (one) ring.release();
      }
      read += now() - t1;
      write += t1 - t0;
    }
    if (round > 0) rounds.push({ write: write / done, read: read / done });
  }
  ring.close();
  return sum === -1 ? [] : rounds;
}

function solo(binary) {
  const rows = [];
  const messages = SOLO_MESSAGES;
  console.log(`one thread, ns a message (rounds 2-4 of 4, ${messages} messages each): write / read, and ÷ C`);
  for (const size of SIZES) {
    const c = binary
      ? execFileSync(binary, ['solo', size, messages, CAPACITY].map(String), { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l))
      : undefined;
    const cw = c && median(c.map((r) => r.write));
    const cr = c && median(c.map((r) => r.read));
    if (c) rows.push({ size, way: 'c', write: cw, read: cr, rounds: c });
    for (const way of ['ring-many', 'ring-one']) {
      const rounds = soloJs(way, size, messages);
      const w = median(rounds.map((r) => r.write));
      const r = median(rounds.map((r) => r.read));
      rows.push({ size, way, write: w, read: r, rounds });
      console.log(
        `solo ${String(size).padStart(4)} B  ${way.padEnd(9)} write ${w.toFixed(1).padStart(6)} ns  read ${r.toFixed(1).padStart(6)} ns` +
          (c ? `  (÷ C: ${(w / cw).toFixed(2)} / ${(r / cr).toFixed(2)})` : '') +
          `  rounds: ${rounds.map((x) => `${x.write.toFixed(0)}/${x.read.toFixed(0)}`).join(', ')}`,
      );
    }
    if (c) console.log(`solo ${String(size).padStart(4)} B  c         write ${cw.toFixed(1).padStart(6)} ns  read ${cr.toFixed(1).padStart(6)} ns  rounds: ${c.map((x) => `${x.write.toFixed(0)}/${x.read.toFixed(0)}`).join(', ')}`);
  }
  return rows;
}

async function main() {
  const jsonAt = process.argv.indexOf('--json');
  let binary;
  let cSkipped;
  const dir = mkdtempSync(join(os.tmpdir(), 'mman-ring-bench-'));
  try {
    binary = join(dir, 'ring_mpmc');
    execFileSync('cc', ['-O2', '-pthread', '-o', binary, join(__dirname, '..', 'native', 'loops', 'ring_mpmc.c')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    binary = undefined;
    cSkipped = `no C compiler: ${String(err.message).split('\n')[0]}`;
  }
  if (process.argv.includes('--solo')) {
    console.log(`${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    const rows = solo(binary);
    if (cSkipped) console.log(`c: skipped (${cSkipped})`);
    rmSync(dir, { recursive: true, force: true });
    if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ solo: rows, messages: SOLO_MESSAGES, cSkipped }, null, 2));
    return;
  }
  console.log(`${os.cpus().length} CPUs, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; ${REPEAT} round(s), medians${WARM ? `; ring peers warmed with ${WARM_MESSAGES} messages` : ''}`);
  const rows = [];
  const topologies = TOPOLOGIES.map((t) => t.split('-').map(Number));
  for (const kind of PACED_ONLY ? [] : KINDS) {
    for (const [writers, readers] of topologies) {
      for (const size of SIZES) {
        const ways = ['ring-many', ...(writers === 1 && readers === 1 ? ['ring-one'] : []), 'ipc', 'c'];
        for (const way of ways) {
          if (way === 'c' && binary === undefined) continue;
          if (ONLY !== undefined && !ONLY.includes(way)) continue;
          const runs = [];
          for (let i = 0; i < REPEAT; i++) {
            runs.push(way === 'c' ? runC(binary, kind, writers, readers, size) : await runJs(kind, way, writers, readers, size));
          }
          const row = {
            kind,
            topology: `${writers}→${readers}`,
            size,
            way,
            rate: median(runs.map((r) => r.rate)),
            p50: median(runs.map((r) => r.p50)),
            p99: median(runs.map((r) => r.p99)),
            rates: runs.map((r) => Math.round(r.rate)),
          };
          rows.push(row);
          console.log(
            `${kind.padEnd(7)} ${row.topology} ${String(size).padStart(4)} B  ${way.padEnd(9)} ${(row.rate / 1e6).toFixed(3).padStart(8)} M msg/s` +
              `  p50 ${row.p50.toFixed(1).padStart(9)} µs  p99 ${row.p99.toFixed(1).padStart(9)} µs  (rounds: ${row.rates.map((r) => (r / 1e6).toFixed(3)).join(', ')})`,
          );
        }
      }
    }
  }
  if (!NO_PACED) console.log(`paced: one 64 B message every ${PACE_US} µs, 1→1, every message's latency`);
  for (const kind of NO_PACED ? [] : ['process', 'thread']) {
    for (const way of ['ring-many', 'ring-one', 'ipc', 'c']) {
      if (way === 'c' && binary === undefined) continue;
      if (ONLY !== undefined && !ONLY.includes(way)) continue;
      const runs = [];
      for (let i = 0; i < REPEAT; i++) {
        runs.push(way === 'c' ? runC(binary, kind, 1, 1, 64, PACE_US) : await runJs(kind, way, 1, 1, 64, PACE_US));
      }
      const row = { kind, topology: '1→1', size: 64, way, paced: PACE_US, p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) };
      rows.push(row);
      console.log(
        `${kind.padEnd(7)} 1→1   64 B  ${way.padEnd(9)} paced    p50 ${row.p50.toFixed(1).padStart(9)} µs  p99 ${row.p99.toFixed(1).padStart(9)} µs  (rounds p50: ${runs.map((r) => r.p50.toFixed(1)).join(', ')})`,
      );
    }
  }
  if (cSkipped) console.log(`c: skipped (${cSkipped})`);
  rmSync(dir, { recursive: true, force: true });
  if (jsonAt > 0) writeFileSync(process.argv[jsonAt + 1], JSON.stringify({ rows, cSkipped }, null, 2));
}

if (isMainThread && !process.env[ROLE_ENV]) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
