// The measured side of `mman bench pressure`, in a child process the parent has put into a
// memory cgroup: random 4-byte reads of a file through a mapping (MADV_RANDOM, or the
// default read-ahead) and through fs.readSync, each after the file is dropped from the page
// cache, with the major faults and time per read. Started by pressure.ts with the spec as
// argv[2]; waits for 'go' (sent once it is in the cgroup), answers with its results.
import { closeSync, openSync, readSync } from 'node:fs';

import { Advice, mapFile } from '../..';
import { evictFile } from '../util/page-cache';
import { randomWordIndexes, releaseUnmapped } from './io';

/** What the task is told. */
export interface PressureSpec {
  path: string;
  size: number;
  reads: number;
  /** A method stops after this many ms and reports the reads it made: thrashing is slow. */
  budgetMs: number;
}

/** One method's reads. */
export interface PressureTiming {
  method: 'mmap, MADV_RANDOM' | 'mmap, read-ahead' | 'fs.readSync';
  nsPerRead: number;
  /** Reads made: all of them, or as many as fitted in the budget. */
  reads: number;
  majorFaults: number;
  checksum: number;
}

/** The three methods, one after the other, each from a cold page cache. */
export async function runPressureTask(spec: PressureSpec): Promise<PressureTiming[]> {
  const indexes = randomWordIndexes(spec.reads, spec.size / 4, 0x85ebca6b);
  let made = 0;
  let deadline = 0;
  // Reads indexes until done or past the budget (looked at every 64 reads).
  const over = (i: number): boolean => (i & 63) === 63 && performance.now() > deadline;
  const mapped = (advice: Advice | undefined) => () => {
    const m = mapFile(spec.path, advice === undefined ? {} : { advice });
    try {
      const words = new Uint32Array(m.buffer, 0, m.length >>> 2);
      let sum = 0;
      let i = 0;
      for (; i < indexes.length && !over(i); i++) sum = (sum + words[indexes[i]]) | 0;
      made = i;
      return sum;
    } finally {
      m.unmap({ detachViews: true });
    }
  };
  const pread = () => {
    const fd = openSync(spec.path, 'r');
    const word = Buffer.alloc(4);
    let sum = 0;
    try {
      let i = 0;
      for (; i < indexes.length && !over(i); i++) {
        readSync(fd, word, 0, 4, indexes[i] * 4);
        sum = (sum + word.readUInt32LE(0)) | 0;
      }
      made = i;
    } finally {
      closeSync(fd);
    }
    return sum;
  };
  const methods: Array<[PressureTiming['method'], () => number]> = [
    ['mmap, MADV_RANDOM', mapped(Advice.Random)],
    ['mmap, read-ahead', mapped(undefined)],
    ['fs.readSync', pread],
  ];
  const timings: PressureTiming[] = [];
  for (const [method, read] of methods) {
    await releaseUnmapped(); // mapped pages cannot be evicted: the last method's must be gone
    evictFile(spec.path);
    const before = process.resourceUsage().majorPageFault;
    deadline = performance.now() + spec.budgetMs;
    const start = process.hrtime.bigint();
    const checksum = read();
    const ns = Number(process.hrtime.bigint() - start);
    timings.push({
      method,
      nsPerRead: ns / made,
      reads: made,
      majorFaults: process.resourceUsage().majorPageFault - before,
      checksum: checksum >>> 0,
    });
  }
  return timings;
}

if (process.send !== undefined && process.argv[2]?.startsWith('{')) {
  const spec = JSON.parse(process.argv[2]) as PressureSpec;
  process.once('message', () => {
    void runPressureTask(spec).then((timings) => process.send!(timings, () => process.disconnect()));
  });
  process.send('ready');
}
