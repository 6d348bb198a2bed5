// A memory cgroup the benchmarks create, put one process in, and remove: cgroup v2 where
// this process's cgroup is writable and delegates `memory`, else the v1 memory controller.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A memory cgroup with a limit. */
export interface MemoryCgroup {
  /** `'v2'` or `'v1'`. */
  readonly version: 'v1' | 'v2';
  readonly path: string;
  /** Moves `pid` into it: what it allocates (and the page cache it reads in) from now on counts. */
  add(pid: number): void;
  /** Bytes charged to it now. */
  usage(): number;
  /** Removes it (its processes must have left or exited). */
  remove(): void;
}

// This process's cgroup in `hierarchy` (v1: the line naming the controller; v2: '0::').
function ownCgroup(match: (controllers: string) => boolean): string | undefined {
  for (const line of readFileSync('/proc/self/cgroup', 'latin1').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (path !== undefined && match(controllers)) return path;
  }
  return undefined;
}

/**
 * Creates a memory cgroup limited to `limit` bytes, below this process's own, named
 * `mman-<tag>-<pid>`. Returns the reason instead when neither cgroup version can be used here
 * (not root, no memory controller, a read-only cgroup filesystem).
 */
export function createMemoryCgroup(limit: number, tag: string): MemoryCgroup | string {
  const name = `mman-${tag}-${process.pid}`;
  const reasons: string[] = [];
  // cgroup v2: the unified hierarchy with `memory` in cgroup.controllers.
  const unified = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].find((root) => {
    try {
      return readFileSync(join(root, 'cgroup.controllers'), 'latin1').split(/\s+/).includes('memory');
    } catch {
      return false;
    }
  });
  if (unified !== undefined) {
    const own = ownCgroup((c) => c === '') ?? '/';
    const path = join(unified, own, name);
    try {
      writeFileSync(join(unified, own, 'cgroup.subtree_control'), '+memory');
      mkdirSync(path);
      writeFileSync(join(path, 'memory.max'), String(limit));
      writeFileSync(join(path, 'memory.swap.max'), '0');
      return cgroup('v2', path, 'memory.current');
    } catch (err) {
      reasons.push(`cgroup v2 at ${unified}: ${(err as Error).message}`);
      if (existsSync(path)) rmdirSync(path);
    }
  } else {
    reasons.push('no cgroup v2 hierarchy with the memory controller');
  }
  const v1 = '/sys/fs/cgroup/memory';
  if (existsSync(join(v1, 'memory.limit_in_bytes'))) {
    const own = ownCgroup((c) => c.split(',').includes('memory')) ?? '/';
    const path = join(v1, own, name);
    try {
      mkdirSync(path);
      writeFileSync(join(path, 'memory.limit_in_bytes'), String(limit));
      return cgroup('v1', path, 'memory.usage_in_bytes');
    } catch (err) {
      reasons.push(`cgroup v1 at ${v1}: ${(err as Error).message}`);
      if (existsSync(path)) rmdirSync(path);
    }
  } else {
    reasons.push('no cgroup v1 memory controller at /sys/fs/cgroup/memory');
  }
  return `needs a memory cgroup it can create (root, and cgroup v2 with memory delegated or the v1 memory controller): ${reasons.join('; ')}`;
}

function cgroup(version: 'v1' | 'v2', path: string, usageFile: string): MemoryCgroup {
  return {
    version,
    path,
    add: (pid) => writeFileSync(join(path, 'cgroup.procs'), String(pid)),
    usage: () => Number(readFileSync(join(path, usageFile), 'latin1')),
    remove: () => {
      // A process that just exited may still be listed for a moment.
      for (let i = 0; i < 100; i++) {
        try {
          rmdirSync(path);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EBUSY' || i === 99) throw err;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        }
      }
    },
  };
}
