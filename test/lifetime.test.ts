// Lifetime: one ArrayBuffer per mapping, detach before munmap, a placeholder while a
// buffer or an operation may still point into the range, and the GC as the safety net.
import { readFileSync } from 'node:fs';
import { mapAnonymous, mapFile, mappingStats, PAGE_SIZE } from '../src';
import { fileWith, permsAt, runChild, tempDir, turns } from './helpers';

test('20,000 map/unmap cycles leave /proc/self/maps flat', () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = fileWith(dir, 'cycles.bin', new Uint8Array(2 * PAGE_SIZE).fill(1));
    const child = runChild(`
      const lines = () => require('fs').readFileSync('/proc/self/maps', 'latin1').split('\\n');
      // Lines that can only be ours: the test file, and read-only anonymous 3-page regions.
      const ours = () => lines().filter((l) => {
        const m = /^([0-9a-f]+)-([0-9a-f]+) r--p 00000000 00:00 0 *$/.exec(l);
        return l.endsWith(args[0]) || (m && parseInt(m[2], 16) - parseInt(m[1], 16) === 3 * mman.PAGE_SIZE);
      }).length;
      const before = { all: lines().length, ours: ours() };
      for (let i = 0; i < 20000; i++) {
        const m = i % 2
          ? mman.mmap(3 * mman.PAGE_SIZE, mman.Prot.Read, mman.MapFlags.Private | mman.MapFlags.Anonymous)
          : mman.mapFile(args[0], { mode: 'r+' });
        if (m.bytes[0] > 1) throw new Error('unexpected contents');
        m.unmap();
      }
      console.log(JSON.stringify({ before, after: { all: lines().length, ours: ours() }, stats: mman.mappingStats() }));
    `, [path]);
    expect(child.stderr).toBe('');
    const { before, after, stats } = JSON.parse(child.stdout);
    expect(after.ours).toBe(before.ours);
    // The rest is V8 and malloc growing their own heaps (256 KiB chunks, arenas), not mappings of ours.
    expect(after.all - before.all).toBeLessThan(60);
    expect(stats).toEqual({ regions: 0, bytes: 0 });
  } finally {
    cleanup();
  }
});

test('100,000 one-page mappings dropped without unmap() are collected and the process lives', () => {
  const child = runChild(`
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
  `, [], ['--expose-gc']);
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.sum).toBe(Array.from({ length: 100000 }, (_, i) => i & 0xff).reduce((a, b) => a + b, 0));
  expect(out.peak).toBeGreaterThan(0);
  expect(out.after).toEqual({ regions: 0, bytes: 0 });
  expect(out.grew).toBeLessThan(100);
});

test('a view keeps its memory mapped after the Mapping object is collected', () => {
  const child = runChild(`
    let view = (() => { const m = mman.mapAnonymous(mman.PAGE_SIZE); m.bytes[7] = 42; return m.bytes; })();
    (async () => {
      for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      const kept = mman.mappingStats().regions;
      const value = view[7];
      view = null;
      for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify({ value, kept, after: mman.mappingStats().regions }));
    })();
  `, [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({ value: 42, kept: 1, after: 0 });
});

test('unmap() while flush() is in flight leaves a PROT_NONE placeholder until the flush finishes', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = fileWith(dir, 'inflight.bin', new Uint8Array(256 * PAGE_SIZE));
    const m = mapFile(path, { mode: 'r+' });
    m.bytes.fill(0x77);
    const address = m.address;
    const before = mappingStats().regions;
    const flushed = m.flush();
    m.unmap();
    // The pages are gone, the range is still ours: a stray access would fault, not read a stranger's memory.
    expect(permsAt(address)).toBe('---p');
    expect(mappingStats().regions).toBe(before);
    await flushed;
    await turns();
    expect(permsAt(address)).toBeUndefined();
    // At most: mappings other tests in this worker dropped may be collected in the same turns.
    expect(mappingStats().regions).toBeLessThanOrEqual(before - 1);
    expect(readFileSync(path).every((b) => b === 0x77)).toBe(true);
  } finally {
    cleanup();
  }
});

test('unmap() detaches the buffer, its views and every window before munmap', () => {
  const m = mapAnonymous(4 * PAGE_SIZE);
  const views = [m.bytes, new Float64Array(m.buffer), m.view(PAGE_SIZE, 8), new Uint8Array(m.buffer, 100, 5)];
  const address = m.address;
  m.unmap();
  expect(views.map((v) => v.length)).toEqual([0, 0, 0, 0]);
  expect(permsAt(address)).toBeUndefined();
});

test('one ArrayBuffer per mapping: buffer, bytes and views share it', () => {
  using m = mapAnonymous(2 * PAGE_SIZE);
  expect(m.buffer).toBe(m.buffer);
  expect(m.bytes.buffer).toBe(m.buffer);
  expect(m.view(10, 10).buffer).toBe(m.buffer);
  expect(mappingStats().regions).toBeGreaterThanOrEqual(1);
});

test('structuredClone cannot steal the memory: Node refuses to transfer external buffers, so it copies', () => {
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

const hasTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';
(hasTransfer ? test : test.skip)('Node 22+: after buffer.transfer(), unmap() leaves a placeholder until the new buffer is collected', () => {
  const child = runChild(`
    const perms = (a) => { for (const l of require('fs').readFileSync('/proc/self/maps', 'latin1').split('\\n')) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (\\S+)/.exec(l); if (m && a >= BigInt('0x' + m[1]) && a < BigInt('0x' + m[2])) return m[3]; } };
    const m = mman.mapAnonymous(mman.PAGE_SIZE);
    m.bytes[0] = 9;
    let moved = m.buffer.transfer();
    const address = m.address;
    m.unmap();
    const during = perms(address);
    moved = null;
    (async () => {
      for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify({ during, after: perms(address) ?? null, stats: mman.mappingStats() }));
    })();
  `, [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({ during: '---p', after: null, stats: { regions: 0, bytes: 0 } });
});

(hasTransfer ? test : test.skip)('Node 22+: resize() after buffer.transfer() refuses with ERR_MAPPING_TRANSFERRED, and the moved buffer stays valid', () => {
  const child = runChild(`
    const m = mman.mapAnonymous(mman.PAGE_SIZE);
    m.bytes[0] = 3;
    const moved = new Uint8Array(m.buffer.transfer());
    let code;
    try { m.resize(64 * mman.PAGE_SIZE); } catch (e) { code = e.code; }
    console.log(JSON.stringify({ code, value: moved[0], length: m.length }));
  `);
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({ code: 'ERR_MAPPING_TRANSFERRED', value: 3, length: PAGE_SIZE });
});
