// The truncation guard: a file truncated under a guarded mapping reads as zeros instead of
// killing the process with SIGBUS, and the mapping says so.
import { fileWith, runFixture, tempDir } from './helpers';
import { existsSync } from 'node:fs';

import { PAGE_SIZE } from '../src';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

test('without the guard, reading a page past the end of a truncated file kills the process with SIGBUS', () => {
  const path = fileWith(dir, 'unguarded.bin', new Uint8Array(4 * PAGE_SIZE).fill(7));
  const child = runFixture('guard-child.js', 'unguarded', [path]);
  expect(child.stdout).toBe('before 7\nstill mapped 7\n');
  expect(child.signal).toBe('SIGBUS');
});

test.each(['r', 'r+', 'copy'])(
  'with guard: true (mode %s), the process lives, reads give zeros, the next call throws',
  (mode) => {
    const path = fileWith(dir, 'guarded.bin', new Uint8Array(4 * PAGE_SIZE).fill(7));
    const child = runFixture('guard-child.js', 'guarded', [path, mode]);
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const out = JSON.parse(child.stdout);
    expect(out.before).toEqual({ value: 7, truncated: false });
    expect(out.kept).toBe(7);
    expect(out.lost).toEqual([0, 0, 0]);
    expect(out.error.code).toBe('ERR_MAPPING_TRUNCATED');
    expect(out.error.message).toMatch(/truncated: the guard replaced the 3 page\(s\) past its end/); // every page past the new end, at once
    expect(out.bytesError).toBe('ERR_MAPPING_TRUNCATED');
    expect(out.truncated).toBe(false); // unmapped: nothing to report
  },
);

test('the guard covers only guarded mappings: an unguarded one beside it still dies with SIGBUS', () => {
  const a = fileWith(dir, 'a.bin', new Uint8Array(2 * PAGE_SIZE).fill(1));
  const b = fileWith(dir, 'b.bin', new Uint8Array(2 * PAGE_SIZE).fill(2));
  const child = runFixture('guard-child.js', 'beside', [a, b]);
  expect(child.stdout).toBe('guarded 0 true\nplain\n');
  expect(child.signal).toBe('SIGBUS');
});

test('the guard follows resize(); a mapping made after unmap() is unguarded and dies of SIGBUS', () => {
  const path = fileWith(dir, 'moving.bin', new Uint8Array(8 * PAGE_SIZE).fill(3));
  const child = runFixture('guard-child.js', 'resized', [path]);
  expect(JSON.parse(child.stdout.split('\n')[0])).toEqual({ zero: 0, pages: 7 }); // the 7 pages past the new end
  expect(child.signal).toBe('SIGBUS');
});

test('the guard is process-wide: a worker thread reading a truncated guarded mapping lives on', () => {
  const path = fileWith(dir, 'worker.bin', new Uint8Array(2 * PAGE_SIZE).fill(5));
  const child = runFixture('guard-child.js', 'worker', [path]);
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({ value: 0, truncated: true, guarded: true });
});

test('the guard travels with share(): a worker mapping what a guarded mapping shared lives through the truncation', () => {
  const path = fileWith(dir, 'shared.bin', new Uint8Array(2 * PAGE_SIZE).fill(5));
  const child = runFixture('guard-child.js', 'shared', [path]);
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  expect(JSON.parse(child.stdout)).toEqual({ value: 0, truncated: true, guarded: true });
});

test("the guard's zero page takes the mapping's protection: after protect(Prot.Read) a write to it is SIGSEGV, named", () => {
  const path = fileWith(dir, 'protected.bin', new Uint8Array(4 * PAGE_SIZE).fill(6));
  const child = runFixture('guard-child.js', 'protectedZero', [path]);
  expect(child.stdout).toBe('read 0 3\n');
  expect(child.signal).toBe('SIGSEGV');
  expect(child.stderr).toContain('mman: SIGSEGV');
  expect(child.stderr).toContain('a write to read-only memory');
});

test("a view kept from before a shrink reaches the cut-off tail: a truncation there is still the mapping's to report", () => {
  const path = fileWith(dir, 'shrunk.bin', new Uint8Array(4 * PAGE_SIZE).fill(8));
  const child = runFixture('guard-child.js', 'shrunk', [path]);
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  expect(JSON.parse(child.stdout)).toEqual({ read: 0, truncated: true, next: 'ERR_MAPPING_TRUNCATED' });
});

test('a reader walking a large truncated file: zero pages replace the whole tail at once, so the process never runs out of memory areas', () => {
  const path = fileWith(dir, 'walk.bin', new Uint8Array(1));
  const child = runFixture('guard-child.js', 'walk', [path]);
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.sum).toBe(0);
  expect(out.next).toBe('ERR_MAPPING_TRUNCATED');
  // Two areas for the tail, a few the runtime made meanwhile: not two per page (40,000).
  expect(out.areasAdded).toBeLessThan(64);
});

test('a Mutex over a guarded mapping whose file is truncated: no second holder on a zero page; every call says why', () => {
  const path = fileWith(dir, 'lock.bin', new Uint8Array(2 * PAGE_SIZE));
  const child = runFixture('guard-child.js', 'locks', [path]);
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  expect(JSON.parse(child.stdout)).toEqual({
    first: 'acquired',
    seen: true,
    afterTryLock: 'ERR_MAPPING_TRUNCATED',
    afterUnlock: 'ERR_MAPPING_TRUNCATED',
    afterWait: 'ERR_MAPPING_TRUNCATED',
    afterNotify: 'ERR_MAPPING_TRUNCATED',
  });
});

test('a RingBuffer in a named segment truncated by someone: both ends throw, no message vanishes in silence', () => {
  const name = `mman-guard-ring-${process.pid}`;
  const child = runFixture('guard-child.js', 'ring', [name]);
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  expect(JSON.parse(child.stdout)).toEqual({
    guarded: [true, true],
    before: 'before',
    afterWrite: 'ERR_MAPPING_TRUNCATED',
    afterRead: 'ERR_MAPPING_TRUNCATED',
  });
  expect(existsSync(`/dev/shm/${name}`)).toBe(false);
});

test('memory made read-only after a Mutex, RingBuffer or waiter count was set up over it: ERR_MAPPING_READ_ONLY, not SIGSEGV', () => {
  const child = runFixture('guard-child.js', 'readOnlyAfter');
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  expect(JSON.parse(child.stdout)).toEqual({
    tryLock: 'ERR_MAPPING_READ_ONLY',
    lock: 'ERR_MAPPING_READ_ONLY',
    write: 'ERR_MAPPING_READ_ONLY',
    read: 'ERR_MAPPING_READ_ONLY',
    wait: 'ERR_MAPPING_READ_ONLY',
  });
});

describe.each(['before', 'after', 'removed'])('a process.on() signal listener added %s the guard', (when) => {
  test('SIGBUS: the guarded mapping still lives through a truncation', () => {
    const path = fileWith(dir, 'listened.bin', new Uint8Array(4 * PAGE_SIZE).fill(4));
    const child = runFixture('guard-child.js', 'listener', [path, 'SIGBUS', when], [], { timeout: 30_000 });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(child.stdout).toBe('read 0 3\n');
  });

  test('SIGSEGV: a write to read-only memory is named once and ends the process, instead of faulting for ever', () => {
    const path = fileWith(dir, 'listened.bin', new Uint8Array(4 * PAGE_SIZE).fill(4));
    const child = runFixture('guard-child.js', 'listener', [path, 'SIGSEGV', when], [], { timeout: 30_000 });
    expect(child.signal).toBe('SIGSEGV');
    expect(child.stdout).toBe('');
    expect(child.stderr.match(/mman: SIGSEGV/g)).toHaveLength(1);
    expect(child.stderr).toContain('a write to read-only memory');
  });
});

describe('calls that use shared memory check it after reading their options, and after touching it', () => {
  test('protect() while a waitAsync() with a waiter count, or a RingBuffer readAsync(), is pending: it settles, the next call refuses', () => {
    const child = runFixture('guard-child.js', 'pendingThenProtected');
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({
      waited: 'timed-out',
      next: 'ERR_MAPPING_READ_ONLY',
      read: 'ERR_MAPPING_READ_ONLY',
      release: 'ERR_MAPPING_READ_ONLY',
    });
  });

  test('an option getter that takes the permissions away (or closes the ring): a coded error, never SIGSEGV', () => {
    const child = runFixture('guard-child.js', 'gettersThatProtect');
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({
      wait: 'ERR_MAPPING_READ_ONLY',
      waitAsync: 'ERR_MAPPING_READ_ONLY',
      reserve: 'ERR_MAPPING_READ_ONLY',
      write: 'ERR_MAPPING_READ_ONLY',
      reserveClosed: 'ERR_RING_BUFFER_CLOSED',
      holder: 'ERR_MAPPING_INACCESSIBLE',
    });
  });

  test('wait(), notify() and waitAsync() on a guarded word truncated before they touched it: ERR_MAPPING_TRUNCATED, no sleep on a zero page', () => {
    const path = fileWith(dir, 'words.bin', new Uint8Array(2 * PAGE_SIZE));
    const child = runFixture('guard-child.js', 'untouchedTruncated', [path], [], { timeout: 30_000 });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({
      wait: 'ERR_MAPPING_TRUNCATED',
      notify: 'ERR_MAPPING_TRUNCATED',
      waitAsync: 'ERR_MAPPING_TRUNCATED',
    });
  });

  test('getters that close the SharedMemory a call was about to map or send: ERR_SHARED_MEMORY_CLOSED, no other file mapped or sent', () => {
    const child = runFixture('guard-child.js', 'gettersThatClose', [dir]);
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({
      map: 'ERR_SHARED_MEMORY_CLOSED',
      sendTo: 'ERR_SHARED_MEMORY_CLOSED',
      receive: 'ERR_INVALID_ARG_VALUE', // the socket it was given is destroyed: not a connected socket
      fromFd: 'ERR_INVALID_ARG_VALUE', // a write-only descriptor cannot be mapped
    });
  });
});
