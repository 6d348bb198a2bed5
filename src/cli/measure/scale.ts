// will-it-scale's page_fault1/2/3 from Node: N tasks, each mapping 128 MiB, writing one byte
// per page and unmapping, over and over, as worker threads (one address space: one mm, its
// mmap lock and, since Linux 6.4, per-VMA locks) or as processes; the same loops in C
// (native/loops/page_fault.c, compiled here with cc) in the same run.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { PAGE_SIZE } from '../..';
import { machineInfo, type MachineInfo } from './machine';
import { createScratchFile, type ScratchFile } from './scratch-file';
import { TASK_BYTES, type TaskResult, type TaskSpec } from './scale-task';

/** The three loops: will-it-scale's page_fault1 (anon), page_fault2 (file private), page_fault3 (file shared). */
export const SCALE_KINDS = ['anon', 'file-private', 'file-shared'] as const;
export type ScaleKind = (typeof SCALE_KINDS)[number];
export type ScaleMode = 'threads' | 'processes';

/** One kind, mode and task count. Rates are pages per second. */
export interface ScaleResult {
  kind: ScaleKind;
  mode: ScaleMode;
  tasks: number;
  /** Pages touched in all (JavaScript, then C): whole 128 MiB loops only. */
  pages: number;
  nativePages: number;
  /** JavaScript: all tasks together, and per task. */
  pagesPerSecond: number;
  perTask: number;
  /** pagesPerSecond against one task of the same kind and mode (1.0 = no gain). */
  scaling: number;
  /** The C loops, the same way. */
  nativePagesPerSecond: number;
  nativeScaling: number;
  /** pagesPerSecond / nativePagesPerSecond. */
  ratio: number;
}

/** The whole run. */
export interface ScaleReport {
  seconds: number;
  taskBytes: number;
  pageSize: number;
  machine: MachineInfo;
  /** True when some runs had more tasks than CPUs: their scaling says little. */
  oversubscribed: boolean;
  results: ScaleResult[];
  skipped: Array<{ kind: ScaleKind; mode: ScaleMode; reason: string }>;
}

/** Options for {@link runScaleBench}. */
export interface ScaleBenchOptions {
  kinds?: readonly ScaleKind[];
  /** Task counts. Default 1, 2. */
  tasks?: readonly number[];
  modes?: readonly ScaleMode[];
  /** Seconds per run. Default 5. */
  seconds?: number;
  /** Directory for the file of the file kinds. Default `os.tmpdir()`. */
  dir?: string;
  onProgress?: (done: number, total: number, label: string) => void;
}

const TASK = join(__dirname, 'scale-task.js');

// N JavaScript tasks, started together: pages, and the slowest task's seconds.
async function runJs(spec: TaskSpec, mode: ScaleMode, tasks: number): Promise<{ pages: number; seconds: number }> {
  const results: Array<Promise<TaskResult>> = [];
  const go: Array<() => void> = [];
  for (let t = 0; t < tasks; t++) {
    if (mode === 'threads') {
      const worker = new Worker(TASK, { workerData: { scaleTask: true, spec } });
      const [ready] = (await once(worker, 'message')) as [string];
      if (ready !== 'ready') throw new Error(`scale task: ${ready}`);
      results.push(once(worker, 'message').then(([r]) => r as TaskResult));
      go.push(() => worker.postMessage('go'));
    } else {
      const child = fork(TASK, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await once(child, 'message');
      results.push(once(child, 'message').then(([r]) => r as TaskResult));
      go.push(() => child.send('go'));
    }
  }
  for (const start of go) start();
  const done = await Promise.all(results);
  return { pages: done.reduce((n, r) => n + r.pages, 0), seconds: Math.max(...done.map((r) => r.ms)) / 1000 };
}

function runC(binary: string, spec: TaskSpec, mode: ScaleMode, tasks: number): { pages: number; seconds: number } {
  const args = [spec.kind, mode, String(tasks), String(spec.seconds), ...(spec.path ? [spec.path] : [])];
  const out = JSON.parse(execFileSync(binary, args, { encoding: 'utf8' })) as { pages: number[]; seconds: number };
  return { pages: out.pages.reduce((n, p) => n + p, 0), seconds: out.seconds };
}

/**
 * Runs every kind × mode × task count in JavaScript and in C, one after the other (never two
 * at once). Needs about `tasks × 2 × 128 MiB` of free memory, `cc`, and for the file kinds
 * a 128 MiB scratch file, removed before returning.
 */
export async function runScaleBench(options: ScaleBenchOptions = {}): Promise<ScaleReport> {
  const kinds = options.kinds ?? SCALE_KINDS;
  const taskCounts = options.tasks ?? [1, 2];
  const modes = options.modes ?? ['threads', 'processes'];
  const seconds = options.seconds ?? 5;
  const machine = machineInfo();
  const report: ScaleReport = {
    seconds,
    taskBytes: TASK_BYTES,
    pageSize: PAGE_SIZE,
    machine,
    oversubscribed: Math.max(...taskCounts) > machine.cpus,
    results: [],
    skipped: [],
  };
  const build = mkdtempSync(join(tmpdir(), 'mman-scale-'));
  let file: ScratchFile | null = null;
  const total = kinds.length * modes.length * taskCounts.length;
  let done = 0;
  try {
    const binary = join(build, 'page_fault');
    execFileSync('cc', [
      '-O2',
      '-pthread',
      '-o',
      binary,
      join(__dirname, '..', '..', '..', 'native', 'loops', 'page_fault.c'),
    ]);
    for (const kind of kinds) {
      if (kind !== 'anon') file ??= createScratchFile(TASK_BYTES, options.dir);
      const spec: TaskSpec = { kind, path: kind === 'anon' ? undefined : file!.path, seconds };
      for (const mode of modes) {
        let one: { js: number; c: number } | undefined;
        for (const tasks of taskCounts) {
          options.onProgress?.(done++, total, `${kind}, ${tasks} ${mode}`);
          const jsRun = await runJs(spec, mode, tasks);
          const cRun = runC(binary, spec, mode, tasks);
          const js = jsRun.pages / jsRun.seconds;
          const c = cRun.pages / cRun.seconds;
          one ??= tasks === 1 ? { js, c } : undefined;
          report.results.push({
            kind,
            mode,
            tasks,
            pages: jsRun.pages,
            nativePages: cRun.pages,
            pagesPerSecond: js,
            perTask: js / tasks,
            scaling: one ? js / one.js : NaN,
            nativePagesPerSecond: c,
            nativeScaling: one ? c / one.c : NaN,
            ratio: js / c,
          });
        }
      }
    }
    options.onProgress?.(done, total, 'done');
  } finally {
    (file as ScratchFile | null)?.remove();
    rmSync(build, { recursive: true, force: true });
  }
  return report;
}
