// Starts test/fixtures/shared-child.js through mman's fork() and reads what it reports.
import { once } from 'node:events';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';

import { fork, type SharedMemory } from '../src';

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
