// A full filesystem: a 1 MiB tmpfs the test mounts, and a 1 MiB /dev/shm in a mount namespace
// of its own (unshare -m), as in a container whose /dev/shm is small. Space is reserved where
// a file or segment is made or grown, so a full filesystem is ENOSPC at that call; a sparse
// file's pages that find no room are SIGBUS, which the guard turns into a reported loss.
// Needs root (mount, unshare); skipped otherwise, saying why. Each case runs in a child.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE } from '../src';
import { fixture, runFixture } from './helpers';

const MiB = 2 ** 20;

// Whether this process may mount a tmpfs (root, and a kernel that lets it): tried once.
function canMount(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  const probe = mkdtempSync(join(tmpdir(), 'mman-mount-probe-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]);
  if (mounted.status !== 0) {
    rmSync(probe, { recursive: true, force: true });
    return `mount -t tmpfs failed: ${mounted.stderr.toString().trim()}`;
  }
  spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return null;
}
const whyNot = canMount();
if (whyNot !== null) console.warn(`test/full-disk.test.ts skipped: ${whyNot}`);
const maybe = whyNot === null ? describe : describe.skip;

let dir: string;
beforeEach(() => {
  if (whyNot !== null) return;
  dir = mkdtempSync(join(tmpdir(), 'mman-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  if (mounted.status !== 0) throw new Error(`mount: ${mounted.stderr}`);
});
afterEach(() => {
  if (whyNot !== null) return;
  spawnSync('umount', ['-l', dir]);
  rmSync(dir, { recursive: true, force: true });
});

function run(mode: string): Record<string, unknown> {
  const child = runFixture('full-disk-child.js', mode, [dir], [], { timeout: 60_000 });
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout);
}

const enospc = { code: 'ENOSPC', syscall: 'fallocate' };

maybe('a full filesystem (a 1 MiB tmpfs)', () => {
  test("create: true and 'w+' past the free space: ENOSPC at the call, and the file they made is removed", () => {
    expect(run('create')).toEqual({
      created: { ...enospc, named: 'a.bin' },
      wplus: { ...enospc, named: 'b.bin' },
      left: [],
    });
  });

  test('create: true on an existing file: ENOSPC, and the file keeps its size and bytes', () => {
    expect(run('existing')).toEqual({ result: { ...enospc, named: 'kept.bin' }, size: 100, byte: 7 });
  });

  test('resize({ growFile }) past the free space: ENOSPC, the file and the mapping as they were', () => {
    // The mapping does not keep the path; the error names the file all the same.
    expect(run('growFile')).toEqual({
      grown: { ...enospc, named: 'log.bin' },
      size: PAGE_SIZE,
      length: PAGE_SIZE,
      byte: 3,
    });
  });

  test('a sparse file written through a guarded mapping: every page without room is reported lost, with where and why', () => {
    const report = run('sparseGuarded') as {
      lost: number;
      truncated: number;
      next: Record<string, unknown>;
      pages: number;
      inFile: number;
      size: number;
    };
    expect(report.lost).toBeGreaterThan(0);
    expect(report.truncated).toBe(0); // the file's size never changed: not a truncation
    expect(report.inFile + report.lost).toBe(report.pages); // each write reached the file, or is reported
    expect(report.size).toBe(4 * MiB);
    expect(report.next).toMatchObject({ code: 'ERR_MAPPING_PAGE_LOST', reason: 'ENOSPC' });
    expect(report.next.offset).toBe(report.inFile * PAGE_SIZE); // tmpfs fills in order here
    expect(report.next.length).toBe(report.lost * PAGE_SIZE);
  });

  test('the same unguarded: SIGBUS, after a line on stderr that names the mapping', () => {
    const child = runFixture('full-disk-child.js', 'sparseUnguarded', [dir], [], { timeout: 60_000 });
    expect(child.signal).toBe('SIGBUS');
    expect(child.stderr).toContain('mman: SIGBUS at 0x');
    expect(child.stderr).toContain(join(dir, 'dies.bin'));
    expect(child.stderr).toContain('guard: true');
  });

  test('only reading the holes of a sparse file on a full tmpfs: guarded, zeros and a reported loss', () => {
    const report = run('readHoles') as { sum: number; lost: number; next: Record<string, unknown> };
    expect(report.sum).toBe(0);
    expect(report.lost).toBeGreaterThan(0);
    expect(report.next).toMatchObject({ code: 'ERR_MAPPING_PAGE_LOST', reason: 'ENOSPC' });
  });
});

maybe('a small /dev/shm (1 MiB, in a mount namespace of its own)', () => {
  test('a named segment larger than it: ENOSPC at create() and grow(), nothing left behind; sparse, its mappings are guarded and report the loss', () => {
    const child = spawnSync(
      'unshare',
      [
        '-m',
        'sh',
        '-c',
        `mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$0" "$1" namedSegment x`,
        process.execPath,
        fixture('full-disk-child.js'),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const report = JSON.parse(child.stdout);
    expect(report).toMatchObject({
      big: enospc,
      left: [],
      grown: enospc,
      size: 512 * 1024,
      guarded: true,
      next: { code: 'ERR_MAPPING_PAGE_LOST', reason: 'ENOSPC' },
    });
    expect(report.lost).toBeGreaterThan(0);
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith('mman-full-'))).toEqual([]); // the real one was never touched
  });
});
