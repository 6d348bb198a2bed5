// Mutex and wait/notify between processes, against what a user would otherwise use:
//   (a) uncontended lock() + unlock() against Atomics.compareExchange + store alone;
//   (b) two processes incrementing one counter under the Mutex, against the child asking
//       the parent to increment it through process.send (a request and its answer);
//   (c) the wait/notify ping-pong against the same protocol in C (native/loops/futex_pingpong.c:
//       two processes, FUTEX_WAIT/FUTEX_WAKE on one word, the same spin, a wake every round
//       trip).
//
//   node bench/mutex.js            (add --quick for short rounds)
'use strict';
const { execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const os = require('node:os');
const { join } = require('node:path');
const { SharedMemory, Mutex, fork, wait, notify } = require('../lib');
const { median } = require('../lib/cli/measure');

const QUICK = process.argv.includes('--quick');
const REPEAT = QUICK ? 3 : 5;
const UNCONTENDED = QUICK ? 1_000_000 : 10_000_000;
const CONTENDED = QUICK ? 20_000 : 200_000;
const SENDS = QUICK ? 5_000 : 20_000;
const PINGS = QUICK ? 5_000 : 20_000;
const SPINS = [0, 2000, 20000];

// Words, each on its own cache line.
const LOCK = 0, COUNTER = 16, GO = 32, PING = 48, PONG = 64, ARG = 80;

if (process.env.MMAN_MUTEX_BENCH_CHILD) {
  const v = new Int32Array(SharedMemory.inherited()[0].map().buffer);
  const mutex = new Mutex(v, LOCK);
  process.on('message', (m) => {
    if (m.type === 'contend') {
      process.send('ready');
      while (Atomics.load(v, GO) === 0) wait(v, GO, 0);
      for (let i = 0; i < m.n; i++) {
        mutex.lock();
        v[COUNTER] = v[COUNTER] + 1;
        mutex.unlock();
      }
      process.send('done');
    } else if (m.type === 'send') {
      let i = 0;
      const onAck = (a) => {
        if (a !== 'ack') return;
        if (i++ < m.n) return process.send('increment');
        process.off('message', onAck);
        process.send('done');
      };
      process.on('message', onAck);
      i++;
      process.send('increment');
    } else if (m.type === 'ping') {
      const spin = m.spin;
      for (let i = 1; i <= m.n; i++) {
        while (Atomics.load(v, PING) !== i) wait(v, PING, i - 1, undefined, { spin }); // sleeps while it is i - 1
        Atomics.store(v, PONG, i);
        notify(v, PONG, 1);
      }
      process.send('done');
    } else if (m.type === 'exit') {
      process.exit(0);
    }
  });
  process.send('up');
  return;
}

const next = (child) => new Promise((resolve) => child.once('message', resolve));
const ns = (start) => Number(process.hrtime.bigint() - start);

async function main() {
  const shm = SharedMemory.create(4096);
  const v = new Int32Array(shm.map().buffer);
  const mutex = new Mutex(v, LOCK);
  const child = fork(__filename, [], { share: [shm], env: { ...process.env, MMAN_MUTEX_BENCH_CHILD: '1' } });
  await next(child);
  const rows = [];
  const row = (what, value, baseline, ratio) => rows.push({ what, value, baseline, ratio });

  // (a) uncontended
  const lockNs = [], casNs = [];
  for (let r = 0; r < REPEAT; r++) {
    let start = process.hrtime.bigint();
    for (let i = 0; i < UNCONTENDED; i++) { mutex.lock(); mutex.unlock(); }
    lockNs.push(ns(start) / UNCONTENDED);
    start = process.hrtime.bigint();
    for (let i = 0; i < UNCONTENDED; i++) {
      if (Atomics.compareExchange(v, ARG, 0, 1) === 0) Atomics.store(v, ARG, 0);
    }
    casNs.push(ns(start) / UNCONTENDED);
  }
  row('uncontended lock() + unlock(), ns', median(lockNs), `Atomics.compareExchange + store: ${median(casNs).toFixed(1)}`,
    median(lockNs) / median(casNs));

    // (b) contended, two processes
  const contendNs = [], sendNs = [];
  for (let r = 0; r < REPEAT; r++) {
    v[COUNTER] = 0;
    Atomics.store(v, GO, 0);
    const ready = next(child);
    child.send({ type: 'contend', n: CONTENDED });
    await ready;
    const start = process.hrtime.bigint();
    Atomics.store(v, GO, 1);
    notify(v, GO);
    for (let i = 0; i < CONTENDED; i++) { mutex.lock(); v[COUNTER] = v[COUNTER] + 1; mutex.unlock(); }
    await next(child);
    contendNs.push(ns(start) / (2 * CONTENDED));
    if (v[COUNTER] !== 2 * CONTENDED) throw new Error(`lost increments: ${v[COUNTER]}`);

    let counter = 0;
    const sendStart = process.hrtime.bigint();
    await new Promise((resolve) => {
      const onMessage = (m) => {
        if (m === 'increment') { counter++; child.send('ack'); }
        else if (m === 'done') { child.off('message', onMessage); resolve(); }
      };
      child.on('message', onMessage);
      child.send({ type: 'send', n: SENDS });
    });
    sendNs.push(ns(sendStart) / SENDS);
    if (counter !== SENDS) throw new Error('lost sends');
  }
  row('two processes incrementing under the lock, ns per increment', median(contendNs),
    `process.send request + answer: ${median(sendNs).toFixed(0)}`, median(contendNs) / median(sendNs));

    // (c) ping-pong against C
  const dir = mkdtempSync(join(os.tmpdir(), 'mman-bench-'));
  const binary = join(dir, 'futex_pingpong');
  try {
    execFileSync('cc', ['-O2', '-o', binary, join(__dirname, '..', 'native', 'loops', 'futex_pingpong.c')]);
    for (const spin of SPINS) {
      const js = [], c = [];
      for (let r = 0; r < REPEAT; r++) {
        Atomics.store(v, PING, 0);
        Atomics.store(v, PONG, 0);
        const done = next(child);
        // Sent for sure before this thread blocks in wait(): IPC writes happen on the event loop.
        await new Promise((resolve) => child.send({ type: 'ping', n: PINGS, spin }, resolve));
        const start = process.hrtime.bigint();
        for (let i = 1; i <= PINGS; i++) {
          Atomics.store(v, PING, i);
          notify(v, PING, 1);
          while (Atomics.load(v, PONG) !== i) wait(v, PONG, i - 1, undefined, { spin });
        }
        js.push(ns(start) / PINGS);
        await done;
        c.push(Number(execFileSync(binary, [String(PINGS), String(spin)], { encoding: 'utf8' })));
      }
      row(`wait/notify ping-pong, spin ${spin}, ns per round trip`, median(js), `C: ${median(c).toFixed(0)}`,
        median(js) / median(c));
    }
    // Where a round trip's time goes beyond C's: each side makes one notify() (a FUTEX_WAKE)
    // and at least one wait() call per round trip.
    const CALLS = QUICK ? 200_000 : 1_000_000;
    const notifyNs = [], waitNs = [], wakeC = [];
    for (let r = 0; r < REPEAT; r++) {
      let start = process.hrtime.bigint();
      for (let i = 0; i < CALLS; i++) notify(v, ARG, 1);
      notifyNs.push(ns(start) / CALLS);
      Atomics.store(v, ARG, 7);
      start = process.hrtime.bigint();
      for (let i = 0; i < CALLS; i++) wait(v, ARG, 0);
      waitNs.push(ns(start) / CALLS);
      Atomics.store(v, ARG, 0);
      wakeC.push(Number(execFileSync(binary, ['wake', String(CALLS)], { encoding: 'utf8' })));
    }
    row('(where it goes) notify() with no waiter: validation, the call, FUTEX_WAKE, ns', median(notifyNs),
      `C FUTEX_WAKE alone: ${median(wakeC).toFixed(0)}`, median(notifyNs) / median(wakeC));
    row('(where it goes) wait() on a word already changed (returns at once), ns', median(waitNs), 'no syscall', NaN);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  child.send({ type: 'exit' });

  console.log(`${os.cpus().length} CPUs, ${os.cpus()[0].model}, Linux ${os.release()}, Node ${process.version}, load ${os.loadavg()[0].toFixed(2)}; median of ${REPEAT}`);
  console.log('| measure | mman | baseline | × baseline |');
  console.log('|---|---:|---|---:|');
  for (const r of rows) {
    const ratio = Number.isNaN(r.ratio) ? '' : r.ratio < 0.1 ? `${(1 / r.ratio).toFixed(0)}× faster` : r.ratio.toFixed(2);
    console.log(`| ${r.what} | ${r.value.toFixed(1)} | ${r.baseline} | ${ratio} |`);
  }
  shm.close();
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
