// The part of the suite that runs unchanged under Node, Bun and Deno (jest runs on Node
// only): every public concept at least once, against real files, /dev/shm, memfds and child
// processes of the same runtime. Ends with one JSON line of counts.
//   node --expose-gc test/runtimes/conformance.cjs [--json FILE]
//   bun test/runtimes/conformance.cjs [--json FILE]
//   deno run -A --v8-flags=--expose-gc test/runtimes/conformance.cjs [--json FILE]
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const mman = require('../../lib');

const runtime = typeof Bun !== 'undefined' ? 'bun' : typeof Deno !== 'undefined' ? 'deno' : 'node';
const version = runtime === 'bun' ? Bun.version : runtime === 'deno' ? Deno.version.deno : process.versions.node;
const { PAGE_SIZE, Prot, MapFlags } = mman;
const CHILD = path.join(__dirname, 'conformance-child.cjs');
const NONE = { regions: 0, bytes: 0, retiredRegions: 0, retiredBytes: 0 };

// A full collection, whichever runtime this is.
function collect() {
  if (runtime === 'bun') Bun.gc(true);
  else if (typeof globalThis.gc === 'function') globalThis.gc();
  else throw new Error('no gc(): run with --expose-gc');
}
const turn = () => new Promise((resolve) => setImmediate(resolve));

// A child process of this same runtime running conformance-child.cjs in `mode`.
function child(mode, args = [], options = {}) {
  const argv = runtime === 'deno' ? ['run', '-A', CHILD, mode, ...args] : [CHILD, mode, ...args];
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => { stdout += d; });
  proc.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { proc, done };
}

function expectCode(fn, code, Type) {
  let err;
  try { fn(); } catch (e) { err = e; }
  assert.ok(err, `expected ${code}`);
  assert.equal(err.code, code, err.message);
  if (Type) assert.ok(err instanceof Type, `${err.name} is not a ${Type.name}`);
  return err;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mman-conformance-${runtime}-`));
const fileWith = (name, bytes) => { const p = path.join(dir, name); fs.writeFileSync(p, bytes); return p; };
const uniqueName = (tag) => `mman-test-${process.pid}-${runtime}-${tag}-${Math.random().toString(36).slice(2, 8)}`;

// name -> { fn, skip: { runtime: reason } }
const tests = [];
const test = (name, fn, skip = {}) => tests.push({ name, fn, skip });

// ---- file mappings of the four kinds ----

test("mapFile 'r': a view of the file's own bytes", () => {
  const data = Buffer.from(Array.from({ length: 3 * PAGE_SIZE }, (_, i) => i & 0xff));
  const m = mman.mapFile(fileWith('r.bin', data));
  assert.ok(Buffer.from(m.bytes).equals(data));
  assert.equal(m.shared, true);
  m.unmap();
});

test('bytes and view() are Buffers over the mapping\'s own memory', () => {
  const p = fileWith('buffers.bin', Buffer.alloc(2 * PAGE_SIZE));
  const m = mman.mapFile(p, { mode: 'r+' });
  assert.ok(Buffer.isBuffer(m.bytes) && m.bytes instanceof Uint8Array);
  assert.equal(m.bytes.buffer, m.buffer);
  const v = m.view(PAGE_SIZE, 5);
  assert.ok(Buffer.isBuffer(v));
  v.write('hello');
  m.bytes.writeUInt32LE(0xdeadbeef, 8);
  m.sync();
  const disk = fs.readFileSync(p);
  assert.equal(disk.toString('latin1', PAGE_SIZE, PAGE_SIZE + 5), 'hello');
  assert.equal(disk.readUInt32LE(8), 0xdeadbeef);
  m.unmap();
});

test("mapFile 'r+': writes reach the file after sync() and flush()", async () => {
  const p = fileWith('rw.bin', Buffer.alloc(2 * PAGE_SIZE));
  const m = mman.mapFile(p, { mode: 'r+' });
  m.bytes[0] = 7;
  m.sync();
  assert.equal(fs.readFileSync(p)[0], 7);
  m.bytes[PAGE_SIZE] = 9;
  await m.flush();
  assert.equal(fs.readFileSync(p)[PAGE_SIZE], 9);
  m.unmap();
});

test("create, 'w+' and resize({ growFile }): the file is made, sized and grown as fs then sees it", async () => {
  const p = path.join(dir, 'grown.bin');
  const m = mman.mapFile(p, { mode: 'r+', create: true, length: PAGE_SIZE + 1 });
  assert.equal(fs.statSync(p).size, PAGE_SIZE + 1);
  m.resize(3 * PAGE_SIZE, { growFile: true });
  m.bytes[3 * PAGE_SIZE - 1] = 5;
  await m.flush();
  assert.equal(fs.readFileSync(p)[3 * PAGE_SIZE - 1], 5);
  m.unmap();
  const w = mman.mapFile(p, { mode: 'w+', length: 10 });
  assert.deepEqual([fs.statSync(p).size, w.bytes[0]], [10, 0]);
  w.unmap();
});

test('populate() and mapFileAsync(): resident pages; EFAULT once the file is truncated; memory()', async () => {
  const p = fileWith('populate.bin', Buffer.alloc(8 * PAGE_SIZE, 3));
  const m = await mman.mapFileAsync(p);
  assert.ok(m.residency().every((r) => r === 1));
  assert.equal(m.memory().rss, 8 * PAGE_SIZE);
  fs.truncateSync(p, PAGE_SIZE);
  await assert.rejects(m.populate(), { code: 'EFAULT', syscall: 'madvise' });
  await assert.rejects(m.populate({ signal: AbortSignal.abort() }), { name: 'AbortError' });
  m.unmap();
  await assert.rejects(m.populate(), { code: 'ERR_MAPPING_CLOSED' });
});

test("mapFile 'copy': writes stay in this process", () => {
  const p = fileWith('copy.bin', Buffer.alloc(PAGE_SIZE, 1));
  const m = mman.mapFile(p, { mode: 'copy' });
  m.bytes[0] = 2;
  assert.equal(m.shared, false);
  assert.equal(fs.readFileSync(p)[0], 1);
  m.unmap();
});

test('anonymous mappings, private and shared: zero-filled, writable; mmap() one to one', () => {
  for (const shared of [false, true]) {
    const m = mman.mapAnonymous(4 * PAGE_SIZE, { shared });
    assert.ok(m.bytes.every((b) => b === 0));
    m.bytes.fill(5);
    assert.equal(m.shared, shared);
    m.unmap();
  }
  const raw = mman.mmap(PAGE_SIZE, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous);
  raw.bytes[1] = 1;
  raw.unmap();
});

test('resize(), protect(), advise(), residency(), lock()', () => {
  const m = mman.mapAnonymous(PAGE_SIZE);
  m.bytes.fill(3);
  m.resize(16 * PAGE_SIZE);
  assert.equal(m.bytes[PAGE_SIZE - 1], 3);
  assert.equal(m.bytes[PAGE_SIZE], 0);
  m.protect(Prot.Read);
  m.advise(mman.Advice.WillNeed);
  assert.equal(m.residency().length, 16);
  m.protect(Prot.Read | Prot.Write);
  m.lock(0, PAGE_SIZE);
  m.unlock(0, PAGE_SIZE);
  m.unmap();
});

// ---- unmap ----

test('unmap(): every method throws ERR_MAPPING_CLOSED; a view kept reads the pages; detachViews empties them', () => {
  const a = mman.mapAnonymous(PAGE_SIZE);
  const kept = a.bytes;
  kept[0] = 4;
  a.unmap();
  assert.equal(a.closed, true);
  expectCode(() => a.bytes, 'ERR_MAPPING_CLOSED');
  expectCode(() => a.sync(), 'ERR_MAPPING_CLOSED');
  assert.equal(kept[0], 4);
  const b = mman.mapAnonymous(PAGE_SIZE);
  const view = b.bytes;
  b.unmap({ detachViews: true });
  assert.equal(view.length, 0);
  assert.equal(view[0], undefined);
});

test('unmap() while zlib holds the view: it compresses the mapping\'s own bytes', async () => {
  const m = mman.mapAnonymous(1 << 20);
  for (let i = 0; i < m.length; i += 7) m.bytes[i] = (i * 31) & 0xff;
  const held = Buffer.from(m.bytes);
  const out = await new Promise((resolve, reject) => {
    zlib.gzip(m.bytes, (err, result) => (err ? reject(err) : resolve(result)));
    m.unmap();
    for (let i = 0; i < 4; i++) mman.mapAnonymous(1 << 20).bytes.fill(0x53);
  });
  assert.ok(zlib.gunzipSync(out).equals(held));
});

test('mappingStats() is back to nothing once unmapped mappings are collected', async () => {
  (() => {
    for (let i = 0; i < 100; i++) {
      const m = mman.mapAnonymous(PAGE_SIZE);
      m.bytes[0] = 1;
      m.unmap();
    }
  })();
  for (let i = 0; i < 50 && mman.mappingStats().regions > 0; i++) {
    collect();
    await turn();
  }
  assert.deepEqual(mman.mappingStats(), NONE);
});

test('structuredClone with transfer: copied, refused, or moved (Deno), the pages stay until the copy is gone', async () => {
  let copy = null;
  (() => {
    const m = mman.mapAnonymous(PAGE_SIZE);
    m.bytes[0] = 5;
    try {
      copy = structuredClone(m.buffer, { transfer: [m.buffer] }); // Node 20 copies; Deno moves the memory
    } catch (e) {
      assert.ok(e.name === 'DataCloneError' || e instanceof TypeError, e.message); // Node 22+, Bun
    }
    // Dropped without unmap(): its handle is collected while the copy lives on.
  })();
  for (let i = 0; i < 5; i++) {
    collect();
    await turn();
  }
  if (copy !== null) assert.equal(new Uint8Array(copy)[0], 5); // read after collections: no SIGSEGV
  copy = null;
  for (let i = 0; i < 100 && mman.mappingStats().regions > 0; i++) {
    collect();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.deepEqual(mman.mappingStats(), NONE);
});

// ---- errors ----

test('bad arguments: TypeError/RangeError with Node codes, before any system call', () => {
  expectCode(() => mman.mapAnonymous('4096'), 'ERR_INVALID_ARG_TYPE', TypeError);
  expectCode(() => mman.mapAnonymous(-1), 'ERR_OUT_OF_RANGE', RangeError);
  expectCode(() => mman.mapAnonymous(NaN), 'ERR_OUT_OF_RANGE', RangeError);
  expectCode(() => mman.mapFile(fileWith('empty.bin', Buffer.alloc(0))), 'ERR_MAPPING_EMPTY_FILE');
  expectCode(() => mman.mmap(PAGE_SIZE, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.Fixed), 'ERR_INVALID_ARG_VALUE', TypeError);
});

test('system errors carry code, errno and syscall, as fs errors do', () => {
  const missing = expectCode(() => mman.mapFile(path.join(dir, 'missing.bin')), 'ENOENT');
  assert.equal(missing.errno, -2);
  assert.equal(missing.syscall, 'open');
  const p = fileWith('ro.bin', Buffer.alloc(PAGE_SIZE));
  const fd = fs.openSync(p, 'r');
  try {
    const denied = expectCode(() => mman.mmap(PAGE_SIZE, Prot.Read | Prot.Write, MapFlags.Shared, fd), 'EACCES');
    assert.equal(denied.syscall, 'mmap');
    assert.match(denied.message, /^EACCES: permission denied, mmap/);
  } finally {
    fs.closeSync(fd);
  }
});

// ---- shared memory, between processes of this runtime ----

test('SharedMemory: a memfd sized, mapped, grown and closed', () => {
  const shm = mman.SharedMemory.create(PAGE_SIZE);
  assert.equal(shm.size, PAGE_SIZE);
  const m = shm.map();
  m.bytes[0] = 1;
  shm.grow(2 * PAGE_SIZE);
  assert.equal(shm.size, 2 * PAGE_SIZE);
  m.unmap();
  shm.close();
  expectCode(() => shm.map(), 'ERR_SHARED_MEMORY_CLOSED');
});

test('a named segment: a child process opens it, reads what the parent wrote, writes back', async () => {
  const name = uniqueName('named');
  const shm = mman.SharedMemory.create(PAGE_SIZE, { name });
  try {
    const m = shm.map();
    m.bytes.set([1, 2, 3]);
    const { done } = child('named', [name]);
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { saw: [1, 2, 3] });
    assert.deepEqual([...m.bytes.subarray(0, 3)], [3, 2, 1]);
    m.unmap();
  } finally {
    shm.unlink();
    shm.close();
  }
});

test('fork() with share: the child maps the memfd it inherited', async () => {
  const shm = mman.SharedMemory.create(PAGE_SIZE);
  const m = shm.map();
  m.bytes[0] = 41;
  const proc = mman.fork(CHILD, ['inherited'], { share: [shm], silent: true });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const [code] = await new Promise((resolve) => proc.on('exit', (...a) => resolve(a)));
  assert.equal(code, 0, stderr);
  assert.equal(m.bytes[0], 42);
  m.unmap();
  shm.close();
});

test('wait() times out or sees a changed word; notify() wakes a waiter in another process', async () => {
  const name = uniqueName('futex');
  const shm = mman.SharedMemory.create(PAGE_SIZE, { name });
  try {
    const m = shm.map();
    const words = new Int32Array(m.buffer);
    assert.equal(mman.wait(words, 0, 1, 0), 'not-equal');
    assert.equal(mman.wait(words, 0, 0, 5), 'timed-out');
    const { done } = child('waiter', [name]);   // sleeps on words[0] while it is 0
    // The word stays 0, so the child cannot return before it sleeps: only a wake ends
    // its wait, and notify() says how many it woke. (Changing the word first would race
    // the child's first look and give 'not-equal'.)
    let woken = 0;
    for (let i = 0; i < 2000 && woken === 0; i++) {
      woken = mman.notify(words, 0);
      if (woken === 0) await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(woken, 1);
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { result: 'ok' });
    m.unmap();
  } finally {
    shm.unlink();
    shm.close();
  }
});

test("Mutex: a child holds it and is killed; lock() here takes it over, told 'owner-died'", async () => {
  const name = uniqueName('mutex');
  const shm = mman.SharedMemory.create(PAGE_SIZE, { name });
  try {
    const m = shm.map();
    const mutex = new mman.Mutex(new Int32Array(m.buffer), 0);
    const { proc, done } = child('holdLock', [name]);
    let out = '';
    proc.stdout.on('data', (d) => { out += d; });
    for (let i = 0; i < 2000 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(JSON.parse(out), { result: 'acquired' });
    assert.equal(mutex.tryLock(), 'busy');
    proc.kill('SIGKILL');
    await done;
    assert.equal(mutex.lock(5000), 'owner-died');
    mutex.unlock();
    assert.equal(mutex.tryLock(), 'acquired');
    mutex.unlock();
    m.unmap();
  } finally {
    shm.unlink();
    shm.close();
  }
});

test('share()/from(), seals: a descriptor received once; futureWrite refuses a writable map', () => {
  const shm = mman.SharedMemory.create(PAGE_SIZE);
  const m = shm.map({ keepFile: true });
  m.bytes[0] = 9;
  const there = mman.SharedMemory.from(shm.share());
  assert.equal(there.map({ readOnly: true }).bytes[0], 9);
  shm.seal('futureWrite');
  assert.deepEqual(there.seals, ['shrink', 'futureWrite']);
  expectCode(() => there.map(), 'EPERM');
  expectCode(() => mman.Mapping.from(m.share()).bytes[0] = 1, 'EPERM');
  there.close();
  m.unmap();
  shm.close();
});

test('waitAsync() resolves when another process notifies', async () => {
  const name = uniqueName('async');
  const shm = mman.SharedMemory.create(PAGE_SIZE, { name });
  try {
    const m = shm.map();
    const words = new Int32Array(m.buffer);
    const waiting = mman.waitAsync(words, 0, 0, 10_000);
    const { done } = child('notifier', [name]);
    assert.equal(await waiting, 'ok');
    assert.equal((await done).code, 0);
    assert.equal(await mman.waitAsync(words, 0, 5, 1000), 'not-equal');
    assert.equal(await mman.waitAsync(words, 0, Atomics.load(words, 0), 20), 'timed-out');
    m.unmap();
  } finally {
    shm.unlink();
    shm.close();
  }
});

test('RingBuffer: messages to a child process and answers back', async () => {
  const requests = mman.RingBuffer.create(1 << 16);
  const replies = mman.RingBuffer.create(1 << 16);
  try {
    // The child reaches the two memfds through /proc: no descriptor passing needed.
    const { done } = child('ring', [`/proc/${process.pid}/fd/${requests.memory.fd}`, `/proc/${process.pid}/fd/${replies.memory.fd}`]);
    let total = 0;
    for (let i = 0; i < 200; i++) {
      const message = Buffer.from(`message ${i}`.repeat(1 + (i % 9)));
      await requests.writeAsync(message);
      const reply = await replies.readAsync();
      const length = new DataView(reply.buffer, reply.byteOffset, 4).getUint32(0);
      replies.release();
      assert.equal(length, message.length);
      total += length;
    }
    requests.end();
    assert.equal(await replies.readAsync(), null);
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(total > 0);
  } finally {
    requests.close();
    replies.close();
  }
});

test('RingBuffer with many writers: three child processes write at once, each message whole and in its writer\'s order', async () => {
  const ring = mman.RingBuffer.create(1 << 13, { writers: 'many' });
  try {
    const count = 400;
    // The children are not forked by mman: they open the memfd through /proc, as any process could.
    const children = [1, 2, 3].map((id) => child('ringWriter', [`/proc/${process.pid}/fd/${ring.memory.fd}`, String(id), String(count)]));
    const next = new Map([[1, 0], [2, 0], [3, 0]]);
    for (let n = 0; n < 3 * count; n++) {
      const message = await ring.readAsync();
      assert.ok(message, `the stream ended after ${n} messages`);
      const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
      const id = view.getUint32(0);
      const seq = view.getUint32(4);
      assert.equal(seq, next.get(id), `writer ${id}: message ${seq} came when ${next.get(id)} was due`);
      next.set(id, seq + 1);
      assert.equal(message.length, 8 + ((seq * 13 + id) % 300));
      for (let i = 8; i < message.length; i++) assert.equal(message[i], (id + seq + i) & 0xff);
    }
    for (const { done } of children) {
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(ring.end(), true);
    assert.equal(await ring.readAsync(), null);
    assert.deepEqual([ring.skipped, ring.lost], [0, 0]);
    assert.throws(() => ring.write(Buffer.from('late')), { code: 'ERR_RING_BUFFER_ENDED' });
  } finally {
    ring.close();
  }
});

// ---- the truncation guard ----

test('guard: a page past the truncated end reads zeros; calls throw ERR_MAPPING_TRUNCATED', () => {
  const p = fileWith('guarded.bin', Buffer.alloc(4 * PAGE_SIZE, 7));
  const m = mman.mapFile(p, { guard: true });
  fs.truncateSync(p, PAGE_SIZE);
  assert.equal(m.bytes[0], 7);
  assert.equal(m.bytes[3 * PAGE_SIZE], 0);
  assert.equal(m.truncated, true);
  expectCode(() => m.sync(), 'ERR_MAPPING_TRUNCATED');
  m.unmap();
});

// ---- run ----

(async () => {
  const results = { runtime, version, passed: 0, failed: 0, skipped: 0, failures: [], skips: [] };
  for (const t of tests) {
    const reason = t.skip[runtime];
    if (reason !== undefined) {
      results.skipped++;
      results.skips.push({ name: t.name, reason });
      console.log(`- ${t.name} (skipped: ${reason})`);
      continue;
    }
    try {
      await Promise.race([t.fn(), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out after 60 s')), 60_000).unref?.())]);
      results.passed++;
      console.log(`✓ ${t.name}`);
    } catch (err) {
      results.failed++;
      results.failures.push({ name: t.name, error: String(err && err.stack || err) });
      console.log(`✕ ${t.name}\n    ${String(err && err.stack || err).split('\n').slice(0, 4).join('\n    ')}`);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const jsonAt = process.argv.indexOf('--json');
  if (jsonAt > 0) fs.writeFileSync(process.argv[jsonAt + 1], JSON.stringify(results));
  console.log(JSON.stringify({ runtime, version, passed: results.passed, failed: results.failed, skipped: results.skipped }));
  process.exit(results.failed > 0 ? 1 : 0);
})();
