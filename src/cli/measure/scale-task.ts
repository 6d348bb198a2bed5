// One task of `mman bench scale`, in a worker thread or a child process: will-it-scale's
// page-fault loop through this library (map 128 MiB, write one byte per page, unmap, count the
// pages) until its time is up. Started by scale.ts; waits for 'go' so all tasks start together.
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { mapAnonymous, mapFile, PAGE_SIZE } from '../..';
import { writeEveryPage } from './faults';

/** will-it-scale's MEMSIZE. */
export const TASK_BYTES = 128 * 1024 * 1024;

/** What a task is told. */
export interface TaskSpec {
  kind: 'anon' | 'file-private' | 'file-shared';
  /** The 128 MiB file of the file kinds. */
  path?: string;
  seconds: number;
}

/** What a task counted. */
export interface TaskResult {
  pages: number;
  ms: number;
}

/** The loop itself. */
export function runTask(spec: TaskSpec): TaskResult {
  // A minor collection after each unmap(): the 128 MiB just unmapped goes back to the kernel
  // at the next unmap() (docs/ARCHITECTURE.md), as a service's own collections would do it.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  const mode = spec.kind === 'file-private' ? 'copy' : 'r+';
  // Opened once, as will-it-scale does: each loop maps the descriptor.
  const fd = spec.kind === 'anon' ? -1 : openSync(spec.path!, 'r+');
  let pages = 0;
  const start = performance.now();
  const deadline = start + spec.seconds * 1000;
  do {
    const m = spec.kind === 'anon' ? mapAnonymous(TASK_BYTES) : mapFile(fd, { mode, length: TASK_BYTES });
    writeEveryPage(m.bytes, PAGE_SIZE);
    m.unmap();
    gc({ type: 'minor' });
    pages += TASK_BYTES / PAGE_SIZE;
  } while (performance.now() < deadline);
  const ms = performance.now() - start;
  if (fd >= 0) closeSync(fd);
  return { pages, ms };
}

// As a worker thread: workerData is the spec.
if (parentPort !== null && workerData?.scaleTask === true) {
  const port = parentPort;
  port.once('message', () => port.postMessage(runTask(workerData.spec as TaskSpec)));
  port.postMessage('ready');
}

// As a child process: argv[2] is the spec.
if (parentPort === null && process.send !== undefined && process.argv[2]?.startsWith('{')) {
  const spec = JSON.parse(process.argv[2]) as TaskSpec;
  process.once('message', () => process.send!(runTask(spec), () => process.disconnect()));
  process.send('ready');
}
