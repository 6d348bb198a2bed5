// Bad input gets a clear, typed error before any syscall, and loses nothing: no mapping
// is leaked by a failed call, and the kernel's refusals come back shaped like Node's fs errors.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  mapAnonymous,
  mapFile,
  Mapping,
  mappingStats,
  mmap,
  Advice,
  MapFlags,
  PAGE_SIZE,
  Prot,
  RingBuffer,
  SharedMemory,
} from '../src';
import { native } from '../src/native';
import { fileWith, runFixture, tempDir, thrown } from './helpers';

let dir: string;
let cleanup: () => void;
let file: string;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  file = fileWith(dir, 'data.bin', new Uint8Array(4 * PAGE_SIZE).fill(1));
});
afterEach(() => cleanup());

const RW = Prot.Read | Prot.Write;
const ANON = MapFlags.Private | MapFlags.Anonymous;

// Ranges of open mappings: a retired range (of an earlier test's mapping) may be released at
// any moment, an open one only by its own unmap().
function openRanges(): { regions: number; bytes: number } {
  const s = mappingStats();
  return { regions: s.regions - s.retiredRegions, bytes: s.bytes - s.retiredBytes };
}

function expectCode(fn: () => unknown, code: string, Type: ErrorConstructor = Error) {
  const before = openRanges();
  const err = thrown(fn);
  expect(err.code).toBe(code);
  expect(err.name).toBe(Type.name);
  expect(err.message.length).toBeGreaterThan(10);
  expect(openRanges()).toEqual(before); // nothing left mapped by the failed call
  return err;
}

describe('lengths', () => {
  test.each([
    ['a string', '4096', 'ERR_INVALID_ARG_TYPE', TypeError],
    ['a bigint', 4096n, 'ERR_INVALID_ARG_TYPE', TypeError],
    ['undefined', undefined, 'ERR_INVALID_ARG_TYPE', TypeError],
    ['NaN', NaN, 'ERR_OUT_OF_RANGE', RangeError],
    ['Infinity', Infinity, 'ERR_OUT_OF_RANGE', RangeError],
    ['a fraction', 4096.5, 'ERR_OUT_OF_RANGE', RangeError],
    ['negative', -4096, 'ERR_OUT_OF_RANGE', RangeError],
    ['zero', 0, 'ERR_OUT_OF_RANGE', RangeError],
    ['past 2^53', 2 ** 60, 'ERR_OUT_OF_RANGE', RangeError],
  ])('%s is refused by mmap and mapAnonymous', (_what, length, code, Type) => {
    expectCode(() => mmap(length as number, RW, ANON), code, Type);
    expectCode(() => mapAnonymous(length as number), code, Type);
  });

  test('a huge length the kernel cannot place is ENOMEM from mmap', () => {
    const err = expectCode(() => mmap(2 ** 52, RW, ANON), 'ENOMEM');
    expect(err).toMatchObject({ errno: -12, syscall: 'mmap', message: 'ENOMEM: not enough memory, mmap' });
  });
});

describe('mmap arguments', () => {
  test('an unaligned offset', () => {
    const fd = openSync(file, 'r');
    try {
      expectCode(() => mmap(PAGE_SIZE, Prot.Read, MapFlags.Shared, fd, 100), 'ERR_OUT_OF_RANGE', RangeError);
    } finally {
      closeSync(fd);
    }
  });
  test('MAP_FIXED is refused; MAP_FIXED_NOREPLACE needs an aligned address and never clobbers', () => {
    expectCode(() => mmap(PAGE_SIZE, RW, ANON | MapFlags.Fixed), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mmap(PAGE_SIZE, RW, ANON | MapFlags.FixedNoReplace), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(
      () => mmap(PAGE_SIZE, RW, ANON | MapFlags.FixedNoReplace, -1, 0, 12345n),
      'ERR_OUT_OF_RANGE',
      RangeError,
    );
    using taken = mapAnonymous(PAGE_SIZE);
    taken.bytes[0] = 9;
    const err = expectCode(() => mmap(PAGE_SIZE, RW, ANON | MapFlags.FixedNoReplace, -1, 0, taken.address), 'EEXIST');
    expect(err.syscall).toBe('mmap');
    expect(taken.bytes[0]).toBe(9);
    const free = taken.address + BigInt(1 << 30);
    using placed = mmap(PAGE_SIZE, RW, ANON | MapFlags.FixedNoReplace, -1, 0, free);
    expect(placed.address).toBe(free);
  });
  test('prot and flags outside the enums; no mapping type; an address without FixedNoReplace', () => {
    expectCode(() => mmap(PAGE_SIZE, 8 as Prot, ANON), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mmap(PAGE_SIZE, '3' as unknown as Prot, ANON), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => mmap(PAGE_SIZE, RW, MapFlags.Anonymous), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mmap(PAGE_SIZE, RW, ANON | 0x200), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mmap(PAGE_SIZE, RW, ANON, -1, 0, 4096n), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mmap(PAGE_SIZE, RW, ANON, 3), 'ERR_INVALID_ARG_VALUE', TypeError);
  });
  test('a closed fd is EBADF from mmap', () => {
    const fd = openSync(file, 'r');
    closeSync(fd);
    expect(expectCode(() => mmap(PAGE_SIZE, Prot.Read, MapFlags.Shared, fd), 'EBADF')).toMatchObject({
      errno: -9,
      syscall: 'mmap',
    });
  });
  test('a read-only fd mapped shared for writing is EACCES', () => {
    const fd = openSync(file, 'r');
    try {
      const err = expectCode(() => mmap(PAGE_SIZE, RW, MapFlags.Shared, fd), 'EACCES');
      expect(err).toMatchObject({ errno: -13, syscall: 'mmap', message: 'EACCES: permission denied, mmap' });
      expectCode(() => mapFile(fd, { mode: 'r+' }), 'EACCES');
      using copy = mapFile(fd, { mode: 'copy' }); // private copy-on-write is allowed
      copy.bytes[0] = 2;
    } finally {
      closeSync(fd);
    }
  });
});

describe('mapFile arguments', () => {
  test('an empty file is refused: touching it would SIGBUS', () => {
    expectCode(() => mapFile(fileWith(dir, 'empty', new Uint8Array(0))), 'ERR_MAPPING_EMPTY_FILE');
  });
  test('a window past the end of the file is refused', () => {
    expectCode(() => mapFile(file, { offset: 4 * PAGE_SIZE }), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => mapFile(file, { offset: 10, length: 4 * PAGE_SIZE }), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => mapFile(file, { length: 4 * PAGE_SIZE + 1 }), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => mapFile(file, { offset: -1 }), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => mapFile(file, { length: NaN }), 'ERR_OUT_OF_RANGE', RangeError);
  });
  test('a missing file, a directory, a closed fd, a closed FileHandle', async () => {
    expect(expectCode(() => mapFile(join(dir, 'missing')), 'ENOENT')).toMatchObject({ syscall: 'open' });
    mkdirSync(join(dir, 'sub'));
    expect(expectCode(() => mapFile(join(dir, 'sub')), 'EISDIR')).toMatchObject({ syscall: 'open' });
    const fd = openSync(file, 'r');
    closeSync(fd);
    expect(expectCode(() => mapFile(fd), 'EBADF')).toMatchObject({ syscall: 'fstat' });
    const handle = await open(file, 'r');
    await handle.close();
    expect(expectCode(() => mapFile(handle), 'EBADF')).toMatchObject({ errno: -9, syscall: 'fstat' });
    // A FileHandle-like object whose fd is not a descriptor number: never wrapped into one.
    const real = openSync(file, 'r');
    try {
      for (const bad of [2 ** 32 + real, real + 0.9, NaN, Infinity, -2])
        expectCode(() => mapFile({ fd: bad } as never), 'ERR_OUT_OF_RANGE', RangeError);
    } finally {
      closeSync(real);
    }
  });
  test('wrong types and values of arguments and options', () => {
    expectCode(() => mapFile(true as unknown as string), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => mapFile(file, 'r' as never), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => mapFile(file, { mode: 'w' as never }), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mapFile(file, { mode: 'toString' as never }), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mapFile(file, { populate: 1 as never }), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => mapFile(file, { advice: 100 as Advice }), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => mapAnonymous(PAGE_SIZE, { hugePages: 'yes' as never }), 'ERR_INVALID_ARG_VALUE', TypeError);
  });
  test('advice the kernel refuses unmaps what was mapped before throwing', () => {
    // MADV_REMOVE punches a hole in the file: the kernel wants a shared writable mapping.
    expect(expectCode(() => mapFile(file, { mode: 'copy', advice: Advice.Remove }), 'EACCES')).toMatchObject({
      syscall: 'madvise',
    });
  });
});

describe('Mapping methods', () => {
  test('ranges are checked, overflow-safe, by every method that takes one', () => {
    using m = mapAnonymous(4 * PAGE_SIZE);
    const len = 4 * PAGE_SIZE;
    const calls: Array<(o: number, l?: number) => unknown> = [
      (o, l) => m.protect(RW, o, l),
      (o, l) => m.advise(Advice.Normal, o, l),
      (o, l) => m.sync({ offset: o, length: l }),
      (o, l) => m.lock(o, l),
      (o, l) => m.unlock(o, l),
      (o, l) => m.residency(o, l),
      (o, l) => m.view(o, l),
      (o, l) => m.mapFixed(o, l ?? PAGE_SIZE, RW, ANON),
    ];
    for (const call of calls) {
      expectCode(() => call(len + 1), 'ERR_OUT_OF_RANGE', RangeError);
      expectCode(() => call(-1), 'ERR_OUT_OF_RANGE', RangeError);
      expectCode(() => call(NaN), 'ERR_OUT_OF_RANGE', RangeError);
      expectCode(() => call(PAGE_SIZE, len), 'ERR_OUT_OF_RANGE', RangeError);
      expectCode(() => call(len, Number.MAX_SAFE_INTEGER), 'ERR_OUT_OF_RANGE', RangeError);
      expectCode(() => call('0' as never), 'ERR_INVALID_ARG_TYPE', TypeError);
    }
  });
  test('advice outside Advice is refused (never MADV_HWPOISON)', () => {
    using m = mapAnonymous(PAGE_SIZE);
    expectCode(() => m.advise(100 as Advice), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => m.advise(101 as Advice), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => m.advise('normal' as never), 'ERR_INVALID_ARG_TYPE', TypeError);
  });
  test('bad options and sizes', () => {
    using m = mapAnonymous(PAGE_SIZE);
    expectCode(() => m.sync({ async: 'yes' as never }), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => m.sync(5 as never), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => m.resize(0), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => m.resize(NaN), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => m.resize(-1), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => m.resize(PAGE_SIZE, { mayMove: 'no' as never }), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => m.protect(16 as Prot), 'ERR_INVALID_ARG_VALUE', TypeError);
    expectCode(() => m.mapFixed(1, PAGE_SIZE - 1, RW, ANON), 'ERR_OUT_OF_RANGE', RangeError);
    expectCode(() => m.mapFixed(0, PAGE_SIZE, RW, ANON | MapFlags.FixedNoReplace), 'ERR_INVALID_ARG_VALUE', TypeError);
  });
  test('msync on an anonymous private mapping is fine; where the kernel refuses, it says why', () => {
    using m = mapAnonymous(PAGE_SIZE);
    expect(() => m.sync()).not.toThrow();
    // MS_INVALIDATE over locked pages: the kernel answers EBUSY (msync(2)).
    using locked = mapAnonymous(PAGE_SIZE, { shared: true });
    locked.lock();
    const err = expectCode(() => locked.sync({ invalidate: true }), 'EBUSY');
    expect(err).toMatchObject({ syscall: 'msync', errno: -16 });
  });
  test('Mapping cannot be constructed directly', () => {
    const Ctor = Mapping as unknown as new () => Mapping;
    expectCode(() => new Ctor(), 'ERR_ILLEGAL_CONSTRUCTOR', TypeError);
  });
  test('mmap() with no fd and no MapFlags.Anonymous: ERR_OUT_OF_RANGE that names the missing flag', () => {
    for (const call of [
      () => mmap(PAGE_SIZE, Prot.Read, MapFlags.Private),
      () => mmap(PAGE_SIZE, Prot.Read, MapFlags.Shared, -1),
    ]) {
      const err = expectCode(call, 'ERR_OUT_OF_RANGE', RangeError);
      expect(err.message).toContain('memory with no file needs MapFlags.Anonymous');
    }
  });
  test('RingBuffer cannot be constructed directly, not even with a memory and a mapping', () => {
    const Ctor = RingBuffer as unknown as new (...args: unknown[]) => RingBuffer;
    expectCode(() => new Ctor(), 'ERR_ILLEGAL_CONSTRUCTOR', TypeError);
    const ring = RingBuffer.create(4096);
    try {
      expectCode(() => new Ctor(ring.memory, ring.mapping, 4096, 0, 0), 'ERR_ILLEGAL_CONSTRUCTOR', TypeError);
    } finally {
      ring.close();
    }
  });
  test('flush() rejects (never throws synchronously) on bad options', async () => {
    using m = mapAnonymous(PAGE_SIZE);
    const p = m.flush({ offset: -1 });
    await expect(p).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });
});

describe('use after unmap', () => {
  const calls = (m: Mapping): Array<() => unknown> => [
    () => m.buffer,
    () => m.bytes,
    () => m.address,
    () => m.view(0, 1),
    () => m.protect(Prot.Read),
    () => m.advise(Advice.Normal),
    () => m.sync(),
    () => m.lock(),
    () => m.unlock(),
    () => m.residency(),
    () => m.resize(PAGE_SIZE),
    () => m.mapFixed(0, PAGE_SIZE, RW, ANON),
  ];

  test("every call throws ERR_MAPPING_CLOSED; a view kept past unmap() still reads the mapping's own pages", async () => {
    const path = fileWith(dir, 'closed.bin', new Uint8Array(2 * PAGE_SIZE).fill(3));
    const m = mapFile(path, { mode: 'r+' });
    const bytes = m.bytes;
    const window = m.view(PAGE_SIZE, 16);
    m.unmap();
    expect(m.closed).toBe(true);
    expect(m.length).toBe(0);
    // Not emptied: Node's own asynchronous I/O may still be using them (see holders.test.ts).
    expect([bytes.length, bytes[0], window.length, window[15]]).toEqual([2 * PAGE_SIZE, 3, 16, 3]);
    for (const call of calls(m)) expectCode(call, 'ERR_MAPPING_CLOSED');
    await expect(m.flush()).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    expect(() => m.unmap()).not.toThrow();
    expect(() => m[Symbol.dispose]()).not.toThrow();
  });

  test('with detachViews every view has length 0, reads give undefined, every call throws ERR_MAPPING_CLOSED', async () => {
    const path = fileWith(dir, 'detached.bin', new Uint8Array(2 * PAGE_SIZE).fill(3));
    const m = mapFile(path, { mode: 'r+' });
    const bytes = m.bytes;
    const words = new Uint32Array(m.buffer);
    const window = m.view(PAGE_SIZE, 16);
    const dv = new DataView(m.buffer);
    const buffer = m.buffer;
    m.unmap({ detachViews: true });
    expect(m.closed).toBe(true);
    expect(m.length).toBe(0);
    for (const v of [bytes, words, window]) {
      expect(v.length).toBe(0);
      expect(v[0]).toBeUndefined();
    }
    expect(buffer.byteLength).toBe(0);
    expect(() => dv.getUint8(0)).toThrow(/detached/);
    for (const call of calls(m)) expectCode(call, 'ERR_MAPPING_CLOSED');
    await expect(m.flush()).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    expect(() => m.unmap({ detachViews: true })).not.toThrow();
  });

  test('an argument whose getter unmaps the mapping in the middle of the call: ERR_MAPPING_CLOSED', async () => {
    const calls: Array<(m: Mapping, sneaky: object) => unknown> = [
      (m, o) => m.sync(o),
      (m, o) => m.protect(Prot.Read, (o as { offset: number }).offset),
      (m, o) => m.lock((o as { offset: number }).offset),
      (m, o) => m.residency((o as { offset: number }).offset),
    ];
    for (const call of calls) {
      const m = mapAnonymous(PAGE_SIZE);
      const sneaky = {
        get offset() {
          m.unmap();
          return 0;
        },
      };
      expect(thrown(() => call(m, sneaky))).toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
    }
    // Options read after the mapping was looked up: each is read before it is used now.
    const unmapping = (m: Mapping, name: string, value: unknown): object =>
      Object.defineProperty({}, name, {
        get() {
          m.unmap();
          return value;
        },
      });
    const optionCalls: Array<[string, unknown, (m: Mapping, o: object) => unknown]> = [
      ['mayMove', true, (m, o) => m.resize(2 * PAGE_SIZE, o)],
      ['growFile', false, (m, o) => m.resize(2 * PAGE_SIZE, o)],
      ['onFault', false, (m, o) => m.lock(0, PAGE_SIZE, o)],
      ['async', false, (m, o) => m.sync(o)],
      ['timeoutMs', 1000, (m, o) => m.share(o)],
    ];
    for (const [name, value, call] of optionCalls) {
      using shm = SharedMemory.create(PAGE_SIZE);
      const m = shm.map();
      expect([name, thrown(() => call(m, unmapping(m, name, value)))]).toEqual([
        name,
        expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }),
      ]);
    }
    const m = mapAnonymous(PAGE_SIZE);
    await expect(
      m.flush({
        get offset() {
          m.unmap();
          return 0;
        },
      } as never),
    ).rejects.toMatchObject({ code: 'ERR_MAPPING_CLOSED' });
  });

  test('RingBuffer.create() and attach() with bad options: refused before anything is made or mapped', () => {
    using shm = SharedMemory.create(2 * PAGE_SIZE);
    const before = mappingStats().regions;
    const fds = readdirSync('/proc/self/fd').length;
    expect(thrown(() => RingBuffer.create(4096, { spin: -1 }))).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(thrown(() => RingBuffer.create(4096, 'fast' as never))).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(thrown(() => RingBuffer.attach(shm, { spin: 1.5 }))).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    // Nothing more (a collection meanwhile may release what earlier tests dropped: fewer is fine).
    expect(mappingStats().regions).toBeLessThanOrEqual(before);
    expect(readdirSync('/proc/self/fd').length).toBeLessThanOrEqual(fds);
  });

  test('unmap() options are checked, before anything is closed', () => {
    const m = mapAnonymous(PAGE_SIZE);
    expectCode(() => m.unmap({ detachViews: 'yes' as unknown as boolean }), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectCode(() => m.unmap(7 as unknown as object), 'ERR_INVALID_ARG_TYPE', TypeError);
    expect(m.closed).toBe(false);
    m.unmap({});
    expect(m.closed).toBe(true);
  });
});

describe('runtimes that forbid external ArrayBuffers', () => {
  test('this one allows them: the probe at load answers napi_ok', () => {
    expect(native.externalBuffers).toBe(0);
  });

  test('where the probe was refused, every way to map throws ERR_MAPPING_EXTERNAL_BUFFERS_FORBIDDEN and maps nothing', () => {
    // No such runtime here (Electron's memory cage): the probe's answer is injected into the
    // addon's exports, which the library reads, before the library loads.
    const child = runFixture('errors-child.js', 'externalBuffers', [file], [], { timeout: 60_000 });
    expect(child.stderr).toBe('');
    const refused = ['ERR_MAPPING_EXTERNAL_BUFFERS_FORBIDDEN', 'Error', true];
    expect(JSON.parse(child.stdout)).toEqual({
      mmap: refused,
      mapAnonymous: refused,
      mapFile: refused,
      'SharedMemory.map': refused,
      stats: { regions: 0, bytes: 0, retiredRegions: 0, retiredBytes: 0 },
    });
  });
});

describe('messages as Node words them', () => {
  test('an argument is an "argument", an option a "property"; one-of lists the choices', () => {
    expect(thrown(() => mapAnonymous('1' as unknown as number)).message).toBe(
      'The "length" argument must be of type number. Received type string (\'1\')',
    );
    expect(thrown(() => mapAnonymous(PAGE_SIZE, { shared: 1 as unknown as boolean })).message).toBe(
      'The "options.shared" property must be of type boolean. Received type number (1)',
    );
    expect(thrown(() => mapFile(file, { mode: 'w' as never })).message).toBe(
      "The property 'options.mode' must be one of: 'r', 'r+', 'w+', 'copy'. Received 'w'",
    );
    expect(thrown(() => mapAnonymous(PAGE_SIZE, { hugePages: 'yes' as never }))).toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });

  test('a default-true option keeps its default when left out, and is checked when given', () => {
    using m = mapAnonymous(PAGE_SIZE);
    expect(() => m.resize(2 * PAGE_SIZE, {})).not.toThrow();
    expectCode(() => m.resize(2 * PAGE_SIZE, { mayMove: 'no' as never }), 'ERR_INVALID_ARG_TYPE', TypeError);
  });
});

test('every code of MmanErrorCode is documented once, in the table of docs/safety.md, and the table names no other', () => {
  const root = join(__dirname, '..');
  const union = /export type MmanErrorCode =([^;]+);/.exec(readFileSync(join(root, 'src', 'errors.ts'), 'utf8'))![1];
  const codes = [...union.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]).sort();
  const rows = readFileSync(join(root, 'docs', 'safety.md'), 'utf8')
    .split('\n')
    .filter((line) => /^\| `[A-Z_]+`/.test(line))
    .map((line) => /^\| `([A-Z_]+)`/.exec(line)![1])
    .sort();
  expect(codes.length).toBeGreaterThan(20);
  expect(rows).toEqual(codes);
});
