// unmap(), collection and `using` (docs/ARCHITECTURE.md): a range goes back to the kernel once
// nothing can reach it, never before, and without waiting for process exit. Release is
// asserted through mappingStats() or a file path only that mapping has: another mapping may
// take a released address at once, so no test looks at what is at an address afterwards.
import { readFileSync } from 'node:fs';
import { mapAnonymous, mapFile, mappingStats, PAGE_SIZE, SharedMemory } from '../src';
import { collectedStats, fileWith, runFixture, tempDir } from './helpers';

const NONE = { regions: 0, bytes: 0, retiredRegions: 0, retiredBytes: 0 };
const sanitized = (process.env.LD_PRELOAD ?? '').includes('libasan');
const mapsMention = (path: string) => readFileSync('/proc/self/maps', 'latin1').includes(path);

test('map/unmap cycles leave /proc/self/maps flat once collected', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = fileWith(dir, 'cycles.bin', new Uint8Array(2 * PAGE_SIZE).fill(1));
    const child = runFixture('unmap-child.js', 'cycles', [path], ['--expose-gc']);
    expect(child.stderr).toBe('');
    const { before, between, after, added, stats } = JSON.parse(child.stdout);
    expect(stats).toEqual(NONE);
    expect(after.ours).toBe(before.ours);
    // The first 20,000 cycles grow V8's and malloc's own heaps (256 KiB chunks, arenas; ~25 lines
    // here, more for a moment when the machine is busy and V8's threads lag); the next 20,000 add
    // next to nothing. The lines they added, if they added many, are what fails.
    expect(between.all - before.all).toBeLessThan(60);
    expect(after.all - between.all < 20 ? [] : added).toEqual([]);
  } finally {
    cleanup();
  }
});

test('100,000 one-page mappings dropped without unmap() are collected and the process lives', () => {
  const child = runFixture('unmap-child.js', 'dropped', [], ['--expose-gc']);
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.sum).toBe(Array.from({ length: 100000 }, (_, i) => i & 0xff).reduce((a, b) => a + b, 0));
  expect(out.peak).toBeGreaterThan(0);
  expect(out.after).toEqual(NONE);
  expect(out.grew).toBeLessThan(100);
});

test('a view keeps its memory mapped after the Mapping object is collected', () => {
  const child = runFixture('unmap-child.js', 'viewOutlivesMapping', [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({ value: 42, kept: 1, after: 0 });
});

test('a view kept past unmap() reads the pages until it is dropped; then a collection releases them', () => {
  const child = runFixture('unmap-child.js', 'viewPastUnmap', [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({
    kept: 'ERR_MAPPING_CLOSED',
    value: 42,
    during: { regions: 1, bytes: PAGE_SIZE, retiredRegions: 1, retiredBytes: PAGE_SIZE },
    after: NONE,
  });
});

test('a sweep unmaps adjacent released ranges together and leaves their kept neighbours mapped', () => {
  const child = runFixture('unmap-child.js', 'sweepRuns', [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({
    during: 5,
    after: { regions: 3, bytes: 3 * PAGE_SIZE, retiredRegions: 0, retiredBytes: 0 },
    kept: [true, true, true],
    free: [0, 1, 2, 4, 5],
  });
});

test('unmap() while flush() is in flight: the flush completes on the pages, which go after it', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = fileWith(dir, 'inflight.bin', new Uint8Array(256 * PAGE_SIZE));
    // In a function of its own: no view of the mapping outlives it in this frame.
    const flushed = (() => {
      const m = mapFile(path, { mode: 'r+' });
      m.bytes.fill(0x77);
      const promise = m.flush();
      m.unmap();
      return promise;
    })();
    // Only this mapping maps this file: while the flush runs, its pages are still there.
    expect(mapsMention(path)).toBe(true);
    await flushed;
    collectedStats();
    expect(mapsMention(path)).toBe(false);
    expect(readFileSync(path).every((b) => b === 0x77)).toBe(true);
  } finally {
    cleanup();
  }
});

test('unmap({ detachViews: true }) empties the buffer, its views and every window at once', () => {
  const m = mapAnonymous(4 * PAGE_SIZE);
  const views = [m.bytes, new Float64Array(m.buffer), m.view(PAGE_SIZE, 8), new Uint8Array(m.buffer, 100, 5)];
  m.unmap({ detachViews: true });
  expect(views.map((v) => v.length)).toEqual([0, 0, 0, 0]);
});

test('one ArrayBuffer per mapping: buffer, bytes and views share it', () => {
  using m = mapAnonymous(2 * PAGE_SIZE);
  expect(m.buffer).toBe(m.buffer);
  expect(m.bytes.buffer).toBe(m.buffer);
  expect(m.view(10, 10).buffer).toBe(m.buffer);
  expect(mappingStats().regions).toBeGreaterThanOrEqual(1);
});

test('structuredClone cannot steal the memory: Node copies external buffers (20) or refuses them (22+)', () => {
  using m = mapAnonymous(PAGE_SIZE);
  m.bytes[0] = 5;
  let copy: ArrayBuffer | undefined;
  try {
    copy = structuredClone(m.buffer, { transfer: [m.buffer] });
  } catch (err) {
    expect((err as Error).name).toBe('DataCloneError'); // newer Node versions throw instead
  }
  expect(m.buffer.byteLength).toBe(PAGE_SIZE);
  expect(m.bytes[0]).toBe(5);
  if (copy !== undefined) {
    new Uint8Array(copy)[0] = 6;
    expect(m.bytes[0]).toBe(5);
  }
});

// In a loop that never yields, release leans on the collector: V8 is told what a retired
// range costs, and a weak reference it has cleared is seen at once. Bounded, never ENOMEM.
test('100,000 mapFile + .bytes[0] + unmap() in a loop that never yields stay bounded', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = fileWith(dir, 'one-page.bin', new Uint8Array(PAGE_SIZE).fill(1));
    const child = runFixture('unmap-child.js', 'fileLoop', [path], ['--expose-gc']);
    expect(child.stderr).toBe('');
    const out = JSON.parse(child.stdout);
    expect(out.sum).toBe(100000);
    expect(out.maxLines).toBeLessThan(5000);
    // Under the sanitizer build, ASan's quarantine holds 256 MiB of freed memory by itself.
    if (!sanitized) expect(out.maxRss).toBeLessThan(256 * 2 ** 20);
    expect(out.after).toEqual(NONE);
  } finally {
    cleanup();
  }
});

test('1 MiB anonymous mappings written and unmapped in a loop that never yields give their memory back', () => {
  // 2,000 MiB written in all: RSS would grow by that much if nothing came back before the end.
  const child = runFixture('unmap-child.js', 'anonymousLoop', [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  const out = JSON.parse(child.stdout);
  expect(out.maxRss).toBeLessThan(256 * 2 ** 20);
  expect(out.after).toEqual(NONE);
}, 120_000);

const hasTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';
(hasTransfer ? test : test.skip)(
  'Node 22+: a buffer moved with transfer(), before or after unmap(), keeps the pages until it is collected',
  () => {
    const child = runFixture('unmap-child.js', 'transfer', [], ['--expose-gc']);
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({
      during: 2,
      values: [
        [PAGE_SIZE, 9],
        [PAGE_SIZE, 7],
      ],
      after: NONE,
    });
  },
);

(hasTransfer ? test : test.skip)(
  "Node 22+: after its buffer was moved away, an open mapping's bytes are a new buffer over the same pages",
  () => {
    const child = runFixture('unmap-child.js', 'bytesAfterTransfer', [], ['--expose-gc']);
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({
      seen: { length: PAGE_SIZE, first: 5, second: 9, own: true, view: 5 },
      kept: 5,
      after: NONE,
    });
  },
);

(hasTransfer ? test : test.skip)(
  'Node 22+: resize() after buffer.transfer() works, and the moved buffer keeps the old pages',
  () => {
    const child = runFixture('unmap-child.js', 'resizeAfterTransfer');
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({ moved: [PAGE_SIZE, 3], now: 3, length: 64 * PAGE_SIZE });
  },
);

// `using` on each supported Node: Node 20 and 22 define Symbol.dispose as
// Symbol.for('nodejs.dispose') in the main realm only; Node 24's V8 has its own Symbol.dispose
// in every realm and runs `using` natively.
const nativeUsing = (() => {
  try {
    new Function('{ using resource = null; }');
    return true;
  } catch {
    return false;
  }
})();

test('`using` (compiled by TypeScript) unmaps a Mapping and closes a SharedMemory in this realm', () => {
  let mapping: { closed: boolean } | undefined;
  let shared: { closed: boolean } | undefined;
  {
    using m = mapAnonymous(PAGE_SIZE);
    using shm = SharedMemory.create(PAGE_SIZE);
    mapping = m;
    shared = shm;
    expect(m.closed).toBe(false);
  }
  expect(mapping?.closed).toBe(true);
  expect(shared?.closed).toBe(true);
});

test('in a plain Node process, Symbol.dispose unmaps; Node 24+ runs `using` natively', () => {
  const child = runFixture('dispose-child.js', 'dispose', [String(nativeUsing)]);
  expect(child.stderr).toBe('');
  const report = JSON.parse(child.stdout);
  expect(report.closed).toBe(true);
  expect(report.native).toBe(nativeUsing ? true : null);
  // Node 20 and 22 polyfill the symbol; Node 24's is V8's own.
  expect(report.registered).toBe(!nativeUsing);
});
