// Shared by the tests: temporary files and real child processes that use the built lib/.
import {
  execFile,
  spawnSync,
  type SpawnSyncOptionsWithStringEncoding,
  type SpawnSyncReturns,
} from 'node:child_process';
import {
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
  readdirSync,
  readlinkSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { promisify } from 'node:util';

import { fork, mappingStats, type MappingStats, type SharedMemory } from '../src';

// gc() for this realm too (jest runs tests in a vm realm without it).
setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

/**
 * A full garbage collection, then mappingStats(): ranges whose buffers the collector found
 * unreachable are released by then (the weak references are cleared synchronously).
 */
export function collectedStats(): MappingStats {
  fullGc();
  return mappingStats();
}

/** A fresh directory under the system temp dir, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'mman-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes `bytes` to a new file in `dir` and returns its path. */
export function fileWith(dir: string, name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** The path of a child program in test/fixtures/. */
export function fixture(file: string): string {
  return join(__dirname, 'fixtures', file);
}

/**
 * Runs test/fixtures/`file` in a new Node process as `node ...nodeArgs file mode ...args` (the
 * fixture loads the built lib/). `options` are spawnSync's (uid, gid, timeout, ...). Returns
 * the finished process: status, signal, stdout, stderr.
 */
export function runFixture(
  file: string,
  mode: string,
  args: string[] = [],
  nodeArgs: string[] = [],
  options: Omit<SpawnSyncOptionsWithStringEncoding, 'encoding'> = {},
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...nodeArgs, fixture(file), mode, ...args], {
    timeout: 120_000,
    ...options,
    encoding: 'utf8',
  });
}

/** Number of lines (regions) in this process's /proc/self/maps. */
export function mapsCount(): number {
  return readFileSync('/proc/self/maps', 'latin1').split('\n').length - 1;
}

/**
 * Collects and lets FinalizationRegistry callbacks run, so that a count of descriptors taken
 * next is not lowered meanwhile by a SharedMemory an earlier test dropped without close()
 * (collected, it closes its descriptor).
 */
export async function settleFinalizers(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    fullGc();
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Lets queued finalizers run: they run on a later turn of the event loop. */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

// One round of letting finalizers run: an event-loop turn and a short timer, since some
// runtimes (and Node under emulation) post the collector's second-pass callbacks as tasks.
async function settleRound(): Promise<void> {
  await turns(1);
  await new Promise((r) => setTimeout(r, 5));
}

/**
 * A baseline for "back to where it was": collects and lets finalizers run until three readings
 * of mappingStats() in a row agree, so mappings earlier tests dropped are not counted.
 */
export async function quietStats(): Promise<MappingStats> {
  let last = collectedStats();
  for (let i = 0, same = 0; i < 40 && same < 2; i++) {
    await settleRound();
    const now = collectedStats();
    same = JSON.stringify(now) === JSON.stringify(last) ? same + 1 : 0;
    last = now;
  }
  return last;
}

/**
 * Collects and lets finalizers run until no figure of mappingStats() is above `base` (up to
 * 40 rounds), then returns what it last saw. "Back to the baseline" means nothing this test
 * made is left; a range an earlier test dropped may be released meanwhile too, so a figure
 * may end below the baseline, never above it.
 */
export async function settledStats(base: MappingStats): Promise<MappingStats> {
  const within = (s: MappingStats) => (Object.keys(base) as Array<keyof MappingStats>).every((k) => s[k] <= base[k]);
  let stats = collectedStats();
  for (let i = 0; i < 40 && !within(stats); i++) {
    await settleRound();
    stats = collectedStats();
  }
  return stats;
}

/** Asserts that nothing a test made is still held: every figure at or below `base` once settled. */
export async function expectBackTo(base: MappingStats): Promise<void> {
  const stats = await settledStats(base);
  for (const key of Object.keys(base) as Array<keyof MappingStats>)
    expect({ [key]: stats[key] <= base[key] ? 'at or below the baseline' : stats[key] }).toEqual({
      [key]: 'at or below the baseline',
    });
}

/** The error `fn` throws (fails the test if it returns). */
export function thrown(fn: () => unknown): Error & { code?: string; errno?: number; syscall?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected the call to throw');
}

/** The /proc/self/smaps fields (in kB) of the region that holds `address`, or undefined. */
export function smapsOf(address: bigint): Record<string, number> | undefined {
  const text = readFileSync('/proc/self/smaps', 'latin1');
  for (const block of text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(block);
    if (!m || address < BigInt(`0x${m[1]}`) || address >= BigInt(`0x${m[2]}`)) continue;
    const fields: Record<string, number> = {};
    for (const line of block.split('\n').slice(1)) {
      const f = /^(\w+):\s+(\d+) kB/.exec(line);
      if (f) fields[f[1]] = Number(f[2]);
    }
    return fields;
  }
  return undefined;
}

/** The permissions column (e.g. `rw-p`, `---p`) of the /proc/self/maps line holding `address`. */
export function permsAt(address: bigint): string | undefined {
  for (const line of readFileSync('/proc/self/maps', 'latin1').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+)/.exec(line);
    if (m && address >= BigInt(`0x${m[1]}`) && address < BigInt(`0x${m[2]}`)) return m[3];
  }
  return undefined;
}

/** A child started through mman's fork() running test/fixtures/shared-child.js. */
export interface Child {
  process: ChildProcess;
  /** The next IPC message from the child. */
  next(): Promise<unknown>;
  /** Resolves with [exit code, signal]. */
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

export function startChild(mode: string, args: string[], share: SharedMemory[]): Child {
  const child = fork(join(__dirname, 'fixtures', 'shared-child.js'), [mode, ...args], { share });
  const queue: unknown[] = [];
  const waiting: Array<(m: unknown) => void> = [];
  child.on('message', (m) => {
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    process: child,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiting.push(resolve))),
    exited,
  };
}

/** A /dev/shm name no other test run uses. */
export function uniqueName(tag: string): string {
  return `mman-test-${process.pid}-${tag}-${Math.random().toString(36).slice(2, 8)}`;
}

/** The filesystem type (`ext4`, `tmpfs`, ...) that `path` is on, from /proc/self/mounts. */
export function filesystemOf(path: string): string {
  const real = realpathSync(path);
  let best = { mountPoint: '', type: 'unknown' };
  for (const line of readFileSync('/proc/self/mounts', 'latin1').split('\n')) {
    const [, mountPoint, type] = line.split(' ');
    if (mountPoint === undefined || type === undefined) continue;
    const inside = real === mountPoint || real.startsWith(mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`);
    if (inside && mountPoint.length >= best.mountPoint.length) best = { mountPoint, type };
  }
  return best.type;
}

/**
 * True when the temporary directory keeps file pages in memory only (tmpfs): msync leaves them
 * dirty and fadvise cannot evict them, so tests of write-back and eviction say so and skip.
 */
export const TMP_IN_MEMORY = filesystemOf(tmpdir()) === 'tmpfs';

/**
 * How many descriptors of this process point at what `target` matches (their /proc/self/fd
 * link: `/memfd:mman (deleted)`, `pipe:[123]`, a path). Counting all descriptors would also
 * count those worker threads and child-process pipes open and close meanwhile.
 */
export function descriptorsTo(target: RegExp): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (target.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // closed between the listing and the look
    }
  }
  return n;
}

/** How many descriptors of this process are open on the same file as `fd` (same device and inode). */
export function descriptorsOf(fd: number): number {
  const { dev, ino } = statSync(`/proc/self/fd/${fd}`);
  let n = 0;
  for (const other of readdirSync('/proc/self/fd')) {
    try {
      const st = statSync(`/proc/self/fd/${other}`);
      if (st.dev === dev && st.ino === ino) n++;
    } catch {
      // closed between the listing and the look
    }
  }
  return n;
}

/** The compiled `mman` command (lib/cli/index.js). */
export const CLI = join(__dirname, '..', 'lib', 'cli', 'index.js');

/** Runs the `mman` command in a child process: its output and exit status. */
export async function mmanCommand(...args: string[]): Promise<{ stdout: string; stderr: string; status: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { maxBuffer: 16 * 2 ** 20 });
    return { stdout, stderr, status: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, status: e.code };
  }
}
