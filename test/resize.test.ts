// resize() (mremap): what it keeps, where the pages go, and what a buffer taken before it
// still sees. The strategies are in docs/ARCHITECTURE.md ("resize()").
import { readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mapAnonymous, mapFile, mmap, MapFlags, Mapping, mappingStats, PAGE_SIZE, Prot } from '../src';
import { fileWith, permsAt, quietStats, expectBackTo, tempDir } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + 5) & 0xff);

// Takes the page right after `m`, so that growing in place is impossible: it must move.
function blockAfter(m: Mapping): Mapping | undefined {
  const after = m.address + BigInt(Math.ceil(m.length / PAGE_SIZE) * PAGE_SIZE);
  try {
    return mmap(PAGE_SIZE, Prot.Read, MapFlags.Private | MapFlags.Anonymous | MapFlags.FixedNoReplace, -1, 0, after);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return undefined; // something is there already, which does the same
  }
}

// The descriptors of this process open on `path`.
const descriptorsOn = (path: string) =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false; // the one readdir itself used, closed by now
    }
  });

describe('resize (mremap)', () => {
  test('grows and shrinks a private anonymous mapping keeping the data', () => {
    using m = mapAnonymous(PAGE_SIZE);
    m.bytes.fill(0x11);
    const old = m.bytes;
    m.resize(256 * PAGE_SIZE);
    expect(m.bytes).not.toBe(old); // a new buffer; the old one keeps the old extent
    expect([old.length, old[PAGE_SIZE - 1]]).toEqual([PAGE_SIZE, 0x11]);
    expect(m.length).toBe(256 * PAGE_SIZE);
    expect(m.bytes[PAGE_SIZE - 1]).toBe(0x11);
    expect(m.bytes[PAGE_SIZE]).toBe(0);
    m.bytes[200 * PAGE_SIZE] = 5;
    m.resize(10);
    expect(m.bytes.length).toBe(10);
    expect(m.bytes[9]).toBe(0x11);
  });

  test('with mayMove false, fails with ENOMEM rather than move when the next pages are taken', () => {
    using first = mapAnonymous(PAGE_SIZE);
    const before = first.address;
    first.bytes[0] = 3;
    // Grow in place, doubling, until the pages after it belong to another mapping.
    let err: NodeJS.ErrnoException | undefined;
    for (let pages = 2; pages < 1 << 16 && err === undefined; pages *= 2) {
      try {
        first.resize(pages * PAGE_SIZE, { mayMove: false });
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
    }
    expect(err).toMatchObject({ code: 'ENOMEM', syscall: 'mremap', errno: -12 });
    expect(first.address).toBe(before);
    expect(first.bytes[0]).toBe(3);
  });

  test('resizes a file mapping within the file', () => {
    const path = fileWith(dir, 'grow.bin', new Uint8Array(8 * PAGE_SIZE).fill(4));
    using m = mapFile(path, { length: PAGE_SIZE });
    m.resize(8 * PAGE_SIZE);
    expect(m.bytes[8 * PAGE_SIZE - 1]).toBe(4);
  });

  test('a shared anonymous mapping shrinks and grows back keeping the data, but never past its original size', () => {
    using m = mapAnonymous(16 * PAGE_SIZE, { shared: true });
    m.bytes.fill(7);
    m.resize(PAGE_SIZE);
    expect(m.bytes.length).toBe(PAGE_SIZE);
    m.resize(16 * PAGE_SIZE);
    expect(m.bytes[16 * PAGE_SIZE - 1]).toBe(7);
    // The kernel sized the shared memory object at mmap time: pages past it would SIGBUS.
    expect(() => m.resize(17 * PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(m.length).toBe(16 * PAGE_SIZE);
  });

  test('with no buffer ever made, a move leaves nothing behind', async () => {
    const before = await quietStats();
    using m = mapAnonymous(PAGE_SIZE);
    const from = m.address;
    const blocker = blockAfter(m);
    m.resize(4 * PAGE_SIZE);
    blocker?.unmap();
    expect(m.address).not.toBe(from);
    expect(mappingStats().retiredRegions).toBe(before.retiredRegions);
    expect(permsAt(from)).toBeUndefined(); // one mremap: the old range is gone at once
  });
});

// A buffer taken before the move keeps the old pages; the mapping goes on at the new address.
describe('resize() that must move while a buffer over the old pages is alive', () => {
  const kinds = {
    'private anonymous': () => mapAnonymous(2 * PAGE_SIZE),
    'shared anonymous': () => mapAnonymous(8 * PAGE_SIZE, { shared: true }),
    'shared file': () =>
      mapFile(fileWith(dir, 'shared.bin', pattern(8 * PAGE_SIZE)), { mode: 'r+', length: 2 * PAGE_SIZE }),
    'private file': () =>
      mapFile(fileWith(dir, 'copy.bin', pattern(8 * PAGE_SIZE)), { mode: 'copy', length: 2 * PAGE_SIZE }),
  };
  test.each(Object.keys(kinds))('%s', async (kind) => {
    const base = await quietStats();
    const m = kinds[kind as keyof typeof kinds]();
    if (kind === 'shared anonymous') m.resize(2 * PAGE_SIZE); // room to grow back into
    const shared = m.shared;
    const initial = Buffer.from(m.bytes);
    let old: Uint8Array | null = m.bytes;
    old[1] = 0xaa;
    old[PAGE_SIZE + 1] = 0xbb;
    const from = m.address;
    const blocker = blockAfter(m);
    m.resize(8 * PAGE_SIZE);
    blocker?.unmap();
    expect(m.address).not.toBe(from);
    expect(m.length).toBe(8 * PAGE_SIZE);
    // The new mapping has what was written, and (file mappings) the file's bytes beyond.
    expect([m.bytes[1], m.bytes[PAGE_SIZE + 1]]).toEqual([0xaa, 0xbb]);
    expect(m.bytes[0]).toBe(initial[0]);
    if (kind.endsWith('file')) {
      const beyond = Buffer.from(pattern(8 * PAGE_SIZE).subarray(2 * PAGE_SIZE));
      expect(Buffer.from(m.bytes.subarray(2 * PAGE_SIZE)).equals(beyond)).toBe(true);
    } else {
      expect(m.bytes.subarray(2 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    }
    // The old buffer still reads the old pages, which stay mapped while it lives.
    expect([old.length, old[1], old[PAGE_SIZE + 1]]).toEqual([2 * PAGE_SIZE, 0xaa, 0xbb]);
    expect(permsAt(from)).toBeDefined();
    expect(mappingStats().retiredRegions).toBe(base.retiredRegions + 1);
    // Shared kinds: the same pages, mapped twice. Private kinds: a copy, apart from then on.
    old[2] = 0xcc;
    expect(m.bytes[2]).toBe(shared ? 0xcc : initial[2]);
    m.bytes[3] = 0xdd;
    expect(old[3]).toBe(shared ? 0xdd : initial[3]);
    if (kind === 'private file') {
      const onDisk = readFileSync(join(dir, 'copy.bin'));
      expect(onDisk.equals(Buffer.from(pattern(8 * PAGE_SIZE)))).toBe(true); // nothing written back
    }
    old = null;
    m.unmap();
    await expectBackTo(base); // the old pages went with their buffer
  });
});

describe('resize() that shrinks while a buffer over the tail is alive', () => {
  test('the tail stays mapped, readable through the old buffer, until that buffer is collected', async () => {
    const base = await quietStats();
    const m = mapAnonymous(4 * PAGE_SIZE);
    let old: Uint8Array | null = m.bytes;
    old.fill(0x42);
    const tail = m.address + BigInt(3 * PAGE_SIZE);
    m.resize(PAGE_SIZE);
    expect(m.bytes.length).toBe(PAGE_SIZE);
    expect(m.bytes[0]).toBe(0x42);
    expect(old[4 * PAGE_SIZE - 1]).toBe(0x42); // the cut-off tail, still there
    expect(permsAt(tail)).toBe('rw-p');
    old = null;
    m.unmap();
    await expectBackTo(base);
  });
});

describe('a file mapping keeps a descriptor only when asked to (keepFile: resize, growFile, share)', () => {
  test('none by default; with keepFile one duplicate of the file, close-on-exec, closed by unmap()', () => {
    const path = realpathSync(fileWith(dir, 'fd.bin', pattern(4 * PAGE_SIZE)));
    expect(descriptorsOn(path)).toEqual([]);
    for (const mode of ['r', 'r+', 'copy'] as const) {
      const plain = mapFile(path, { mode });
      expect(descriptorsOn(path)).toEqual([]); // the mapping keeps the file alive, not a descriptor
      plain.unmap();
    }
    const m = mapFile(path, { mode: 'copy', keepFile: true });
    const kept = descriptorsOn(path);
    expect(kept.length).toBe(1);
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${kept[0]}`, 'latin1'))![1];
    expect(parseInt(flags, 8) & 0o2000000).toBe(0o2000000); // O_CLOEXEC: no child inherits it
    m.unmap();
    expect(descriptorsOn(path)).toEqual([]);
    for (const mode of ['r', 'r+'] as const) {
      const shared = mapFile(path, { mode, keepFile: true });
      expect(descriptorsOn(path).length).toBe(1); // for growFile and share()
      shared.unmap();
      expect(descriptorsOn(path)).toEqual([]);
    }
    // A guarded one holds exactly one (its entry in the fault table's), which serves share() too.
    const guarded = mapFile(path, { mode: 'r+', guard: true });
    expect(descriptorsOn(path).length).toBe(1);
    guarded.resize(2 * PAGE_SIZE); // its new span's entry takes a descriptor of its own from the old one's
    expect(descriptorsOn(path).length).toBe(1);
    const there = Mapping.from(guarded.share());
    expect([there.guarded, descriptorsOn(path).length]).toEqual([true, 2]);
    there.unmap();
    guarded.unmap();
    expect(descriptorsOn(path)).toEqual([]);
    // create and 'w+' keep one by default: a file made to be written and grown.
    const made = mapFile(join(dir, 'made.bin'), { mode: 'w+', length: PAGE_SIZE });
    expect(descriptorsOn(realpathSync(join(dir, 'made.bin'))).length).toBe(1);
    made.unmap();
  });

  test('a private file mapping dropped without unmap() closes it when collected', async () => {
    const path = realpathSync(fileWith(dir, 'dropped.bin', pattern(PAGE_SIZE)));
    const base = await quietStats();
    (() => mapFile(path, { mode: 'copy', keepFile: true }).bytes[0])();
    expect(descriptorsOn(path).length).toBe(1);
    await expectBackTo(base);
    expect(descriptorsOn(path)).toEqual([]);
  });
});

describe('resize() with growFile: the file grows with the mapping', () => {
  test('an append-only log: the file is extended first, and fs reads back what was written past the old end', () => {
    const path = join(dir, 'log.bin');
    using log = mapFile(path, { mode: 'r+', create: true, length: 100 });
    log.bytes.fill(1);
    log.resize(3 * PAGE_SIZE + 10, { growFile: true });
    expect(statSync(path).size).toBe(3 * PAGE_SIZE + 10);
    log.bytes.fill(2, 100);
    log.sync();
    const onDisk = readFileSync(path);
    expect([onDisk[99], onDisk[100], onDisk[3 * PAGE_SIZE + 9]]).toEqual([1, 2, 2]);
  });

  test('at a file offset the file holds offset + length; a shrink never shrinks the file', () => {
    const path = fileWith(dir, 'window.bin', pattern(4 * PAGE_SIZE));
    using m = mapFile(path, { mode: 'r+', offset: 2 * PAGE_SIZE + 16, length: PAGE_SIZE, keepFile: true });
    m.resize(5 * PAGE_SIZE, { growFile: true });
    expect(statSync(path).size).toBe(2 * PAGE_SIZE + 16 + 5 * PAGE_SIZE);
    expect(m.bytes[0]).toBe(pattern(4 * PAGE_SIZE)[2 * PAGE_SIZE + 16]); // the same bytes, from the same place
    m.resize(PAGE_SIZE, { growFile: true });
    expect(statSync(path).size).toBe(7 * PAGE_SIZE + 16);
  });

  test('refused for anonymous and private mappings, before any system call', () => {
    using anon = mapAnonymous(PAGE_SIZE, { shared: true });
    expect(() => anon.resize(PAGE_SIZE, { growFile: true })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('shared file') }),
    );
    const path = fileWith(dir, 'copy.bin', pattern(PAGE_SIZE));
    using copy = mapFile(path, { mode: 'copy' });
    expect(() => copy.resize(2 * PAGE_SIZE, { growFile: true })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect([copy.length, statSync(path).size]).toEqual([PAGE_SIZE, PAGE_SIZE]);
    expect(() => copy.resize(PAGE_SIZE, { growFile: 1 as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });

  test.each([
    ['that keeps no descriptor says which option it needs', 'r+', 'keepFile: true'],
    ['that is read-only cannot grow the file', 'r', 'writable'],
  ] as const)('a mapping %s: nothing changes', (_what, mode, says) => {
    const path = fileWith(dir, `${mode}.bin`, pattern(PAGE_SIZE));
    using m = mapFile(path, { mode });
    expect(() => m.resize(2 * PAGE_SIZE, { growFile: true })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining(says) }),
    );
    expect([m.length, statSync(path).size]).toEqual([PAGE_SIZE, PAGE_SIZE]);
  });
});
