// wait / waitAsync / notify between real processes: futex(2) on a shared page, never mocked.
import { readFile } from 'node:fs/promises';
import { getEventListeners } from 'node:events';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PAGE_SIZE, SharedMemory, mapAnonymous, mapFile, notify, wait, waitAsync } from '../src';
import { tools } from '../src/internal';

const { waitAsyncStats } = tools;
import { startChild, uniqueName } from './helpers';

function sharedWords(bytes = PAGE_SIZE): { shm: SharedMemory; v: Int32Array } {
  const shm = SharedMemory.create(bytes);
  return { shm, v: new Int32Array(shm.map().buffer) };
}

function lock(v: Int32Array, i: number): void {
  let c = Atomics.compareExchange(v, i, 0, 1);
  if (c === 0) return;
  if (c !== 2) c = Atomics.exchange(v, i, 2);
  while (c !== 0) {
    wait(v, i, 2);
    c = Atomics.exchange(v, i, 2);
  }
}

function unlock(v: Int32Array, i: number): void {
  if (Atomics.sub(v, i, 1) !== 1) {
    Atomics.store(v, i, 0);
    notify(v, i, 1);
  }
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('wait', () => {
  test("returns 'not-equal' at once when the word is not the expected value", () => {
    const { v } = sharedWords();
    v[0] = 5;
    const started = Date.now();
    expect(wait(v, 0, 4)).toBe('not-equal');
    expect(wait(v, 0, 4, 1000, { spin: 1000 })).toBe('not-equal');
    expect(Date.now() - started).toBeLessThan(100);
  });

  test("returns 'timed-out' after the timeout, not before", () => {
    const { v } = sharedWords();
    const started = process.hrtime.bigint();
    expect(wait(v, 0, 0, 50)).toBe('timed-out');
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ms).toBeGreaterThanOrEqual(49);
    expect(ms).toBeLessThan(1000);
    expect(wait(v, 0, 0, 0)).toBe('timed-out');
    expect(wait(v, 0, 0, 5, { spin: 10000 })).toBe('timed-out');
    v[0] = 1;
    expect(wait(v, 0, 0, Number.MAX_VALUE)).toBe('not-equal');
  });

  test("wakes with 'ok' on a notify from another process", async () => {
    const { shm, v } = sharedWords();
    const child = startChild('notifyLater', ['100'], [shm]);
    expect(await child.next()).toBe('ready');
    expect(wait(v, 0, 0, 10000)).toBe('ok');
    expect(Atomics.load(v, 0)).toBe(1);
    expect(await child.next()).toEqual({ woken: 1 });
  });

  test('notify with nobody waiting wakes 0, with or without a waiter-count word', () => {
    const { v } = sharedWords();
    expect(notify(v, 0)).toBe(0);
    expect(notify(v, 0, 1, { waitersIndex: 1 })).toBe(0);
  });

  test('a lock from Atomics.compareExchange + wait/notify excludes across two processes', async () => {
    const { shm, v } = sharedWords();
    const rounds = 20000;
    const child = startChild('lock', [String(rounds)], [shm]);
    expect(await child.next()).toBe('ready');
    Atomics.store(v, 2, 1);
    notify(v, 2);
    for (let i = 0; i < rounds; i++) {
      lock(v, 0);
      const before = v[1]; // not atomic: only the lock keeps this exact
      for (let k = 0; k < 20; k++) Math.sqrt(k);
      v[1] = before + 1;
      unlock(v, 0);
    }
    expect(await child.next()).toBe('done');
    expect(v[1]).toBe(2 * rounds);
    expect(v[0]).toBe(0);
  });
});

describe('waitAsync', () => {
  test("resolves 'ok' on a notify from the child while timers keep firing here", async () => {
    const { shm, v } = sharedWords();
    const child = startChild('notifyLater', ['300'], [shm]);
    expect(await child.next()).toBe('ready');
    let ticks = 0;
    const timer = setInterval(() => {
      ticks += 1;
    }, 10);
    const result = await waitAsync(v, 0, 0, 10000);
    clearInterval(timer);
    expect(result).toBe('ok');
    expect(ticks).toBeGreaterThanOrEqual(10);
    expect(await child.next()).toEqual({ woken: 1 });
  });

  test("resolves 'not-equal' and 'timed-out'", async () => {
    const { v } = sharedWords();
    v[3] = 7;
    await expect(waitAsync(v, 3, 6)).resolves.toBe('not-equal');
    const started = Date.now();
    await expect(waitAsync(v, 0, 0, 50)).resolves.toBe('timed-out');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    await expect(waitAsync(v, 0, 0, 0)).resolves.toBe('timed-out');
  });

  test('takes no libuv threadpool thread: fs works while many waits are pending', async () => {
    const { v } = sharedWords();
    const controller = new AbortController();
    const pending = Array.from({ length: 16 }, (_, i) =>
      waitAsync(v, i, 0, undefined, { signal: controller.signal }).catch((e) => e),
    );
    await expect(readFile(__filename, 'utf8')).resolves.toContain('threadpool');
    controller.abort();
    await Promise.all(pending);
  });

  test('an aborted waitAsync rejects with an AbortError and frees its slot for the next wait', async () => {
    const { v } = sharedWords();
    const controller = new AbortController();
    // More than one waiter thread holds (127 words each).
    const pending = Array.from({ length: 300 }, (_, i) =>
      waitAsync(v, i % 1024, 0, undefined, { signal: controller.signal }),
    );
    await until(() => waitAsyncStats().sleeping === 300);
    expect(waitAsyncStats().threads).toBeGreaterThanOrEqual(3);
    controller.abort();
    const results = await Promise.allSettled(pending);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    }
    await until(() => waitAsyncStats().pending === 0 && waitAsyncStats().sleeping === 0);
    // The freed slots are used again: a notify still reaches a new wait.
    const again = waitAsync(v, 0, 0, 5000);
    await until(() => waitAsyncStats().sleeping === 1);
    Atomics.store(v, 0, 1);
    notify(v, 0);
    await expect(again).resolves.toBe('ok');
  });

  test('waits sharing one signal add one abort listener, removed when the last settles', async () => {
    const { v } = sharedWords();
    const controller = new AbortController();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const pending = Array.from({ length: 40 }, (_, i) => waitAsync(v, i, 0, 5000, { signal: controller.signal }));
      await until(() => waitAsyncStats().sleeping === 40);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      // Half are woken: the listener stays for the rest.
      for (let i = 0; i < 20; i++) Atomics.store(v, i, 1);
      for (let i = 0; i < 20; i++) notify(v, i);
      await expect(Promise.all(pending.slice(0, 20))).resolves.toEqual(Array(20).fill('ok'));
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      for (let i = 20; i < 40; i++) Atomics.store(v, i, 1);
      for (let i = 20; i < 40; i++) notify(v, i);
      await expect(Promise.all(pending.slice(20))).resolves.toEqual(Array(20).fill('ok'));
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      // The signal still works for waits made after that.
      const later = waitAsync(v, 100, 0, undefined, { signal: controller.signal });
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
      controller.abort();
      await expect(later).rejects.toMatchObject({ name: 'AbortError' });
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  test('200 waits aborted at once, 50 times over: every one rejects with AbortError and gives its slot back', async () => {
    const { v } = sharedWords();
    for (let round = 0; round < 50; round++) {
      const controller = new AbortController();
      const pending = Array.from({ length: 200 }, (_, i) =>
        waitAsync(v, i, 0, undefined, { signal: controller.signal }),
      );
      await until(() => waitAsyncStats().sleeping === 200);
      controller.abort();
      const results = await Promise.allSettled(pending);
      expect(results.every((r) => r.status === 'rejected' && (r.reason as Error).name === 'AbortError')).toBe(true);
      await until(() => waitAsyncStats().pending === 0 && waitAsyncStats().sleeping === 0);
    }
  });

  test('an already aborted signal rejects at once', async () => {
    const { v } = sharedWords();
    await expect(waitAsync(v, 0, 0, undefined, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  test('keeps the mapping held while it waits: unmap() meanwhile, then a timeout, is harmless', async () => {
    const name = uniqueName('held');
    const shm = SharedMemory.create(PAGE_SIZE, { name });
    try {
      const m = shm.map();
      const v = new Int32Array(m.buffer);
      const p = waitAsync(v, 0, 0, 100);
      m.unmap();
      // Retired, not released: the wait borrows the pages. Only this mapping maps this name.
      expect(readFileSync('/proc/self/maps', 'latin1')).toContain(`/dev/shm/${name}`);
      await expect(p).resolves.toMatch(/^(ok|timed-out)$/);
      expect(() => wait(v, 0, 0)).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
    } finally {
      shm.unlink();
      shm.close();
    }
  });
});

describe('refused views and arguments', () => {
  const { v } = sharedWords();
  const dir = mkdtempSync(join(tmpdir(), 'mman-futex-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: Array<[string, () => unknown, string]> = [
    ['a Uint32Array', () => wait(new Uint32Array(v.buffer) as never, 0, 0, 0), 'ERR_INVALID_ARG_TYPE'],
    ['a BigInt64Array', () => notify(new BigInt64Array(v.buffer) as never, 0), 'ERR_INVALID_ARG_TYPE'],
    ['a plain array', () => notify([0] as never, 0), 'ERR_INVALID_ARG_TYPE'],
    ['an Int32Array not made by mman', () => wait(new Int32Array(4), 0, 0, 0), 'ERR_INVALID_ARG_VALUE'],
    [
      'an Int32Array over a SharedArrayBuffer',
      () => notify(new Int32Array(new SharedArrayBuffer(16)), 0),
      'ERR_INVALID_ARG_VALUE',
    ],
    ['a private mapping', () => wait(new Int32Array(mapAnonymous(PAGE_SIZE).buffer), 0, 0, 0), 'ERR_INVALID_ARG_VALUE'],
    ['index -1', () => wait(v, -1, 0, 0), 'ERR_OUT_OF_RANGE'],
    ['index 1.5', () => wait(v, 1.5, 0, 0), 'ERR_OUT_OF_RANGE'],
    ['index past the end', () => notify(v, v.length), 'ERR_OUT_OF_RANGE'],
    ['index "0"', () => notify(v, '0' as never), 'ERR_INVALID_ARG_TYPE'],
    ['expected "0"', () => wait(v, 0, '0' as never, 0), 'ERR_INVALID_ARG_TYPE'],
    ['expected 2^32', () => wait(v, 0, 2 ** 32, 0), 'ERR_OUT_OF_RANGE'],
    ['timeout -1', () => wait(v, 0, 0, -1), 'ERR_OUT_OF_RANGE'],
    ['timeout NaN', () => wait(v, 0, 0, NaN), 'ERR_OUT_OF_RANGE'],
    ['timeout "1"', () => wait(v, 0, 0, '1' as never), 'ERR_INVALID_ARG_TYPE'],
    ['spin -1', () => wait(v, 0, 0, 0, { spin: -1 }), 'ERR_OUT_OF_RANGE'],
    ['waitersIndex = index', () => wait(v, 0, 0, 0, { waitersIndex: 0 }), 'ERR_INVALID_ARG_VALUE'],
    ['waitersIndex past the end', () => notify(v, 0, 1, { waitersIndex: 5000 }), 'ERR_OUT_OF_RANGE'],
    ['options null', () => wait(v, 0, 0, 0, null as never), 'ERR_INVALID_ARG_TYPE'],
    ['count -1', () => notify(v, 0, -1), 'ERR_OUT_OF_RANGE'],
    ['count 1.5', () => notify(v, 0, 1.5), 'ERR_OUT_OF_RANGE'],
    ['waitAsync signal "x"', () => waitAsync(v, 0, 0, 0, { signal: 'x' as never }), 'ERR_INVALID_ARG_TYPE'],
    ['waitAsync on a Float64Array', () => waitAsync(new Float64Array(4) as never, 0, 0), 'ERR_INVALID_ARG_TYPE'],
    [
      'an unaligned word (a mapping that starts 2 bytes into a page)',
      () => {
        const path = join(dir, 'unaligned');
        writeFileSync(path, Buffer.alloc(8192));
        const m = mapFile(path, { mode: 'r+', offset: 2 });
        return wait(new Int32Array(m.buffer, 0, 4), 0, 0, 0);
      },
      'ERR_OUT_OF_RANGE',
    ],
    [
      'an unmapped mapping',
      () => {
        const m = SharedMemory.create(PAGE_SIZE).map();
        const view = new Int32Array(m.buffer);
        m.unmap();
        return wait(view, 0, 0, 0);
      },
      'ERR_MAPPING_CLOSED',
    ],
    [
      'notify on an unmapped mapping',
      () => {
        const m = SharedMemory.create(PAGE_SIZE).map();
        const view = new Int32Array(m.buffer);
        m.unmap();
        return notify(view, 0);
      },
      'ERR_MAPPING_CLOSED',
    ],
  ];
  test.each(cases)('%s → %s', (_what, call, code) => {
    expect(call).toThrow(expect.objectContaining({ code }));
  });

  test('the errors are TypeError for types and values, RangeError for ranges', () => {
    expect(() => wait(new Uint8Array(4) as never, 0, 0)).toThrow(TypeError);
    expect(() => wait(new Int32Array(4), 0, 0)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' }),
    );
    expect(() => wait(v, -1, 0)).toThrow(RangeError);
  });
});
