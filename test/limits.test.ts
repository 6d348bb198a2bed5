// The limits of a process met through mman: vm.max_map_count, the descriptor table, the
// address space, a FIFO where a file was expected, more pages than one answer holds, an
// environment another program wrote. Each is a coded error, never a death or a hang; each
// case runs in a child process.
import { spawnSync } from 'node:child_process';
import { fixture, runFixture, tempDir } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

function run(mode: string, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const child = runFixture('limits-child.js', mode, [dir], ['--expose-gc'], { timeout: 60_000, env });
  expect(child.signal).toBeNull();
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout);
}

// The same under ulimit -n 1024, as a container may set it.
function runUnderFdLimit(mode: string): Record<string, unknown> {
  const child = spawnSync(
    'sh',
    [
      '-c',
      `ulimit -n 1024 && exec "$0" --expose-gc "$1" ${mode} "$2"`,
      process.execPath,
      fixture('limits-child.js'),
      dir,
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(child.signal).toBeNull(); // V8 did not die for want of a memory area or a descriptor
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout);
}

test('70,000 one-page file mappings under ulimit -n 1024: no descriptor each; refused with ERR_MAPPING_LIMIT while the runtime still has room', () => {
  const report = runUnderFdLimit('maxMapCount') as {
    fdsAt1000: number;
    error: { code: string; message: string };
    held: number;
    areas: number;
    max: number;
    sum: number;
  };
  expect(report.fdsAt1000).toBe(0); // a thousand mappings held, not one descriptor more
  expect(report.error.code).toBe('ERR_MAPPING_LIMIT');
  expect(report.error.message).toContain('vm.max_map_count');
  expect(report.held).toBeLessThan(70_000);
  expect(report.areas).toBeLessThan(report.max); // refused before the kernel's limit
  expect(report.held).toBeGreaterThan(report.max / 2);
  expect(report).toMatchObject({ compiled: 5, child: 'child', after: 0, again: 'none' });
  expect(report.sum).toBe(report.held);
});

test('20,000 guarded mappings made and unmapped in a loop under ulimit -n 1024: a descriptor each while open, none after', () => {
  // One guarded mapping holds one descriptor (its file's, for the fault handler) while open, and
  // none from unmap() on, though a view still keeps its pages; 20,000 of them leave none either.
  expect(runUnderFdLimit('guardedLoop')).toEqual({
    failures: 0,
    first: null,
    open: 1,
    afterUnmap: 0,
    viewed: 1,
    afterLoop: 0,
  });
});

test('2,000 sendTo() at once under ulimit -n 1024: those that cannot start are EMFILE with the call that failed, the process lives, every descriptor comes back', () => {
  const { ends, left } = runUnderFdLimit('pendingSends') as { ends: Record<string, number>; left: number };
  // A job duplicates the socket and the segment's descriptor (fcntl), then makes its eventfd:
  // whichever ran out first says so. The rest went out, or were still waiting for room when
  // the socket was destroyed.
  const refused = (ends['EMFILE eventfd'] ?? 0) + (ends['EMFILE fcntl'] ?? 0);
  expect(refused).toBeGreaterThan(0);
  expect(
    Object.keys(ends).filter((end) => !['EMFILE eventfd', 'EMFILE fcntl', 'ERR_SOCKET_CLOSED', 'sent'].includes(end)),
  ).toEqual([]);
  expect(Object.values(ends).reduce((a, b) => a + b)).toBe(2000);
  expect(left).toBe(0);
});

test('protect() splitting a mapping into 35,000 areas: refused with ERR_MAPPING_LIMIT inside the reserve, as a new mapping is', () => {
  const report = run('splits') as {
    error: string;
    refusedAt: number;
    areas: number;
    then: string;
    max: number;
    compiled: number;
  };
  expect(report.error).toBe('ERR_MAPPING_LIMIT');
  expect(report.refusedAt).toBeGreaterThan(0);
  expect(report.areas).toBeLessThan(report.max);
  expect(report.then).toBe('ERR_MAPPING_LIMIT');
  expect(report.compiled).toBe(42);
});

test('an address outside the address space, below vm.mmap_min_addr, past 2^64 or unaligned: ERR_OUT_OF_RANGE, nothing mapped', () => {
  const report = run('addresses') as {
    tried: Record<string, string>;
    mapped: number;
    pageZero: boolean;
    wrapped: boolean;
  };
  for (const [name, code] of Object.entries(report.tried)) expect([name, code]).toEqual([name, 'ERR_OUT_OF_RANGE']);
  expect(Object.keys(report.tried)).toHaveLength(8);
  expect(report).toMatchObject({ mapped: 0, pageZero: false, wrapped: false });
});

test('a FIFO where a file or a segment was expected, and a directory: refused at once, never waited on', () => {
  expect(run('fifos')).toMatchObject({
    mapFile: 'ENODEV',
    mapFileRw: 'ENODEV',
    directory: 'EISDIR',
    open: 'ERR_SHARED_MEMORY_BAD_DESCRIPTOR',
    openReadOnly: 'ERR_SHARED_MEMORY_BAD_DESCRIPTOR',
    mapFileAsync: 'ENODEV',
    fds: 0,
  });
});

test('residency() over more pages than one answer holds: ERR_OUT_OF_RANGE; a part of it works', () => {
  expect(run('residency')).toEqual({ whole: 'ERR_OUT_OF_RANGE', part: 10 });
});

test.each([
  ['not JSON', '{bad'],
  ['not a list', '{"fd":4}'],
  ['stdin as a segment', '[{"fd":0}]'],
  ['a descriptor that is not a number', '[{"fd":"4"}]'],
  ['a bad name', '[{"fd":4,"name":"../etc"}]'],
])(
  'SharedMemory.inherited() with an MMAN_SHARED fork() did not write (%s): a coded error, no descriptor touched',
  (_what, value) => {
    expect(run('inherited', { ...process.env, MMAN_SHARED: value })).toEqual({
      error: 'ERR_SHARED_MEMORY_BAD_ENVIRONMENT',
      stdinFlagsUnchanged: true,
    });
  },
);

test('SharedMemory.inherited() with MMAN_SHARED naming one segment twice: a coded error before the descriptor is taken', () => {
  expect(run('inheritedTwice')).toEqual({ error: 'ERR_SHARED_MEMORY_BAD_ENVIRONMENT', unchanged: true, fromFd: true });
});

test("SharedMemory.inherited() in a worker thread: none (they are the main thread's), and its exit closes nothing", () => {
  expect(run('inheritedInWorker')).toEqual({ inWorker: 0, open: true, inMain: 1, fd: true });
});
