// Shared memory against process.send between the same parent and forked child:
//   (a) round-trip latency of a ping-pong (futex wait/notify, with and without a spin)
//   (b) moving 1 GiB parent -> child in 1 MiB messages (RingBuffer vs process.send with
//       serialization: 'advanced').
//   (c) the ping-pong of (a), the documented low-latency protocol (wait with spin and
//       waitersIndex, notify with waitersIndex), against the same protocol in C at the same
//       spin (native/loops/futex_pingpong.c ... waiters, compiled here with cc), and a
//       RingBuffer ping-pong (a 64-byte message each way) beside it.
// Also measures what the spin costs: how long N iterations take, and CPU time per round trip.
//
//   node bench/ipc.js            (add --quick for one short round)
'use strict';
const os = require('node:os');
const { execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { SharedMemory, RingBuffer, fork, wait, notify } = require('../lib');
const { median } = require('../lib/cli/measure');

const QUICK = process.argv.includes('--quick');
const MIB = 1 << 20;
const TOTAL = QUICK ? 256 * MIB : 1024 * MIB;
const MESSAGE = MIB;
const RING = Number(process.env.RING_MIB || 4) * MIB;
const PINGS_SEND = QUICK ? 1000 : 5000;
const PINGS_SHM = QUICK ? 5000 : 20000;
const ROUNDS_OF_ALL = QUICK ? 1 : 5;  // the machine is shared: repeat, report each round and the median
const SPINS = [0, 500, 2000, 5000, 20000, 100000];
const C_SPINS = [0, 2000, 20000]; // (c): the spins compared with C
const RING_PINGS = QUICK ? 5000 : 20000;

// Ping-pong words, each on its own cache line: PING (parent writes), PONG (child writes),
// and the two waiter counts that let notify skip the syscall.
const PING = 0, PONG = 16, PING_WAITERS = 32, PONG_WAITERS = 48, SPIN = 64, ROUNDS = 65;
const ARG = 80, ARG_WAITERS = 96; // (c)'s call costs: a word nobody waits on, and its waiter count

function pingPongChild(v) {
  const spin = v[SPIN];
  const rounds = v[ROUNDS];
  const parent = process.ppid;
  for (let i = 1; i <= rounds; i++) {
    while (Atomics.load(v, PING) !== i) {
      // A parent that died mid-round never pings again: look for that once a second.
      if (wait(v, PING, i - 1, 1000, { spin, waitersIndex: PING_WAITERS }) === 'timed-out' && process.ppid !== parent) process.exit(1);
    }
    Atomics.store(v, PONG, i);
    notify(v, PONG, 1, { waitersIndex: PONG_WAITERS });
  }
}

if (process.env.MMAN_IPC_BENCH_CHILD) {
  const [pingMemory, ringMemory, requestMemory, replyMemory] = SharedMemory.inherited();
  const v = new Int32Array(pingMemory.map().buffer);
  const ring = RingBuffer.attach(ringMemory);
  const ringPair = [RingBuffer.attach(requestMemory), RingBuffer.attach(replyMemory)];
  let received = 0;
  let checksum = 0;
  process.on('message', (m) => {
    if (m === 'ping') return process.send('pong');
    if (m === 'shm-ping') {
      const cpu = process.cpuUsage();
      pingPongChild(v);
      const used = process.cpuUsage(cpu);
      return process.send({ cpuMicros: used.user + used.system });
    }
    if (m === 'ring') {
      let count = 0;
      let bytes = 0;
      // A view of the ring: no copy. An empty message ends the round (end() would end the ring).
      for (let msg; (msg = ring.read()).length !== 0;) {
        count += 1;
        bytes += msg.length;
        checksum += msg[0] + msg[msg.length - 1];
      }
      return process.send({ count, bytes, checksum });
    }
    if (m === 'ring-ping') {
      const [requests, replies] = ringPair;
      // Echo each message back; an empty one ends the round (the rings go on to the next). A
      // parent that died mid-round never sends it: look for that once a second.
      const parent = process.ppid;
      for (;;) {
        const msg = requests.read({ timeoutMs: 1000 });
        if (msg === undefined && process.ppid !== parent) process.exit(1);
        if (msg === undefined) continue;
        if (msg === null || msg.length === 0) break;
        replies.write(msg);
      }
      return process.send('ring-ping-done');
    }
    if (m === 'bye') return process.disconnect();
    if (m === 'reset') { received = 0; return process.send('reset'); }
    // A Buffer sent with serialization 'advanced' arrives as a Uint8Array.
    received += m.length;
    checksum += m[0] + m[m.length - 1];
    process.send(received);
  });
  process.send('ready');
  return;
}

const nextMessage = (child) => new Promise((resolve) => child.once('message', resolve));
const micros = (t0) => Number(process.hrtime.bigint() - t0) / 1000;
const fmt = (n, d = 1) => n.toFixed(d);
// A ratio keeps three significant digits: one side slowed by other load can make it 0.004, not 0.00.
const ratio = (x) => x.toPrecision(3);

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function main() {
  const pingMemory = SharedMemory.create(4096);
  const v = new Int32Array(pingMemory.map().buffer);
  const ring = RingBuffer.create(RING);
  const requests = RingBuffer.create(1 << 16);
  const replies = RingBuffer.create(1 << 16);
  const child = fork(__filename, [], {
    share: [pingMemory, ring.memory, requests.memory, replies.memory],
    serialization: 'advanced',
    env: { ...process.env, MMAN_IPC_BENCH_CHILD: '1' },
  });
  await nextMessage(child);
  console.log(`machine: nproc ${os.availableParallelism()}, ${os.cpus()[0].model}, Linux ${os.release()}, Node ${process.version}`);
  console.log(`load average at the start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const payload = Buffer.alloc(MESSAGE, 7);
  const dir = mkdtempSync(join(os.tmpdir(), 'mman-ipc-'));
  const cLoop = compileC(dir);
  const rounds = [];
  try {
    for (let round = 1; round <= ROUNDS_OF_ALL; round++) {
      console.log(`\n-- round ${round} of ${ROUNDS_OF_ALL}`);
      rounds.push(await measure(child, v, ring, payload));
      rounds[rounds.length - 1].c = await measureC(cLoop, child, v);
      rounds[rounds.length - 1].ringPing = await measureRingPing(child, requests, replies);
      rounds[rounds.length - 1].calls = callCosts(v);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  child.send('bye');

  const latency0 = rounds.map((r) => r.sendMean / r.shm[0].mean);
  const latencyDefault = rounds.map((r) => r.sendMean / r.shm[20000].mean);
  const latencyDefaultMedian = rounds.map((r) => r.sendMedian / r.shm[20000].median);
  const throughput = rounds.map((r) => r.ringRate / r.sendRate);
  console.log('\n== summary over rounds (ratio = process.send time / shared memory time)');
  console.log(`(a) latency, by mean, spin 20000 (the RingBuffer default): ${latencyDefault.map((x) => fmt(x)).join(', ')}; median ${fmt(median(latencyDefault))}x; goal >= 10x`);
  console.log(`(a) latency, by median, spin 20000: ${latencyDefaultMedian.map((x) => fmt(x)).join(', ')}; median ${fmt(median(latencyDefaultMedian))}x`);
  console.log(`(a) latency, by mean, spin 0: ${latency0.map((x) => fmt(x)).join(', ')}; median ${fmt(median(latency0))}x`);
  console.log(`(b) throughput RingBuffer / process.send: ${throughput.map((x) => fmt(x)).join(', ')}; median ${fmt(median(throughput))}x; goal >= 20x`);
  if (cLoop) {
    for (const spin of C_SPINS) {
      const ratios = rounds.map((r) => r.c.js[spin] / r.c.c[spin]);
      console.log(`(c) wait/notify ping-pong with waitersIndex, spin ${spin}${rounds[0].c.pinned ? ', one CPU each side' : ''}: mman / C (same protocol, same spin): ${ratios.map(ratio).join(', ')}; median ${ratio(median(ratios))}x; goal <= 1.5x`);
    }
  } else {
    console.log('(c) no C compiler (cc): the C side of the ping-pong was not measured');
  }
  console.log(`(c) notify() with waitersIndex, nobody asleep, ns a call: ${rounds.map((r) => fmt(r.calls.notifyNs, 1)).join(', ')}; median ${fmt(median(rounds.map((r) => r.calls.notifyNs)), 1)}`);
  console.log(`(c) wait() on a word already changed, ns a call: ${rounds.map((r) => fmt(r.calls.waitNs, 1)).join(', ')}; median ${fmt(median(rounds.map((r) => r.calls.waitNs)), 1)}`);
  const ringVsSend = rounds.map((r) => r.sendMean / r.ringPing.mean);
  console.log(`(c) RingBuffer ping-pong (64 B each way): process.send round trip / ring round trip: ${ringVsSend.map((x) => fmt(x)).join(', ')}; median ${fmt(median(ringVsSend))}x`);
  console.log(`load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

async function measure(child, v, ring, payload) {
  // (a) process.send ping-pong
  const sendTimes = [];
  for (let i = 0; i < PINGS_SEND + 100; i++) {
    const t0 = process.hrtime.bigint();
    child.send('ping');
    await nextMessage(child);
    if (i >= 100) sendTimes.push(micros(t0));
  }
  sendTimes.sort((a, b) => a - b);
  const sendMean = sendTimes.reduce((a, b) => a + b, 0) / sendTimes.length;
  const sendMedian = median(sendTimes);
  console.log(`(a) process.send ping-pong: mean ${fmt(sendMean)} us, median ${fmt(sendMedian)} us, p99 ${fmt(percentile(sendTimes, 0.99))} us per round trip (${PINGS_SEND} round trips)`);

  // (a) shared-memory ping-pong, for each spin bound
  const shm = {};
  for (const spin of SPINS) {
    const times = new Float64Array(PINGS_SHM);
    const cpu = process.cpuUsage();
    const { cpuMicros } = await pingPong(child, v, spin, times);
    const used = process.cpuUsage(cpu);
    const sorted = Array.from(times.subarray(Math.min(1000, PINGS_SHM / 10))).sort((a, b) => a - b);
    const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
    shm[spin] = { mean, median: median(sorted), p99: percentile(sorted, 0.99),
      cpuPerRoundTrip: (used.user + used.system + cpuMicros) / PINGS_SHM };
    console.log(`(a) shared memory ping-pong, spin ${spin}: mean ${fmt(mean, 2)} us, median ${fmt(shm[spin].median, 2)} us, p99 ${fmt(shm[spin].p99, 2)} us; ` +
      `CPU (both processes) ${fmt(shm[spin].cpuPerRoundTrip, 2)} us per round trip`);
  }

  // What a spin costs when nobody answers: how long it keeps one CPU busy before sleeping.
  for (const spin of SPINS.filter((s) => s > 0)) {
    const n = 200;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) wait(v, 100, 0, 0, { spin });
    console.log(`spin ${spin} with no answer: ${fmt(micros(t0) / n, 2)} us of one CPU`);
  }

  // (b) 1 GiB in 1 MiB messages: process.send with serialization 'advanced', 8 in flight
  child.send('reset');
  await nextMessage(child);
  const count = TOTAL / MESSAGE;
  let t0 = process.hrtime.bigint();
  let sent = 0;
  await new Promise((resolve) => {
    const pump = () => {
      while (sent < count && sent - acked / MESSAGE < 8) {
        child.send(payload);
        sent += 1;
      }
    };
    let acked = 0;
    const onAck = (received) => {
      acked = received;
      if (acked === TOTAL) {
        child.off('message', onAck);
        resolve();
      } else pump();
    };
    child.on('message', onAck);
    pump();
  });
  let seconds = micros(t0) / 1e6;
  const sendRate = TOTAL / MIB / seconds;
  console.log(`(b) process.send (advanced) of ${TOTAL / MIB} MiB in 1 MiB Buffers: ${fmt(seconds, 3)} s, ${fmt(sendRate, 0)} MiB/s`);

  const done = nextMessage(child);
  child.send('ring');
  t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) ring.write(payload);   // the one copy: into the ring
  ring.write(Buffer.alloc(0)); // the round's end
  const report = await done;
  seconds = micros(t0) / 1e6;
  const ringRate = TOTAL / MIB / seconds;
  if (report.bytes !== TOTAL || report.count !== count) throw new Error(`ring lost data: ${JSON.stringify(report)}`);
  console.log(`(b) RingBuffer (${RING / MIB} MiB ring) of ${TOTAL / MIB} MiB in 1 MiB messages: ${fmt(seconds, 3)} s, ${fmt(ringRate, 0)} MiB/s`);
  console.log(`ratios this round: latency (mean, spin 20000) ${fmt(sendMean / shm[20000].mean)}x, throughput ${fmt(ringRate / sendRate)}x`);
  return { sendMean, sendMedian, shm, sendRate, ringRate };
}

// The C ping-pong, or undefined without a compiler.
function compileC(dir) {
  const binary = join(dir, 'futex_pingpong');
  try {
    execFileSync('cc', ['-O2', '-o', binary, join(__dirname, '..', 'native', 'loops', 'futex_pingpong.c')], { stdio: 'pipe' });
    return binary;
  } catch {
    return undefined;
  }
}

// One run of the ping-pong of (a) and (c): PINGS_SHM round trips with the child at `spin`.
// With `times`, each round trip is timed into it (an hrtime call each way); without, only the
// whole loop. Resolves to the loop's time in us and the child's CPU time.
async function pingPong(child, v, spin, times) {
  Atomics.store(v, PING, 0);
  Atomics.store(v, PONG, 0);
  v[SPIN] = spin;
  v[ROUNDS] = PINGS_SHM;
  const done = nextMessage(child);
  child.send('shm-ping');
  const start = process.hrtime.bigint();
  for (let i = 1; i <= PINGS_SHM; i++) {
    const t0 = times ? process.hrtime.bigint() : 0n;
    Atomics.store(v, PING, i);
    notify(v, PING, 1, { waitersIndex: PING_WAITERS });
    while (Atomics.load(v, PONG) !== i) wait(v, PONG, i - 1, undefined, { spin, waitersIndex: PONG_WAITERS });
    if (times) times[i - 1] = micros(t0);
  }
  const took = micros(start);
  const { cpuMicros } = await done;
  return { micros: took, cpuMicros };
}

// (c) What one notify() with waitersIndex costs when nobody sleeps (no call into the addon), and
// one wait() whose word has already moved on: ns per call, over a million calls each.
function callCosts(v) {
  const CALLS = 1_000_000;
  let start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) notify(v, ARG, 1, { waitersIndex: ARG_WAITERS });
  const notifyNs = Number(process.hrtime.bigint() - start) / CALLS;
  Atomics.store(v, ARG, 7);
  start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) wait(v, ARG, 0, undefined, { spin: 20000, waitersIndex: ARG_WAITERS });
  const waitNs = Number(process.hrtime.bigint() - start) / CALLS;
  Atomics.store(v, ARG, 0);
  console.log(`(c) notify() with waitersIndex, nobody asleep: ${fmt(notifyNs, 1)} ns a call; wait() on a word already changed: ${fmt(waitNs, 1)} ns a call`);
  return { notifyNs, waitNs };
}

// Pins every thread of process `pid` to `cpus` (taskset -a): false where that cannot be done.
function pin(pid, cpus) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// (c) The low-latency ping-pong in JavaScript and the same protocol in C, each side of each on a
// CPU of its own (this process on CPU 0, the child on CPU 1: left to itself the scheduler often
// keeps both sides on one CPU, where no spin can see the other move, and a run is then 10x
// slower whichever language), each timed over the whole loop, as the C one is: us per round trip.
async function measureC(binary, child, v) {
  const js = {};
  const c = {};
  const all = `0-${os.availableParallelism() - 1}`;
  const pinned = os.availableParallelism() > 1 && pin(process.pid, '0') && pin(child.pid, '1');
  try {
    for (const spin of C_SPINS) {
      // A warm-up loop first (the JIT, the caches), then three timed ones, alternating with C's:
      // the median of each.
      const jsRuns = [];
      const cRuns = [];
      for (let run = 0; run < 4; run++) {
        const { micros: took } = await pingPong(child, v, spin);
        if (run > 0) jsRuns.push(took / PINGS_SHM);
        if (binary && run > 0) {
          const args = [String(PINGS_SHM), String(spin), 'waiters', ...(pinned ? ['pin'] : [])];
          cRuns.push(Number(execFileSync(binary, args, { encoding: 'utf8' })) / 1000);
        }
      }
      js[spin] = median(jsRuns);
      if (binary) c[spin] = median(cRuns);
      console.log(`(c) ping-pong with waiter counts, spin ${spin}${pinned ? ', one CPU each side' : ''}: mman ${jsRuns.map((x) => fmt(x, 3)).join(' / ')} us per round trip` +
        (binary ? `, C ${cRuns.map((x) => fmt(x, 3)).join(' / ')} us: median ${ratio(js[spin] / c[spin])}x` : ''));
    }
  } finally {
    if (pinned) {
      pin(process.pid, all);
      pin(child.pid, all);
    }
  }
  return { js, c, pinned };
}

// (c) A RingBuffer ping-pong: a 64-byte message to the child, which writes it back.
async function measureRingPing(child, requests, replies) {
  const message = Buffer.alloc(64, 3);
  const done = nextMessage(child);
  child.send('ring-ping');
  const times = new Float64Array(RING_PINGS);
  for (let i = 0; i < RING_PINGS; i++) {
    const t0 = process.hrtime.bigint();
    message.writeUInt32LE(i, 0);
    requests.write(message);
    const echo = replies.read(); // a view of the ring's bytes
    if (echo.length !== 64 || new DataView(echo.buffer, echo.byteOffset, 4).getUint32(0, true) !== i) {
      throw new Error(`ring ping-pong: wrong echo at ${i}`);
    }
    times[i] = micros(t0);
  }
  requests.write(Buffer.alloc(0));
  await done;
  const sorted = Array.from(times.subarray(Math.min(1000, RING_PINGS / 10))).sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  console.log(`(c) RingBuffer ping-pong, 64 B each way: mean ${fmt(mean, 2)} us, median ${fmt(median(sorted), 2)} us, p99 ${fmt(percentile(sorted, 0.99), 2)} us per round trip`);
  return { mean };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
