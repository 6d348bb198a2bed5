// A peer is a stranger: what SharedMemory.receive() accepts from a process that lies (a Python
// program, test/fixtures/hostile-peer.py), checked with the kernel and never taken from the
// message. Each case runs in a child process (test/fixtures/hostile-child.js), which reports
// what it got and every descriptor it was left holding.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE, SharedMemory } from '../src';
import { filesystemOf, runFixture, uniqueName } from './helpers';

const hasPython = spawnSync('python3', ['-c', 'import socket, os; socket.send_fds; os.memfd_create']).status === 0;
const maybe = hasPython ? describe : describe.skip;

// The filesystems whose regular files are memory files, which receive() takes.
const MEMORY_FILESYSTEMS = ['tmpfs', 'hugetlbfs', 'ramfs'];
// A writable directory on a disk filesystem: the temp dir unless it is tmpfs, else /var/tmp,
// else the repository's build/ (ignored by git). Decided at collection.
const DISK_PARENT = [tmpdir(), '/var/tmp', join(__dirname, '..', 'build')].find((parent) => {
  try {
    accessSync(parent, constants.W_OK);
    return !MEMORY_FILESYSTEMS.includes(filesystemOf(parent));
  } catch {
    return false;
  }
});

interface Report {
  mode: string;
  error?: string;
  message?: string;
  name?: string | null;
  readOnly?: boolean;
  guarded?: boolean;
  writable?: boolean;
  seen?: string;
  victimStill?: boolean;
  unguarded?: string;
  sum?: number;
  truncated?: boolean;
  next?: string;
  leaked: string[];
}

// Runs `body` with a named segment of the test's (holding `content`, if given), gone afterwards
// whether or not the receiver unlinked it.
function withSegment(
  label: string,
  options: { mode?: number; content?: string },
  body: (shm: SharedMemory) => void,
): void {
  const shm = SharedMemory.create(PAGE_SIZE, { name: uniqueName(label), mode: options.mode });
  try {
    if (options.content !== undefined) {
      using m = shm.map();
      m.bytes.set(Buffer.from(options.content));
    }
    body(shm);
  } finally {
    shm.close();
    rmSync(join('/dev/shm', shm.name!), { force: true });
  }
}

function receiveFrom(mode: string, arg = ''): Report {
  const child = runFixture('hostile-child.js', mode, [arg], ['--expose-gc'], { timeout: 60_000 });
  expect(child.signal).toBeNull(); // neither SIGBUS nor SIGSEGV, whatever the peer did
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout) as Report;
}

maybe('SharedMemory.receive() from a peer that lies', () => {
  test("a memfd claiming another application's name and read-only: no name, writable as its descriptor is; unlink() leaves the other segment alone", () => {
    withSegment('victim', {}, (victim) => {
      const report = receiveFrom('claims-victim', victim.name);
      expect(report).toMatchObject({
        name: null,
        readOnly: false,
        writable: true,
        seen: 'from the peer',
        victimStill: true,
        leaked: [],
      });
      expect(existsSync(join('/dev/shm', victim.name!))).toBe(true);
    });
  });

  test('a named segment sent under its own name keeps it: the very file in /dev/shm', () => {
    withSegment('true-name', { content: 'from the peer' }, (named) => {
      const report = receiveFrom('is-named', named.name);
      expect(report).toMatchObject({
        name: named.name,
        readOnly: false,
        guarded: true,
        victimStill: false,
        leaked: [],
      });
    });
  });

  (process.getuid?.() === 0 ? test : test.skip)(
    "a peer running as nobody names root's segment it could only read: the name is not kept, and unlink() removes nothing",
    () => {
      withSegment('roots', { mode: 0o644, content: 'from the peer' }, (named) => {
        const report = receiveFrom('nobody-names-it', named.name);
        expect(report).toMatchObject({
          name: null,
          readOnly: true,
          seen: 'from the peer',
          victimStill: true,
          leaked: [],
        });
      });
    },
  );

  test('a read-only descriptor that claims to be writable: read-only, whatever the message says', () => {
    withSegment('ro', { content: 'from the peer' }, (named) => {
      const report = receiveFrom('read-only-fd', named.name);
      expect(report).toMatchObject({ readOnly: true, writable: false, seen: 'from the peer', leaked: [] });
    });
  });

  // A file on a filesystem that keeps it on disk (not tmpfs, where a file is a memory file that
  // receive() rightly takes).
  (DISK_PARENT === undefined ? test.skip : test)(
    `regular-file (a regular file on disk, read-write): ERR_SHARED_MEMORY_BAD_DESCRIPTOR, and it is closed${
      DISK_PARENT === undefined ? ' [skipped: no writable directory on a disk filesystem]' : ''
    }`,
    () => {
      const dir = mkdtempSync(join(DISK_PARENT!, 'mman-test-'));
      try {
        const file = join(dir, 'disk.bin');
        writeFileSync(file, Buffer.alloc(PAGE_SIZE));
        expect(MEMORY_FILESYSTEMS).not.toContain(filesystemOf(file));
        const report = receiveFrom('regular-file', file);
        expect(report.error).toBe('ERR_SHARED_MEMORY_BAD_DESCRIPTOR');
        expect(report.message).toContain('a file outside tmpfs');
        expect(report.leaked).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test.each([
    ['o-path', 'an O_PATH descriptor', 'O_PATH'],
    ['write-only', 'a write-only descriptor', 'write-only'],
    ['directory', 'a directory', 'not a regular file'],
  ])('%s (%s): ERR_SHARED_MEMORY_BAD_DESCRIPTOR, and it is closed', (mode, _what, why) => {
    withSegment(mode, {}, (named) => {
      const report = receiveFrom(mode, named.name);
      expect(report.error).toBe('ERR_SHARED_MEMORY_BAD_DESCRIPTOR');
      expect(report.message).toContain(why);
      expect(report.leaked).toEqual([]);
    });
  });

  test('three descriptors in one message: one is taken, the others closed', () => {
    expect(receiveFrom('many')).toMatchObject({ seen: 'from the peer', leaked: [] });
  });

  test('a payload of random bytes: the descriptor is what counts', () => {
    expect(receiveFrom('garbage')).toMatchObject({ name: null, readOnly: false, seen: 'from the peer', leaked: [] });
  });

  test('an unsealed memfd is always mapped guarded; the peer truncating it costs zeros and an error, not SIGBUS', () => {
    const report = receiveFrom('truncates');
    expect(report).toMatchObject({ guarded: true, sum: 0, truncated: true, next: 'ERR_MAPPING_TRUNCATED', leaked: [] });
  });

  test('an unguarded mapping of an unsealed segment from a peer is refused; a segment sealed against shrinking may be', () => {
    expect(receiveFrom('claims-victim')).toMatchObject({ guarded: true, unguarded: 'ERR_INVALID_ARG_VALUE' });
    expect(receiveFrom('sealed')).toMatchObject({ guarded: false, unguarded: 'mapped', leaked: [] });
  });
});
