// Lifetime (docs/ARCHITECTURE.md): a range goes back to the kernel once nothing can reach it,
// never before, and without waiting for process exit. Release is asserted through
// mappingStats() or a file path only that mapping has: another mapping may take a released
// address at once, so no test looks at what is at an address afterwards.
import { readFileSync } from 'node:fs';
import { mapAnonymous, mapFile, mappingStats, PAGE_SIZE } from '../src';
import { collectedStats, fileWith, runChild, tempDir } from './helpers';

const NONE = { regions: 0, bytes: 0, retiredRegions: 0, retiredBytes: 0 };
const sanitized = (process.env.LD_PRELOAD ?? '').includes('libasan');
const mapsMention = (path: string) => readFileSync('/proc/self/maps', 'latin1').includes(path);

test('20,000 map/unmap cycles leave /proc/self/maps flat once collected', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = fileWith(dir, 'cycles.bin', new Uint8Array(2 * PAGE_SIZE).fill(1));
    const child = runChild(
      `
      const lines = () => require('fs').readFileSync('/proc/self/maps', 'latin1').split('\\n');
      // Lines that can only be ours: the test file, and read-only anonymous 3-page regions.
      const ours = () => lines().filter((l) => {
        const m = /^([0-9a-f]+)-([0-9a-f]+) r--p 00000000 00:00 0 *$/.exec(l);
        return l.endsWith(args[0]) || (m && parseInt(m[2], 16) - parseInt(m[1], 16) === 3 * mman.PAGE_SIZE);
      }).length;
      const before = { all: lines().length, ours: ours() };
      const cycle = (i) => {
        const m = i % 2
          ? mman.mmap(3 * mman.PAGE_SIZE, mman.Prot.Read, mman.MapFlags.Private | mman.MapFlags.Anonymous)
          : mman.mapFile(args[0], { mode: 'r+' });
        if (m.bytes[0] > 1) throw new Error('unexpected contents');
        m.unmap();
      };
      for (let i = 0; i < 20000; i++) cycle(i);
      gc();
      const stats = mman.mappingStats();
      console.log(JSON.stringify({ before, after: { all: lines().length, ours: ours() }, stats }));
    `,
      [path],
      ['--expose-gc'],
    );
    expect(child.stderr).toBe('');
    const { before, after, stats } = JSON.parse(child.stdout);
    expect(stats).toEqual(NONE);
    expect(after.ours).toBe(before.ours);
    // The rest is V8 and malloc growing their own heaps (256 KiB chunks, arenas), not mappings of ours.
    expect(after.all - before.all).toBeLessThan(60);
  } finally {
    cleanup();
  }
});

test('100,000 one-page mappings dropped without unmap() are collected and the process lives', () => {
  const child = runChild(
    `
    const count = () => require('fs').readFileSync('/proc/self/maps', 'latin1').split('\\n').length;
    const before = count();
    let sum = 0;
    for (let i = 0; i < 100000; i++) {
      const m = mman.mapAnonymous(mman.PAGE_SIZE);
      m.bytes[0] = i & 0xff;
      sum += m.bytes[0];
    }
    const peak = mman.mappingStats().regions;
    (async () => {
      for (let i = 0; i < 4; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify({ sum, peak, after: mman.mappingStats(), grew: count() - before }));
    })();
  `,
    [],
    ['--expose-gc'],
  );
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.sum).toBe(Array.from({ length: 100000 }, (_, i) => i & 0xff).reduce((a, b) => a + b, 0));
  expect(out.peak).toBeGreaterThan(0);
  expect(out.after).toEqual(NONE);
  expect(out.grew).toBeLessThan(100);
});

test('a view keeps its memory mapped after the Mapping object is collected', () => {
  const child = runChild(
    `
    let view = (() => { const m = mman.mapAnonymous(mman.PAGE_SIZE); m.bytes[7] = 42; return m.bytes; })();
    (async () => {
      for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      const kept = mman.mappingStats().regions;
      const value = view[7];
      view = null;
      for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify({ value, kept, after: mman.mappingStats().regions }));
    })();
  `,
    [],
    ['--expose-gc'],
  );
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({ value: 42, kept: 1, after: 0 });
});

test('a view kept past unmap() reads the pages until it is dropped; then a collection releases them', () => {
  const child = runChild(
    `
    let view = (() => { const m = mman.mapAnonymous(mman.PAGE_SIZE); m.bytes[7] = 42; m.unmap(); return m.bytes; });
    let kept;
    try { view(); } catch (e) { kept = e.code; }   // m.bytes after unmap() is closed
    view = (() => { const m = mman.mapAnonymous(mman.PAGE_SIZE); const b = m.bytes; b[7] = 42; m.unmap(); return b; })();
    gc();
    const during = mman.mappingStats();
    const value = view[7];
    view = null;
    gc();
    console.log(JSON.stringify({ kept, value, during, after: mman.mappingStats() }));
  `,
    [],
    ['--expose-gc'],
  );
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({
    kept: 'ERR_MAPPING_CLOSED',
    value: 42,
    during: { regions: 1, bytes: PAGE_SIZE, retiredRegions: 1, retiredBytes: PAGE_SIZE },
    after: NONE,
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
    const child = runChild(
      `
      const fs = require('fs');
      const lines = () => fs.readFileSync('/proc/self/maps', 'latin1').split('\\n').length;
      const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'latin1'))[1]) * 1024;
      const lines0 = lines(), rss0 = rss();
      let maxLines = 0, maxRss = 0, sum = 0;
      for (let i = 0; i < 100000; i++) {
        const m = mman.mapFile(args[0]);
        sum += m.bytes[0];
        m.unmap();
        if (i % 100 === 99) { maxLines = Math.max(maxLines, lines() - lines0); maxRss = Math.max(maxRss, rss() - rss0); }
      }
      gc();
      console.log(JSON.stringify({ sum, maxLines, maxRss, after: mman.mappingStats() }));
    `,
      [path],
      ['--expose-gc'],
    );
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
  const child = runChild(
    `
    const fs = require('fs');
    const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'latin1'))[1]) * 1024;
    const rss0 = rss();
    let maxRss = 0;
    for (let i = 0; i < 2000; i++) {
      const m = mman.mapAnonymous(1 << 20);
      m.bytes.fill(i & 0xff);
      m.unmap();
      if (i % 10 === 9) maxRss = Math.max(maxRss, rss() - rss0);
    }
    gc();
    console.log(JSON.stringify({ maxRss, after: mman.mappingStats() }));
  `,
    [],
    ['--expose-gc'],
  );
  expect(child.stderr).toBe('');
  const out = JSON.parse(child.stdout);
  expect(out.maxRss).toBeLessThan(256 * 2 ** 20);
  expect(out.after).toEqual(NONE);
}, 120_000);

const hasTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';
(hasTransfer ? test : test.skip)(
  'Node 22+: a buffer moved with transfer(), before or after unmap(), keeps the pages until it is collected',
  () => {
    const child = runChild(
      `
    const fill = () => { const keep = []; for (let i = 0; i < 16; i++) { const n = mman.mapAnonymous(mman.PAGE_SIZE); n.bytes.fill(0x53); keep.push(n); } return keep; };
    const moved = [];
    (() => {
      const a = mman.mapAnonymous(mman.PAGE_SIZE);
      a.bytes.fill(9);
      moved.push(new Uint8Array(a.buffer.transfer()));              // before unmap()
      a.unmap();
      const b = mman.mapAnonymous(mman.PAGE_SIZE);
      b.bytes.fill(7);
      const view = b.bytes;
      b.unmap();
      moved.push(new Uint8Array(view.buffer.transferToFixedLength())); // after unmap()
    })();
    gc();
    const fresh = fill();
    gc();
    const during = mman.mappingStats().retiredRegions;
    const values = moved.map((v) => [v.length, v.every((x) => x === v[0]) ? v[0] : -1]);
    for (const m of fresh) m.unmap();
    moved.length = 0;
    (async () => {
      // A moved store is let go by Node's finalizer for it, which comes once V8's background
      // sweeper has freed the store: a few turns later, or more on a busy machine.
      for (let i = 0; i < 500 && mman.mappingStats().retiredRegions > 0; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      console.log(JSON.stringify({ during, values, after: mman.mappingStats() }));
    })();
  `,
      [],
      ['--expose-gc'],
    );
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
  'Node 22+: resize() after buffer.transfer() works, and the moved buffer keeps the old pages',
  () => {
    const child = runChild(`
    const m = mman.mapAnonymous(mman.PAGE_SIZE);
    m.bytes[0] = 3;
    const moved = new Uint8Array(m.buffer.transfer());
    m.resize(64 * mman.PAGE_SIZE);
    console.log(JSON.stringify({ moved: [moved.length, moved[0]], now: m.bytes[0], length: m.length }));
  `);
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({ moved: [PAGE_SIZE, 3], now: 3, length: 64 * PAGE_SIZE });
  },
);
