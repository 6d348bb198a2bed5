// Mappings of every kind (file/anonymous × shared/private), each asserted by what the file on
// disk or another process sees; and mappings larger than one ArrayBuffer can be.
import {
  closeSync,
  existsSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { mapAnonymous, mapFile, mappingStats, MAX_BUFFER_LENGTH, mmap, MapFlags, PAGE_SIZE, Prot } from '../src';
import { fileWith, permsAt, runFixture, smapsOf, tempDir, TMP_IN_MEMORY } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

describe('shared file mapping (memory-mapped I/O)', () => {
  test('a write is in fs.readFileSync and in a child process that maps the same file', () => {
    const path = fileWith(dir, 'shared.bin', new Uint8Array(3 * PAGE_SIZE));
    using m = mapFile(path, { mode: 'r+' });
    m.bytes.set(Buffer.from('hello from the parent'), PAGE_SIZE + 5);
    expect(
      readFileSync(path)
        .subarray(PAGE_SIZE + 5, PAGE_SIZE + 26)
        .toString(),
    ).toBe('hello from the parent');

    const child = runFixture('mapping-child.js', 'read', [path, String(PAGE_SIZE + 5), '21']);
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('hello from the parent');
  });

  test("a child writing through its own shared mapping is seen by the parent's mapping", () => {
    const path = fileWith(dir, 'shared.bin', new Uint8Array(PAGE_SIZE));
    using m = mapFile(path, { mode: 'r+' });
    const child = runFixture('mapping-child.js', 'write', [path]);
    expect(child.status).toBe(0);
    expect(Array.from(m.bytes.subarray(100, 104))).toEqual([1, 2, 3, 4]);
  });

  // On tmpfs a page has nowhere to be written back to: it stays dirty after msync.
  const writeBack = TMP_IN_MEMORY ? test.skip : test;

  writeBack(
    'sync() writes the dirty pages back: smaps shows them clean, the file holds the data (not on tmpfs)',
    () => {
      const path = fileWith(dir, 'sync.bin', new Uint8Array(16 * PAGE_SIZE));
      using m = mapFile(path, { mode: 'r+' });
      m.bytes.fill(0xab);
      const dirty = (s = smapsOf(m.address)!) => s.Private_Dirty + s.Shared_Dirty;
      expect(dirty()).toBeGreaterThanOrEqual((16 * PAGE_SIZE) / 1024);
      m.sync();
      expect(dirty()).toBe(0);
      expect(readFileSync(path).every((b) => b === 0xab)).toBe(true);
    },
  );

  writeBack('flush() resolves once msync(MS_SYNC) has written the pages back (not on tmpfs)', async () => {
    const path = fileWith(dir, 'flush.bin', new Uint8Array(64 * PAGE_SIZE));
    const m = mapFile(path, { mode: 'r+' });
    m.bytes.fill(0x5a);
    const address = m.address;
    expect(smapsOf(address)!.Private_Dirty + smapsOf(address)!.Shared_Dirty).toBeGreaterThan(0);
    await m.flush();
    const s = smapsOf(address)!;
    expect(s.Private_Dirty + s.Shared_Dirty).toBe(0);
    m.unmap();
    expect(readFileSync(path).every((b) => b === 0x5a)).toBe(true);
  });

  test.each([0, 1, 17, PAGE_SIZE - 1, PAGE_SIZE, PAGE_SIZE + 17, 2 * PAGE_SIZE + 3])(
    'maps a window at offset %i, exactly as asked',
    (offset) => {
      const bytes = pattern(3 * PAGE_SIZE + 200);
      const path = fileWith(dir, `window-${offset}.bin`, bytes);
      using m = mapFile(path, { offset, length: 100 });
      expect(m.length).toBe(100);
      expect(m.bytes.length).toBe(100);
      expect(Buffer.from(m.bytes).equals(Buffer.from(bytes.subarray(offset, offset + 100)))).toBe(true);
    },
  );

  test('accepts a path, an fd and a FileHandle; closes only the fd it opened', async () => {
    const path = fileWith(dir, 'forms.bin', pattern(PAGE_SIZE));
    const fd = openSync(path, 'r');
    const handle = await open(path, 'r');
    const openFds = () => readdirSync('/proc/self/fd').length;
    try {
      const before = openFds();
      for (const target of [path, fd, handle]) {
        using m = mapFile(target);
        expect(m.bytes[1]).toBe(pattern(2)[1]);
      }
      expect(openFds()).toBe(before); // the one it opened from the path is closed again
      expect(() => readFileSync(fd)).not.toThrow(); // still open
      expect(handle.fd).toBeGreaterThanOrEqual(0);
    } finally {
      closeSync(fd);
      await handle.close();
    }
  });

  test('a read-only mapping gives a Buffer over the file with no copy', () => {
    const path = fileWith(dir, 'zero-copy.bin', pattern(PAGE_SIZE));
    using m = mapFile(path);
    const buf = Buffer.from(m.buffer, 10, 20);
    expect(buf.buffer).toBe(m.buffer);
    expect(buf.equals(Buffer.from(pattern(PAGE_SIZE).subarray(10, 30)))).toBe(true);
  });
});

describe("creating and sizing the file: create and 'w+'", () => {
  const mode666 = 0o666 & ~process.umask();

  test('create: a missing file is made (0o666 less the umask) at offset + length; writes reach it', () => {
    const path = join(dir, 'new.bin');
    using m = mapFile(path, { mode: 'r+', create: true, offset: PAGE_SIZE + 3, length: 10 });
    expect(statSync(path).size).toBe(PAGE_SIZE + 13);
    expect(statSync(path).mode & 0o777).toBe(mode666);
    m.bytes.set(Buffer.from('0123456789'));
    m.sync();
    const onDisk = readFileSync(path);
    expect(onDisk.subarray(PAGE_SIZE + 3).toString()).toBe('0123456789');
    expect(onDisk.subarray(0, PAGE_SIZE + 3).every((b) => b === 0)).toBe(true);
  });

  test('create: a shorter file is extended, its bytes kept; a longer one is never truncated', () => {
    const path = fileWith(dir, 'short.bin', Buffer.from('keep me'));
    using grown = mapFile(path, { mode: 'r+', create: true, length: 2 * PAGE_SIZE });
    expect(statSync(path).size).toBe(2 * PAGE_SIZE);
    expect(Buffer.from(grown.bytes.subarray(0, 7)).toString()).toBe('keep me');
    expect(grown.bytes[2 * PAGE_SIZE - 1]).toBe(0);
    using window = mapFile(path, { mode: 'r+', create: true, length: 3 });
    expect([window.length, statSync(path).size]).toEqual([3, 2 * PAGE_SIZE]);
    expect(readFileSync(path).subarray(0, 7).toString()).toBe('keep me');
  });

  test("'w+': the file is emptied first, then sized; a missing one is created", () => {
    const path = fileWith(dir, 'old.bin', new Uint8Array(3 * PAGE_SIZE).fill(9));
    using m = mapFile(path, { mode: 'w+', length: PAGE_SIZE });
    expect(statSync(path).size).toBe(PAGE_SIZE);
    expect(m.bytes.every((b) => b === 0)).toBe(true);
    m.bytes[0] = 1;
    expect(readFileSync(path)[0]).toBe(1); // shared: fs sees it
    using fresh = mapFile(join(dir, 'fresh.bin'), { mode: 'w+', length: 5 });
    expect(statSync(join(dir, 'fresh.bin')).size).toBe(5);
    expect(fresh.length).toBe(5);
  });

  test('a descriptor or FileHandle: create extends it, w+ empties it first; it stays open', async () => {
    const path = fileWith(dir, 'fd.bin', new Uint8Array(10).fill(7));
    const fd = openSync(path, 'r+');
    try {
      using m = mapFile(fd, { mode: 'r+', create: true, length: PAGE_SIZE });
      expect([statSync(path).size, m.bytes[9], m.bytes[10]]).toEqual([PAGE_SIZE, 7, 0]);
      using w = mapFile(fd, { mode: 'w+', length: 20 });
      expect([statSync(path).size, w.bytes[0]]).toEqual([20, 0]);
    } finally {
      closeSync(fd);
    }
    const handle = await open(path, 'r+');
    try {
      using h = mapFile(handle, { mode: 'r+', create: true, length: 2 * PAGE_SIZE });
      expect([statSync(path).size, h.length]).toEqual([2 * PAGE_SIZE, 2 * PAGE_SIZE]);
    } finally {
      await handle.close();
    }
  });

  test('a read-only descriptor cannot be extended: a system error from fallocate, the file as it was', () => {
    const path = fileWith(dir, 'ro.bin', new Uint8Array(10).fill(7));
    const fd = openSync(path, 'r');
    try {
      expect(() => mapFile(fd, { mode: 'r+', create: true, length: PAGE_SIZE })).toThrow(
        expect.objectContaining({ syscall: 'fallocate', code: 'EBADF' }),
      );
      expect(() => mapFile(fd, { mode: 'r+', create: true, sparse: true, length: PAGE_SIZE })).toThrow(
        expect.objectContaining({ syscall: 'ftruncate', code: expect.stringMatching(/^(EINVAL|EBADF)$/) }),
      );
      expect(statSync(path).size).toBe(10);
    } finally {
      closeSync(fd);
    }
  });

  test('bad input is refused before the file is opened: nothing is created or emptied', () => {
    const missing = join(dir, 'missing.bin');
    const kept = fileWith(dir, 'kept.bin', new Uint8Array(10).fill(7));
    const cases: Array<[unknown, string]> = [
      [{ mode: 'r+', create: true }, 'ERR_INVALID_ARG_VALUE'], // no length
      [{ mode: 'w+' }, 'ERR_INVALID_ARG_VALUE'], // no length
      [{ mode: 'r', create: true, length: 10 }, 'ERR_INVALID_ARG_VALUE'],
      [{ mode: 'copy', create: true, length: 10 }, 'ERR_INVALID_ARG_VALUE'],
      [{ mode: 'r+', create: 'yes', length: 10 }, 'ERR_INVALID_ARG_TYPE'],
      [{ mode: 'w+', length: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ mode: 'w+', length: NaN }, 'ERR_OUT_OF_RANGE'],
      [{ mode: 'w', length: 10 }, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [options, code] of cases) {
      for (const path of [missing, kept]) {
        expect(() => mapFile(path, options as never)).toThrow(expect.objectContaining({ code }));
      }
    }
    expect(existsSync(missing)).toBe(false);
    expect(readFileSync(kept)).toEqual(Buffer.alloc(10, 7));
    expect(() => mapFile(join(dir, 'no/such/dir.bin'), { mode: 'w+', length: 1 })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open' }),
    );
  });
});

describe('private file mapping (copy-on-write)', () => {
  test('a write reaches neither the file, nor another mapping, nor another process', () => {
    const bytes = pattern(2 * PAGE_SIZE);
    const path = fileWith(dir, 'private.bin', bytes);
    using copy = mapFile(path, { mode: 'copy' });
    using other = mapFile(path);
    copy.bytes.fill(0xee, 0, PAGE_SIZE + 1);
    expect(copy.bytes[PAGE_SIZE]).toBe(0xee);
    expect(Buffer.from(other.bytes).equals(Buffer.from(bytes))).toBe(true);
    expect(readFileSync(path).equals(Buffer.from(bytes))).toBe(true);
    const child = runFixture('mapping-child.js', 'bytesAt', [path, String(PAGE_SIZE)]);
    expect(child.stdout).toBe(`${bytes[0]},${bytes[PAGE_SIZE]}`);
  });

  test("starts as the file's contents", () => {
    const bytes = pattern(5000);
    using m = mapFile(fileWith(dir, 'init.bin', bytes), { mode: 'copy' });
    expect(Buffer.from(m.bytes).equals(Buffer.from(bytes))).toBe(true);
  });
});

describe('private anonymous mapping (memory allocation)', () => {
  test('is zero-filled, writable, and private', () => {
    using m = mapAnonymous(64 * PAGE_SIZE);
    expect(m.shared).toBe(false);
    expect(permsAt(m.address)).toBe('rw-p');
    expect(new Uint32Array(m.buffer).every((w) => w === 0)).toBe(true);
    m.bytes.fill(9);
    expect(m.bytes[64 * PAGE_SIZE - 1]).toBe(9);
  });

  test('mmap() one to one: MAP_PRIVATE | MAP_ANONYMOUS', () => {
    using m = mmap(3 * PAGE_SIZE, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous);
    expect(m.length).toBe(3 * PAGE_SIZE);
    expect(m.address % BigInt(PAGE_SIZE)).toBe(0n);
    expect(m.bytes.every((b) => b === 0)).toBe(true);
  });
});

describe('shared anonymous mapping', () => {
  test('MAP_SHARED | MAP_ANONYMOUS maps zeroed shared memory', () => {
    using m = mapAnonymous(8 * PAGE_SIZE, { shared: true });
    using raw = mmap(PAGE_SIZE, Prot.Read | Prot.Write, MapFlags.Shared | MapFlags.Anonymous);
    expect(m.shared).toBe(true);
    expect(permsAt(m.address)).toBe('rw-s');
    expect(permsAt(raw.address)).toBe('rw-s');
    expect(m.bytes.every((b) => b === 0)).toBe(true);
    m.bytes.fill(1);
    expect(smapsOf(m.address)!.Rss).toBe((8 * PAGE_SIZE) / 1024);
    const word = new Int32Array(m.buffer);
    expect(Atomics.add(word, 0, 5)).toBe(0x01010101);
  });
});

// Larger than one ArrayBuffer can be (4 GiB on Node 20): windows reach every byte.
describe('a mapping larger than one ArrayBuffer', () => {
  const GiB = 1024 ** 3;

  test('a 6 GiB sparse file maps; windows read and write anywhere; buffer covers it (Node 22+) or says to use windows (Node 20)', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'sparse.bin');
    const fd = openSync(path, 'w+');
    try {
      ftruncateSync(fd, 6 * GiB);
      writeSync(fd, Buffer.from('far away'), 0, 8, 5 * GiB + 123);
      using m = mapFile(path, { mode: 'r+' });
      expect(m.length).toBe(6 * GiB);

      // Read what the file holds at 5 GiB, write near the very end, and see it in the file.
      expect(Buffer.from(m.view(5 * GiB + 123, 8)).toString()).toBe('far away');
      m.view(6 * GiB - 4, 4).set([1, 2, 3, 4]);
      m.view(0, 1)[0] = 9;
      await m.flush({ offset: 6 * GiB - PAGE_SIZE });
      const tail = Buffer.alloc(4);
      readSync(fd, tail, 0, 4, 6 * GiB - 4);
      expect(Array.from(tail)).toEqual([1, 2, 3, 4]);

      if (MAX_BUFFER_LENGTH < 6 * GiB) {
        // Node 20: no ArrayBuffer can cover it all.
        expect(() => m.buffer).toThrow(
          expect.objectContaining({
            code: 'ERR_OUT_OF_RANGE',
            message: expect.stringMatching(/view\(offset, length\)/),
          }),
        );
        expect(() => m.view(0, MAX_BUFFER_LENGTH + 1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
        const window = m.view(GiB, MAX_BUFFER_LENGTH); // the largest window there is
        expect(window.length).toBe(MAX_BUFFER_LENGTH);
      } else {
        // Node 22+: one ArrayBuffer covers the whole mapping.
        expect(m.buffer.byteLength).toBe(6 * GiB);
        expect(m.bytes[6 * GiB - 1]).toBe(4);
      }
      const windows = [m.view(GiB, 16), m.view(5 * GiB, 16)];
      m.unmap({ detachViews: true });
      expect(windows.map((w) => w.length)).toEqual([0, 0]);
      expect(mappingStats().bytes % PAGE_SIZE).toBe(0);
    } finally {
      closeSync(fd);
      cleanup();
    }
  });
});
