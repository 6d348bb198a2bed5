// SharedMemory across real forked processes: what the parent writes the child reads, and
// the other way round; seals, names, modes, and every refused argument.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, ftruncateSync, openSync, readdirSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';

import { PAGE_SIZE, SharedMemory, fork, notify } from '../src';
import { permsAt, startChild, uniqueName } from './helpers';

const created: SharedMemory[] = [];
afterAll(() => {
  for (const shm of created) {
    shm.unlink();
    shm.close();
  }
});

function named(size: number, tag: string): SharedMemory {
  const shm = SharedMemory.create(size, { name: uniqueName(tag) });
  created.push(shm);
  return shm;
}

describe('memfd segment (SharedMemory.create(size))', () => {
  test('the child reads what the parent wrote, and the parent reads what the child wrote', async () => {
    const shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    m.bytes.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    const child = startChild('echo', [], [shm]);
    const report = (await child.next()) as { seen: number[]; size: number; name: null };
    expect(report).toEqual({
      seen: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
      size: PAGE_SIZE,
      name: null,
    });
    expect(Array.from(m.bytes.subarray(16, 32))).toEqual([16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(await child.exited).toEqual([0, null]);
  });

  test('Atomics.add from parent and child on the same counter totals exactly', async () => {
    const shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const v = new Int32Array(m.buffer);
    const child = startChild('add', ['200000'], [shm]);
    expect(await child.next()).toBe('ready');
    Atomics.store(v, 1, 1);
    notify(v, 1);
    for (let i = 0; i < 200000; i++) Atomics.add(v, 0, 1);
    expect(await child.next()).toBe('done');
    expect(Atomics.load(v, 0)).toBe(400000);
    await child.exited;
  });

  test('a child cannot shrink it: ftruncate fails with EPERM (F_SEAL_SHRINK)', async () => {
    const shm = SharedMemory.create(8192);
    const child = startChild('shrink', [], [shm]);
    expect(await child.next()).toEqual({ code: 'EPERM', size: 8192 });
    expect(shm.size).toBe(8192);
    await child.exited;
  });

  test("fork() with stdio 'pipe' still appends the fds after 'ipc'", async () => {
    const shm = SharedMemory.create(PAGE_SIZE);
    shm.map().bytes[0] = 5;
    const child = fork(join(__dirname, 'fixtures', 'shared-child.js'), ['echo', '', '1'], {
      share: [shm],
      stdio: 'pipe',
    });
    const [report] = await once(child, 'message');
    expect(report).toEqual({ seen: [5], size: PAGE_SIZE, name: null });
    await once(child, 'exit');
  });

  test('grow() grows it; shrinking is refused, by the seal or before the call', () => {
    const shm = SharedMemory.create(PAGE_SIZE);
    shm.grow(3 * PAGE_SIZE);
    expect(shm.size).toBe(3 * PAGE_SIZE);
    const m = shm.map();
    expect(m.length).toBe(3 * PAGE_SIZE);
    expect(() => ftruncateSync(shm.fd, PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(() => shm.grow(PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  test('fixedSize also seals against growing: grow() fails with EPERM', () => {
    const shm = SharedMemory.create(PAGE_SIZE, { fixedSize: true });
    expect(() => shm.grow(8192)).toThrow(
      expect.objectContaining({
        code: 'EPERM',
        syscall: 'ftruncate',
        message:
          "EPERM: operation not permitted, ftruncate (the segment is sealed against growing: 'grow', which fixedSize sets)",
      }),
    );
    expect(shm.size).toBe(PAGE_SIZE);
  });

  test('a child killed with SIGKILL mid-way leaves the mapping intact and its writes visible', async () => {
    const shm = SharedMemory.create(64 * 1024);
    const m = shm.map();
    const child = startChild('writeAndHang', [], [shm]);
    expect(await child.next()).toBe('written');
    child.process.kill('SIGKILL');
    expect(await child.exited).toEqual([null, 'SIGKILL']);
    for (let i = 0; i < m.length; i += 997) expect(m.bytes[i]).toBe(i % 251);
    m.bytes[0] = 42; // still ours, still writable
    expect(m.bytes[0]).toBe(42);
  });

  test('close() is idempotent, mappings made before stay valid, and the SharedMemory refuses its fd', () => {
    const shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    shm.close();
    shm.close();
    expect(shm.closed).toBe(true);
    m.bytes[10] = 7;
    expect(m.bytes[10]).toBe(7);
    expect(() => shm.fd).toThrow(expect.objectContaining({ code: 'ERR_SHARED_MEMORY_CLOSED' }));
    expect(() => shm.map()).toThrow(expect.objectContaining({ code: 'ERR_SHARED_MEMORY_CLOSED' }));
    m.unmap();
  });

  test('map() takes offset, length and readOnly', () => {
    const shm = SharedMemory.create(3 * PAGE_SIZE);
    const all = shm.map();
    all.bytes[PAGE_SIZE + 5] = 9;
    const window = shm.map({ offset: PAGE_SIZE, length: 100, readOnly: true });
    expect(window.length).toBe(100);
    expect(window.bytes[5]).toBe(9);
    expect(window.shared).toBe(true);
    expect(permsAt(window.address)).toBe('r--s');
    expect(permsAt(all.address)).toBe('rw-s');
  });

  test('fromFd() wraps an fd, once; inherited() is empty in a process not started by fork()', () => {
    using original = SharedMemory.create(PAGE_SIZE);
    using copy = SharedMemory.fromFd(openSync(`/proc/self/fd/${original.fd}`, 'r+'));
    expect(copy.size).toBe(PAGE_SIZE);
    expect(copy.name).toBeUndefined();
    // A descriptor a SharedMemory holds already: two owners would both close it.
    expect(() => SharedMemory.fromFd(original.fd)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(SharedMemory.inherited()).toEqual([]);
  });
});

describe('sharing by hand (docs/shared-memory.md, "Doing it by hand")', () => {
  const fixture = join(__dirname, 'fixtures', 'shared-child.js');

  test('spawn with the fd in stdio after ipc: the child maps fd 4 with fromFd()', async () => {
    const shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    m.bytes[0] = 41;
    const child = spawn(process.execPath, [fixture, 'byHand', '4'], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', shm.fd],
    });
    const [report] = await once(child, 'message');
    expect(report).toEqual({ first: 41, size: PAGE_SIZE });
    expect(m.bytes[1]).toBe(42);
    await once(child, 'exit');
  });

  test('an unrelated process opens /proc/<pid>/fd/<n> and maps the same memfd', async () => {
    const shm = SharedMemory.create(8192);
    const m = shm.map();
    m.bytes[0] = 7;
    const child = spawn(process.execPath, [fixture, 'byHand', `/proc/${process.pid}/fd/${shm.fd}`], {
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    });
    const [report] = await once(child, 'message');
    expect(report).toEqual({ first: 7, size: 8192 });
    expect(m.bytes[1]).toBe(8);
    await once(child, 'exit');
  });
});

describe('named segment (SharedMemory.create(size, { name }))', () => {
  test('is created in /dev/shm with mode 0600 whatever the umask', () => {
    const old = process.umask(0);
    try {
      const shm = named(PAGE_SIZE, 'mode');
      const st = statSync(join('/dev/shm', shm.name!));
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.size).toBe(PAGE_SIZE);
    } finally {
      process.umask(old);
    }
    const other = process.umask(0o077);
    try {
      expect(statSync(join('/dev/shm', named(PAGE_SIZE, 'mode2').name!)).mode & 0o777).toBe(0o600);
    } finally {
      process.umask(other);
    }
  });

  test('a child opens it by name, reads what the parent wrote and writes back', async () => {
    const shm = named(PAGE_SIZE, 'echo');
    const m = shm.map();
    m.bytes.set([9, 8, 7, 6]);
    const child = fork(join(__dirname, 'fixtures', 'shared-child.js'), ['echo', shm.name!, '4']);
    const [report] = await new Promise<unknown[]>((resolve) => child.once('message', (...a) => resolve(a)));
    expect(report).toEqual({ seen: [9, 8, 7, 6], size: PAGE_SIZE, name: shm.name });
    expect(Array.from(m.bytes.subarray(4, 8))).toEqual([6, 7, 8, 9]);
  });

  test('passed through fork() it keeps its name in the child', async () => {
    const shm = named(PAGE_SIZE, 'fork');
    const child = startChild('echo', [], [shm]);
    expect(await child.next()).toEqual(expect.objectContaining({ name: shm.name }));
  });

  test('open() maps the same memory; create() of a taken name fails with EEXIST', () => {
    const shm = named(PAGE_SIZE, 'open');
    const a = shm.map();
    const opened = SharedMemory.open(shm.name!);
    const b = opened.map();
    a.bytes[100] = 123;
    expect(b.bytes[100]).toBe(123);
    expect(() => SharedMemory.create(PAGE_SIZE, { name: shm.name })).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
  });

  test('unlink() removes the file; it is idempotent; mappings stay valid', () => {
    const shm = named(PAGE_SIZE, 'unlink');
    const m = shm.map();
    const path = join('/dev/shm', shm.name!);
    expect(existsSync(path)).toBe(true);
    shm.unlink();
    expect(existsSync(path)).toBe(false);
    shm.unlink();
    m.bytes[0] = 1;
    expect(m.bytes[0]).toBe(1);
    expect(() => SharedMemory.open(shm.name!)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  const refused: Array<[string, string]> = [
    ['empty', ''],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['a slash inside', 'a/b'],
    ['a leading slash', '/x'],
    ['a trailing slash', 'x/'],
    ['a path escape', '../etc'],
    ['NUL', 'a\0b'],
    ['256 ASCII bytes', 'x'.repeat(256)],
    ['256 UTF-8 bytes in 128 characters', 'é'.repeat(128)],
  ];
  // Other test files, in other jest workers, create and remove segments of their own
  // (mman-test-<pid>-...) meanwhile: only the rest of /dev/shm is compared.
  const notTests = () =>
    readdirSync('/dev/shm')
      .filter((entry) => !entry.startsWith('mman-test-'))
      .sort();
  test.each(refused)('a name with %s is refused with ERR_INVALID_ARG_VALUE before touching /dev/shm', (_what, name) => {
    const before = notTests();
    expect(() => SharedMemory.create(PAGE_SIZE, { name })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' }),
    );
    expect(() => SharedMemory.open(name)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(notTests()).toEqual(before);
  });

  test('a name of 255 bytes is accepted', () => {
    const name = `mman-test-${process.pid}-`.padEnd(255, 'n');
    const shm = SharedMemory.create(PAGE_SIZE, { name });
    created.push(shm);
    expect(shm.name).toBe(name);
  });
});

describe('bad arguments', () => {
  const cases: Array<[string, () => unknown, string]> = [
    ['create(size) not a number', () => SharedMemory.create('4096' as never), 'ERR_INVALID_ARG_TYPE'],
    ['create(0)', () => SharedMemory.create(0), 'ERR_OUT_OF_RANGE'],
    ['create(-1)', () => SharedMemory.create(-1), 'ERR_OUT_OF_RANGE'],
    ['create(1.5)', () => SharedMemory.create(1.5), 'ERR_OUT_OF_RANGE'],
    ['create(NaN)', () => SharedMemory.create(NaN), 'ERR_OUT_OF_RANGE'],
    ['create(size, null)', () => SharedMemory.create(PAGE_SIZE, null as never), 'ERR_INVALID_ARG_TYPE'],
    ['create(size, { name: 1 })', () => SharedMemory.create(PAGE_SIZE, { name: 1 as never }), 'ERR_INVALID_ARG_TYPE'],
    [
      'create(size, { fixedSize: 1 })',
      () => SharedMemory.create(PAGE_SIZE, { fixedSize: 1 as never }),
      'ERR_INVALID_ARG_TYPE',
    ],
    [
      'create(size, { name, fixedSize })',
      () => SharedMemory.create(PAGE_SIZE, { name: 'x', fixedSize: true }),
      'ERR_INVALID_ARG_VALUE',
    ],
    ['open(1)', () => SharedMemory.open(1 as never), 'ERR_INVALID_ARG_TYPE'],
    ['open(missing)', () => SharedMemory.open(uniqueName('missing')), 'ENOENT'],
    ['fromFd(-1)', () => SharedMemory.fromFd(-1), 'ERR_OUT_OF_RANGE'],
    ['fromFd("3")', () => SharedMemory.fromFd('3' as never), 'ERR_INVALID_ARG_TYPE'],
    ['fromFd(a closed fd)', () => SharedMemory.fromFd(2 ** 20), 'EBADF'],
    [
      'fromFd(a file on disk)',
      () => {
        const fd = openSync(process.execPath, 'r'); // the runtime's binary: never on tmpfs
        try {
          return SharedMemory.fromFd(fd);
        } finally {
          closeSync(fd);
        }
      },
      'ERR_INVALID_ARG_VALUE',
    ],
    ['map({ offset: -1 })', () => SharedMemory.create(PAGE_SIZE).map({ offset: -1 }), 'ERR_OUT_OF_RANGE'],
    [
      'map({ length: past the end })',
      () => SharedMemory.create(PAGE_SIZE).map({ length: 2 * PAGE_SIZE }),
      'ERR_OUT_OF_RANGE',
    ],
    [
      'map({ readOnly: "yes" })',
      () => SharedMemory.create(PAGE_SIZE).map({ readOnly: 'yes' as never }),
      'ERR_INVALID_ARG_TYPE',
    ],
    ['grow("x")', () => SharedMemory.create(PAGE_SIZE).grow('x' as never), 'ERR_INVALID_ARG_TYPE'],
    [
      'fork share: [1]',
      () => fork(join(__dirname, 'fixtures', 'shared-child.js'), [], { share: [1 as never] }),
      'ERR_INVALID_ARG_TYPE',
    ],
    [
      'fork share: not an array',
      () => fork(join(__dirname, 'fixtures', 'shared-child.js'), [], { share: 1 as never }),
      'ERR_INVALID_ARG_TYPE',
    ],
    [
      'fork stdio without ipc',
      () => fork(join(__dirname, 'fixtures', 'shared-child.js'), [], { stdio: ['pipe', 'pipe', 'pipe'] }),
      'ERR_INVALID_ARG_VALUE',
    ],
    [
      'new SharedMemory()',
      () => new (SharedMemory as never as new (...a: unknown[]) => unknown)(1, 2),
      'ERR_ILLEGAL_CONSTRUCTOR',
    ],
  ];
  test.each(cases)('%s → %s', (_what, call, code) => {
    expect(call).toThrow(expect.objectContaining({ code }));
  });
});

describe('seals (shm.seal(), shm.seals)', () => {
  test("'futureWrite': a child cannot map it writable (EPERM) while this process's mapping still writes", async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const mine = shm.map();
    shm.seal('futureWrite', 'seal');
    mine.bytes[0] = 42; // made before the seal: still writes
    expect(() => shm.map()).toThrow(expect.objectContaining({ code: 'EPERM', syscall: 'mmap' }));
    const child = startChild('tryWrite', [], [shm]);
    expect(await child.next()).toEqual({ writable: 'EPERM', read: 42, seals: ['shrink', 'futureWrite', 'seal'] });
    await child.exited;
    mine.unmap();
  });

  test("'write' is refused with EBUSY while a writable mapping exists, then forbids every write", () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    void m.bytes; // a buffer: unmap() leaves the pages mapped until it is collected
    expect(() => shm.seal('write')).toThrow(expect.objectContaining({ code: 'EBUSY', syscall: 'fcntl' }));
    m.unmap();
    const unused = shm.map();
    unused.unmap(); // no buffer was ever made: unmapped at once
    expect(shm.seals).toEqual(['shrink']);
  });

  test("'write' after every writable mapping is gone: new writable maps fail, readers read", () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    shm.seal('write');
    expect(shm.seals).toEqual(['shrink', 'write']);
    expect(() => shm.map()).toThrow(expect.objectContaining({ code: 'EPERM' }));
    using ro = shm.map({ readOnly: true });
    expect(ro.bytes[0]).toBe(0);
  });

  test("'seal' stops further seals (EPERM); 'grow' stops grow()", () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    shm.seal('grow', 'seal');
    expect(() => shm.grow(2 * PAGE_SIZE)).toThrow(expect.objectContaining({ code: 'EPERM' }));
    expect(() => shm.seal('write')).toThrow(
      expect.objectContaining({
        code: 'EPERM',
        syscall: 'fcntl',
        message: expect.stringContaining("sealed with 'seal'"),
      }),
    );
    expect(shm.seals).toEqual(['shrink', 'grow', 'seal']);
  });

  test('a named segment cannot be sealed: seals say so, seal() is refused by the kernel', () => {
    const shm = named(PAGE_SIZE, 'seals');
    expect(shm.seals).toEqual(['seal']);
    expect(() => shm.seal('grow')).toThrow(
      expect.objectContaining({
        code: 'EPERM',
        errno: -1,
        syscall: 'fcntl',
        message: expect.stringContaining('a named segment cannot be sealed'),
      }),
    );
  });

  test('an unknown seal: ERR_INVALID_ARG_VALUE, nothing sealed', () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    expect(() => shm.seal('grow', 'exec' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(shm.seals).toEqual(['shrink']);
  });

  test('a memfd is never executable (MFD_NOEXEC_SEAL, Linux 6.3)', () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const [major, minor] = release().split('.').map(Number);
    const mode = statSync(`/proc/self/fd/${shm.fd}`).mode & 0o777;
    if (major > 6 || (major === 6 && minor >= 3)) expect(mode & 0o111).toBe(0);
    else expect(mode).toBe(0o777); // before 6.3 a memfd is created 0777
  });
});

describe("a named segment's mode and a read-only open", () => {
  test('options.mode is the exact mode, whatever the umask; never executable, never without a name', () => {
    const old = process.umask(0o077);
    try {
      const shm = SharedMemory.create(PAGE_SIZE, { name: uniqueName('mode640'), mode: 0o640 });
      created.push(shm);
      expect(statSync(join('/dev/shm', shm.name!)).mode & 0o777).toBe(0o640);
    } finally {
      process.umask(old);
    }
    const before = readdirSync('/dev/shm').length;
    expect(() => SharedMemory.create(PAGE_SIZE, { name: uniqueName('x'), mode: 0o700 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => SharedMemory.create(PAGE_SIZE, { name: uniqueName('x'), mode: 0o1666 })).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => SharedMemory.create(PAGE_SIZE, { mode: 0o600 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(readdirSync('/dev/shm').length).toBe(before);
  });

  test('open(name, { readOnly }): maps read-only by default; a writable map is EACCES', () => {
    const shm = named(PAGE_SIZE, 'readonly');
    const writer = shm.map();
    writer.bytes[0] = 5;
    using ro = SharedMemory.open(shm.name!, { readOnly: true });
    expect(ro.readOnly).toBe(true);
    using m = ro.map();
    expect(permsAt(m.address)).toBe('r--s');
    expect(m.bytes[0]).toBe(5);
    expect(() => ro.map({ readOnly: false })).toThrow(expect.objectContaining({ code: 'EACCES', syscall: 'mmap' }));
    expect(() => ro.grow(2 * PAGE_SIZE)).toThrow(expect.objectContaining({ syscall: 'fallocate', code: 'EBADF' }));
    writer.unmap();
  });
});
