// Mutex: one lock across threads and processes, exact under contention, taken over from a
// holder that died holding it; every misuse refused with a code.
import { Worker } from 'node:worker_threads';
import { mapAnonymous, Mutex, notify, PAGE_SIZE, SharedMemory } from '../src';
import { fixture, startChild } from './helpers';

function worker(mode: string, data: Record<string, unknown>): Worker {
  return new Worker(fixture('share-worker.js'), { workerData: { mode, ...data } });
}
const message = (w: Worker) => new Promise((resolve, reject) => w.once('message', resolve).once('error', reject));

describe('Mutex across threads and processes', () => {
  test('four workers, 20,000 plain increments each under the lock: exactly 80,000', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const words = new Int32Array(m.buffer);
    const workers = Array.from({ length: 4 }, () => worker('countLocked', { shm: shm.share(), times: 20_000 }));
    await Promise.all(workers.map(message));
    expect(words[0]).toBe(80_000);
    expect(words[1]).toBe(0); // released
    m.unmap();
  });

  test('this process and two children, plain increments under the lock: the exact total', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const v = new Int32Array(m.buffer);
    const children = [startChild('lockCount', ['5000'], [shm]), startChild('lockCount', ['5000'], [shm])];
    for (const c of children) expect(await c.next()).toBe('ready');
    Atomics.store(v, 2, 1);
    notify(v, 2);
    const mutex = new Mutex(v, 0);
    for (let i = 0; i < 5000; i++) {
      mutex.lock();
      v[1] = v[1] + 1;
      mutex.unlock();
    }
    for (const c of children) expect(await c.next()).toBe('done');
    expect(v[1]).toBe(15_000);
    m.unmap();
  });

  test("a child SIGKILLed holding it: lock() here takes it over and says 'owner-died'", async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const v = new Int32Array(m.buffer);
    const mutex = new Mutex(v, 0);
    const child = startChild('holdLock', [], [shm]);
    const { result, pid } = (await child.next()) as { result: string; pid: number };
    expect(result).toBe('acquired');
    expect(mutex.holder).toBe(pid);
    expect(mutex.tryLock()).toBe('busy');
    expect(mutex.lock(30)).toBe('timed-out');
    child.process.kill('SIGKILL');
    await child.exited;
    expect(mutex.lock(5000)).toBe('owner-died');
    expect([mutex.held, mutex.holder]).toEqual([true, process.pid]);
    mutex.unlock();
    expect(mutex.lock()).toBe('acquired'); // the takeover is reported once
    mutex.unlock();
    m.unmap();
  });

  test('tryLock() and lockAsync() report a dead holder too', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const mutex = new Mutex(new Int32Array(m.buffer), 0);
    for (const take of [() => Promise.resolve(mutex.tryLock()), () => mutex.lockAsync({ timeoutMs: 5000 })]) {
      const child = startChild('holdLock', [], [shm]);
      await child.next();
      child.process.kill('SIGKILL');
      await child.exited;
      expect(await take()).toBe('owner-died');
      mutex.unlock();
    }
    m.unmap();
  });

  test('a worker terminated while holding it: the next lock() says owner-died', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const mutex = new Mutex(new Int32Array(m.buffer), 0);
    const w = worker('holdLock', { shm: shm.share() });
    expect(await message(w)).toEqual({ result: 'acquired' });
    expect(mutex.tryLock()).toBe('busy');
    await w.terminate();
    expect(mutex.lock(5000)).toBe('owner-died');
    mutex.unlock();
    m.unmap();
  });

  test('lockAsync() keeps the event loop turning while another process holds it', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const mutex = new Mutex(new Int32Array(m.buffer), 0);
    const child = startChild('holdLockFor', ['300'], [shm]);
    expect(await child.next()).toBe('locked');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = performance.now();
    const result = await mutex.lockAsync();
    clearInterval(timer);
    expect(result).toBe('acquired');
    expect(performance.now() - started).toBeGreaterThan(150);
    expect(ticks).toBeGreaterThan(10);
    mutex.unlock();
    expect(await child.next()).toBe('unlocked');
    await child.exited;
    m.unmap();
  });

  test('lockAsync(): timeoutMs resolves timed-out, an abort rejects with AbortError; the lock is not taken', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const v = new Int32Array(m.buffer);
    const mutex = new Mutex(v, 0);
    const child = startChild('holdLock', [], [shm]);
    await child.next();
    expect(await mutex.lockAsync({ timeoutMs: 80 })).toBe('timed-out');
    const controller = new AbortController();
    const pending = mutex.lockAsync({ signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(mutex.held).toBe(false);
    child.process.kill('SIGKILL');
    await child.exited;
    m.unmap();
  });
});

describe('withLock() and withLockAsync()', () => {
  test('withLock(): runs fn holding the lock, returns its value, releases on return and on throw', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const v = new Int32Array(m.buffer);
    const mutex = new Mutex(v, 0);
    const children = [startChild('lockCount', ['3000'], [shm]), startChild('lockCount', ['3000'], [shm])];
    for (const c of children) expect(await c.next()).toBe('ready');
    Atomics.store(v, 2, 1);
    notify(v, 2);
    const states = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const got = mutex.withLock((state) => {
        states.add(state);
        const before = v[1];
        for (let k = 0; k < 20; k++) Math.sqrt(k);
        v[1] = before + 1;
        return i;
      });
      expect(got).toBe(i);
    }
    for (const c of children) expect(await c.next()).toBe('done');
    expect(v[1]).toBe(9000); // no increment lost between three processes
    expect([...states]).toEqual(['acquired']);
    expect(() =>
      mutex.withLock(() => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(mutex.holder).toBe(0); // released by the throw
    m.unmap();
  });

  test("withLock(): 'owner-died' reaches fn; a timeout is ERR_MUTEX_TIMED_OUT with fn not run; an async fn is refused after release", async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const mutex = new Mutex(new Int32Array(m.buffer), 0);
    const child = startChild('holdLock', [], [shm]);
    const { pid } = (await child.next()) as { pid: number };
    let ran = false;
    expect(() => mutex.withLock(() => (ran = true), { timeoutMs: 30 })).toThrow(
      expect.objectContaining({ code: 'ERR_MUTEX_TIMED_OUT', message: expect.stringContaining(`held by ${pid}`) }),
    );
    expect(ran).toBe(false);
    child.process.kill('SIGKILL');
    await child.exited;
    expect(mutex.withLock((state) => state, { timeoutMs: 5000 })).toBe('owner-died');
    expect(mutex.holder).toBe(0);
    expect(() => mutex.withLock(async () => 1)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_RETURN_VALUE' }),
    );
    expect(mutex.holder).toBe(0);
    expect(() => mutex.withLock('fn' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    m.unmap();
  });

  test('withLockAsync(): 200 concurrent async callers here and a child process: every increment across an await kept', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const v = new Int32Array(m.buffer);
    const mutex = new Mutex(v, 0);
    const child = startChild('lockCount', ['2000'], [shm]);
    expect(await child.next()).toBe('ready');
    Atomics.store(v, 2, 1);
    notify(v, 2);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        mutex.withLockAsync(async (state) => {
          const before = v[1];
          await new Promise((resolve) => setImmediate(resolve)); // the lock is held across it
          v[1] = before + 1;
          return [i, state];
        }),
      ),
    );
    expect(await child.next()).toBe('done');
    expect(v[1]).toBe(2200);
    expect(results).toEqual(Array.from({ length: 200 }, (_, i) => [i, 'acquired']));
    await expect(
      mutex.withLockAsync(async () => {
        throw new Error('inside');
      }),
    ).rejects.toThrow('inside');
    expect(mutex.holder).toBe(0);
    m.unmap();
  });

  test('withLockAsync(): timeoutMs and an abort while another process holds it reject, fn not run; the callers after still get their turn', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const mutex = new Mutex(new Int32Array(m.buffer), 0);
    const child = startChild('holdLockFor', ['400'], [shm]);
    expect(await child.next()).toBe('locked');
    const ran: string[] = [];
    const controller = new AbortController();
    const timedOut = mutex.withLockAsync(() => ran.push('timed'), { timeoutMs: 50 });
    const aborted = mutex.withLockAsync(() => ran.push('aborted'), { signal: controller.signal });
    const later = mutex.withLockAsync(() => ran.push('later'));
    setTimeout(() => controller.abort(), 20);
    await Promise.all([
      expect(timedOut).rejects.toMatchObject({ code: 'ERR_MUTEX_TIMED_OUT' }),
      expect(aborted).rejects.toMatchObject({ name: 'AbortError' }),
    ]);
    expect(await later).toBe(1); // ran once the child let go
    expect(ran).toEqual(['later']);
    expect(await child.next()).toBe('unlocked');
    await child.exited;
    m.unmap();
  });
});

test('withLockAsync() inside a withLockAsync() of the same Mutex: ERR_MUTEX_DEADLOCK at once, the outer call still releases; one started by a timer its fn set waits its turn', async () => {
  using shm = SharedMemory.create(PAGE_SIZE);
  const m = shm.map();
  const mutex = new Mutex(new Int32Array(m.buffer), 0);
  let later: Promise<string> | undefined;
  const outer = await mutex.withLockAsync(async () => {
    const inner = await mutex.withLockAsync(() => 'inner').catch((e: { code: string }) => e.code);
    later = new Promise((resolve) => setTimeout(resolve, 20)).then(() => mutex.withLockAsync(() => 'later'));
    return inner;
  });
  expect(outer).toBe('ERR_MUTEX_DEADLOCK');
  expect(await later).toBe('later'); // the outer call had released by then
  expect(mutex.holder).toBe(0);
  // An object with `aborted` alone cannot be listened to: refused by its type, the lock untouched.
  await expect(mutex.withLockAsync(() => 1, { signal: { aborted: false } as never })).rejects.toMatchObject({
    code: 'ERR_INVALID_ARG_TYPE',
  });
  expect(mutex.holder).toBe(0);
  m.unmap();
});

describe('Mutex misuse', () => {
  test('not recursive, not unlockable by another thread, not over private or unmapped memory', () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const v = new Int32Array(m.buffer);
    const mutex = new Mutex(v, 3);
    expect(() => mutex.unlock()).toThrow(expect.objectContaining({ code: 'ERR_MUTEX_NOT_OWNER' }));
    expect(mutex.lock()).toBe('acquired');
    expect(() => mutex.lock()).toThrow(expect.objectContaining({ code: 'ERR_MUTEX_DEADLOCK' }));
    expect(() => mutex.tryLock()).toThrow(expect.objectContaining({ code: 'ERR_MUTEX_DEADLOCK' }));
    v[3] = 12345; // as if another thread held it
    expect(() => mutex.unlock()).toThrow(expect.objectContaining({ code: 'ERR_MUTEX_NOT_OWNER' }));
    v[3] = 0;
    using priv = mapAnonymous(PAGE_SIZE);
    expect(() => new Mutex(new Int32Array(priv.buffer), 0)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => new Mutex(new Int32Array(4), 0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Mutex(new Uint32Array(m.buffer) as never, 0)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(() => new Mutex(v, v.length)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Mutex(v, 0, { spin: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => mutex.lock(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    m.unmap();
    expect(() => mutex.lock()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
    expect(() => mutex.unlock()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
  });
});
