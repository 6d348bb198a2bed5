// populate() and mapFileAsync(): pages made resident off the event loop, on real files with
// a cold page cache (posix_fadvise DONTNEED), as mincore(2) and the timers of this process see.
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { mapAnonymous, mapFile, mapFileAsync, PAGE_SIZE } from '../src';
import { tools } from '../src/internal';
import { handleOf } from '../src/mapping';
import { evictFile } from '../src/cli/util/page-cache';
import { descriptorsTo, fileWith, quietStats, expectBackTo, tempDir, TMP_IN_MEMORY } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const MiB = 1024 * 1024;

// A file of `bytes` non-zero bytes, written in 8 MiB blocks and dropped from the page cache.
function coldFile(name: string, bytes: number): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(Math.min(bytes, 8 * MiB), 0x5a);
  for (let at = 0; at < bytes; at += block.length) writeSync(fd, block, 0, Math.min(block.length, bytes - at));
  closeSync(fd);
  evictFile(path);
  return path;
}

const resident = (r: Uint8Array) => r.reduce((n, b) => n + (b & 1), 0);

// On tmpfs file pages live in memory only: nothing to evict, nothing cold to read.
const cold = TMP_IN_MEMORY ? test.skip : test;

describe('populate()', () => {
  cold('leaves every page of a cold file resident, as mincore sees', async () => {
    const path = coldFile('cold.bin', 64 * MiB);
    using m = mapFile(path);
    expect(resident(m.residency())).toBeLessThan(m.residency().length / 4);
    await m.populate();
    expect(resident(m.residency())).toBe(m.residency().length);
    expect(m.bytes[64 * MiB - 1]).toBe(0x5a);
  });

  cold('reads a cold 256 MiB file off the event loop: the loop runs while the pages come in', async () => {
    const path = coldFile('big.bin', 256 * MiB);
    using m = mapFile(path);
    let settled = false;
    const populating = m.populate().then(() => (settled = true));
    // The event loop turns before the read is done (a populate on this thread would return only
    // after all of it), and finds the file still partly cold then.
    await new Promise((resolve) => setImmediate(resolve));
    const whileReading = { settled, resident: resident(m.residency()) };
    await populating;
    expect(whileReading.settled).toBe(false);
    expect(whileReading.resident).toBeLessThan(m.residency().length);
    expect(resident(m.residency())).toBe(m.residency().length);
  });

  test('a range: only the pages it touches', async () => {
    const path = fileWith(dir, 'range.bin', new Uint8Array(32 * MiB).fill(1));
    evictFile(path);
    using m = mapFile(path);
    await m.populate({ offset: 8 * PAGE_SIZE + 1, length: 2 * PAGE_SIZE });
    const r = m.residency();
    expect([r[8], r[9], r[10]].map((b) => b & 1)).toEqual([1, 1, 1]);
    // Read-ahead brings some neighbours in, never the whole file.
    if (!TMP_IN_MEMORY) expect(resident(r)).toBeLessThan(r.length / 2);
  });

  test('write: private anonymous pages are made now, as their own (Anonymous in smaps)', async () => {
    using m = mapAnonymous(16 * PAGE_SIZE);
    const before = m.memory().anonymous; // memory() may count a merged neighbour: compare, not absolute
    await m.populate({ write: true, offset: 0, length: 4 * PAGE_SIZE });
    // The four pages asked for, and no other, as mincore sees them.
    expect(Array.from(m.residency(), (r) => r & 1)).toEqual([...Array(4).fill(1), ...Array(12).fill(0)]);
    expect(m.memory().anonymous - before).toBeGreaterThanOrEqual(4 * PAGE_SIZE);
  });

  test('a file truncated under the mapping: EFAULT from madvise, no SIGBUS; the pages before it resident', async () => {
    const path = fileWith(dir, 'short.bin', new Uint8Array(8 * PAGE_SIZE).fill(3));
    using m = mapFile(path);
    truncateSync(path, 2 * PAGE_SIZE);
    await expect(m.populate()).rejects.toMatchObject({ code: 'EFAULT', errno: -14, syscall: 'madvise' });
    await expect(m.populate({ length: 2 * PAGE_SIZE })).resolves.toBeUndefined();
    expect(m.bytes[0]).toBe(3);
  });

  test('the fallback for kernels before 5.14 (process_vm_readv): resident, and EFAULT past the end', () => {
    const path = fileWith(dir, 'fallback.bin', new Uint8Array(8 * PAGE_SIZE).fill(4));
    evictFile(path);
    using m = mapFile(path);
    expect(tools.populateByTouch(handleOf(m), 0, 8 * PAGE_SIZE)).toBe(0);
    expect(resident(m.residency())).toBe(8);
    truncateSync(path, 3 * PAGE_SIZE);
    expect(tools.populateByTouch(handleOf(m), 0, 8 * PAGE_SIZE)).toBe(-14);
  });

  cold('an abort rejects with AbortError after the chunk under way; the mapping stays usable', async () => {
    const path = coldFile('abort.bin', 64 * MiB);
    using m = mapFile(path);
    const controller = new AbortController();
    const pending = m.populate({ signal: controller.signal });
    setImmediate(() => controller.abort(new Error('enough')));
    const err = await pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: new Error('enough') });
    expect(resident(m.residency())).toBeLessThan(m.residency().length); // it stopped early
    expect(m.bytes[0]).toBe(0x5a);
    await expect(m.populate({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  test('unmap() while it runs: rejects with ERR_MAPPING_CLOSED; nothing crashes, nothing is left mapped', async () => {
    const base = await quietStats();
    const path = fileWith(dir, 'unmapped.bin', new Uint8Array(32 * MiB).fill(6));
    evictFile(path);
    const m = mapFile(path);
    const pending = m.populate();
    m.unmap();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    await expectBackTo(base);
  });

  test('bad options: Node codes before any system call', async () => {
    using m = mapAnonymous(4 * PAGE_SIZE);
    await expect(m.populate({ offset: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(m.populate({ length: 5 * PAGE_SIZE })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(m.populate({ offset: NaN })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(m.populate({ write: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(m.populate({ signal: {} as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(m.populate(7 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(resident(m.residency())).toBe(0);
    m.unmap();
    await expect(m.populate()).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
  });
});

describe('mapFileAsync()', () => {
  cold('resolves with every page of a cold file resident', async () => {
    const path = coldFile('async.bin', 16 * MiB);
    using m = await mapFileAsync(path);
    expect(m.length).toBe(16 * MiB);
    expect(resident(m.residency())).toBe(m.residency().length);
  });

  test('populate: false maps without reading; options as mapFile takes them', async () => {
    const path = fileWith(dir, 'lazy.bin', new Uint8Array(16 * PAGE_SIZE).fill(9));
    evictFile(path);
    using m = await mapFileAsync(path, { populate: false, offset: PAGE_SIZE, length: 2 * PAGE_SIZE });
    expect(m.length).toBe(2 * PAGE_SIZE);
    expect(m.bytes[0]).toBe(9);
    using w = await mapFileAsync(join(dir, 'new.bin'), { mode: 'w+', length: 100 });
    expect([w.length, w.bytes[99]]).toEqual([100, 0]);
  });

  test('a missing file rejects as fs.promises.open does; bad options before opening', async () => {
    await expect(mapFileAsync(join(dir, 'missing.bin'))).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
    await expect(mapFileAsync(join(dir, 'x'), { mode: 'rw' as never })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
    await expect(mapFileAsync(join(dir, 'x'), { signal: 'no' as never })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE',
    });
    await expect(mapFileAsync(42.5 as never)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  test('an aborted signal rejects with AbortError and leaves nothing mapped', async () => {
    const base = await quietStats();
    const path = fileWith(dir, 'aborted.bin', new Uint8Array(4 * PAGE_SIZE));
    await expect(mapFileAsync(path, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    const controller = new AbortController();
    const pending = mapFileAsync(path, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await expectBackTo(base);
  });

  test('aborted at any step, a file it created is removed again, and no descriptor is left', async () => {
    const created = join(dir, 'created');
    for (const delay of [0, 1, 2, 5, 10, 20]) {
      const path = `${created}-${delay}.bin`;
      const controller = new AbortController();
      const pending = mapFileAsync(path, { mode: 'w+', length: 64 * MiB, signal: controller.signal });
      setTimeout(() => controller.abort(), delay);
      const result = await pending.then(
        (m) => (m.unmap(), 'mapped'),
        (err: { name: string }) => err.name,
      );
      // Either it finished first (and the file is the mapping's to keep) or it is gone.
      expect([result, existsSync(path)]).toEqual(result === 'mapped' ? ['mapped', true] : ['AbortError', false]);
    }
    expect(descriptorsTo(/\/created-/)).toBe(0);
  });

  test('aborted after another writer renamed a new version over the file it created: the new version stays', async () => {
    const path = join(dir, 'replaced.bin');
    let outcome = '';
    for (let attempt = 0; attempt < 20 && outcome !== 'AbortError'; attempt++) {
      rmSync(path, { force: true });
      const controller = new AbortController();
      const pending = mapFileAsync(path, { mode: 'w+', length: 256 * MiB, signal: controller.signal });
      // As soon as the file exists, a cooperating writer replaces it (write, then rename over).
      while (!existsSync(path)) await new Promise((resolve) => setImmediate(resolve));
      writeFileSync(`${path}.new`, 'the new version');
      renameSync(`${path}.new`, path);
      controller.abort();
      outcome = await pending.then(
        (m) => (m.unmap(), 'mapped'), // finished first: try again
        (err: { name: string }) => err.name,
      );
    }
    expect(outcome).toBe('AbortError');
    expect(readFileSync(path, 'utf8')).toBe('the new version');
    expect(descriptorsTo(/\/replaced\.bin/)).toBe(0);
  });
});
