// Random reads of a file larger than the memory it may use (Crotty, Leis and Pavlo, CIDR
// 2022): through a mapping, with MADV_RANDOM and with read-ahead, and through fs.readSync,
// in a child process held in a memory cgroup at a few ratios of file size to limit, so that
// the point where the mapping falls off shows.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

import { PAGE_SIZE } from '../..';
import { createMemoryCgroup } from './cgroup';
import { machineInfo, type MachineInfo } from './machine';
import type { PressureSpec, PressureTiming } from './pressure-task';
import { createScratchFile } from './scratch-file';

/** One memory limit. */
export interface PressurePoint {
  /** Bytes the cgroup allows. */
  limit: number;
  /** File size / limit: above 1 the file cannot stay in memory. */
  ratio: number;
  results: PressureTiming[];
  /** Set when the child did not report (killed by the OOM killer, say). */
  failed?: string;
}

/** The whole run. */
export interface PressureReport {
  size: number;
  reads: number;
  cgroup: 'v1' | 'v2' | null;
  machine: MachineInfo;
  points: PressurePoint[];
  /** Why nothing was measured, when no cgroup could be made. */
  skipped?: string;
}

/** Options for {@link runPressureBench}. */
export interface PressureBenchOptions {
  /** File size. Default 256 MiB. */
  size?: number;
  /** The tightest memory limit. Default 64 MiB. */
  limit?: number;
  /** Random 4-byte reads per method and limit. Default 50,000. */
  reads?: number;
  /** Most ms one method may take at one limit (it reports the reads it made). Default 10,000. */
  budgetMs?: number;
  /** Directory for the file (not tmpfs: its pages cannot be evicted). Default `os.tmpdir()`. */
  dir?: string;
  onProgress?: (done: number, total: number, label: string) => void;
}

const TASK = join(__dirname, 'pressure-task.js');

/**
 * Writes a file of `size` bytes, then for limits of 2×, 1×, ½× the file size and `limit`
 * runs the reads in a child placed in a memory cgroup of that limit (created and removed
 * here). Without a usable cgroup it measures nothing and says why.
 */
export async function runPressureBench(options: PressureBenchOptions = {}): Promise<PressureReport> {
  const size = Math.ceil((options.size ?? 256 * 2 ** 20) / PAGE_SIZE) * PAGE_SIZE;
  const tightest = options.limit ?? 64 * 2 ** 20;
  const reads = options.reads ?? 50_000;
  const budgetMs = options.budgetMs ?? 10_000;
  const limits = [...new Set([2 * size, size, Math.floor(size / 2), tightest])]
    .filter((l) => l >= tightest)
    .sort((a, b) => b - a);
  const report: PressureReport = { size, reads, cgroup: null, machine: machineInfo(), points: [] };
  const probe = createMemoryCgroup(2 * size, 'probe');
  if (typeof probe === 'string') {
    report.skipped = probe;
    return report;
  }
  report.cgroup = probe.version;
  probe.remove();
  const file = createScratchFile(size, options.dir);
  let done = 0;
  try {
    for (const limit of limits) {
      options.onProgress?.(done++, limits.length, `limit ${Math.round(limit / 2 ** 20)} MiB`);
      const cgroup = createMemoryCgroup(limit, 'pressure');
      if (typeof cgroup === 'string') throw new Error(cgroup);
      const point: PressurePoint = { limit, ratio: size / limit, results: [] };
      try {
        const spec: PressureSpec = { path: file.path, size, reads, budgetMs };
        const child = fork(TASK, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
        await once(child, 'message');
        cgroup.add(child.pid!);
        const answer = new Promise<PressureTiming[] | undefined>((resolve) => {
          child.once('message', (m) => resolve(m as PressureTiming[]));
          void exited.then(() => resolve(undefined));
        });
        child.send('go');
        const results = await answer;
        const [code, signal] = await exited;
        if (results === undefined)
          point.failed = `the reader died (${signal ?? `exit ${code}`}): the limit is too tight for it`;
        else point.results = results;
      } finally {
        cgroup.remove();
      }
      report.points.push(point);
    }
    options.onProgress?.(done, limits.length, 'done');
  } finally {
    file.remove();
  }
  return report;
}
