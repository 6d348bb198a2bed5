#!/usr/bin/env node
// The `mman` command: page-fault and I/O benchmarks, and a vmtouch-like residency tool.
import { writeFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { PAGE_SIZE, type Mapping } from '..';
import { FAULT_KINDS, isFaultKind, runFaultBench, type FaultKind, type FaultReport } from './measure/faults';
import { runIoBench, type IoReport } from './measure/io';
import { runTlbBench, type TlbReport } from './measure/tlb';
import { runPressureBench, type PressureReport } from './measure/pressure';
import { runScaleBench, SCALE_KINDS, type ScaleKind, type ScaleMode, type ScaleReport } from './measure/scale';
import { evictFile, fileResidency, lockFile, touchFile, type FileResidency } from './util/page-cache';
import { progressBar } from './util/progress';
import { formatSize, parseSize } from './util/size';
import { faultChart, scaleChart } from './util/svg';
import { formatNumber, formatTable } from './util/table';

/** What `mman --help` prints. */
export const USAGE = `Usage:
  mman bench faults [--size 256M] [--kinds a,b,...] [--repeat 7] [--json] [--svg FILE] [--dir DIR]
      First-touch cost per page of each kind of mapping, JavaScript beside the same loop in C.
      Kinds: ${FAULT_KINDS.join(', ')}
  mman bench io [--size 1G] [--reads 1000000] [--loop-reads 100000] [--repeat 3] [--json] [--dir DIR]
      Sequential scan and random 4-byte reads: a mapping vs fs.readFileSync, fs.readSync, a read stream.
  mman bench scale [--kinds anon,file-private,file-shared] [--tasks 1,2] [--mode threads|processes|both] [--seconds 5] [--json] [--svg FILE] [--dir DIR]
      will-it-scale's page_fault1/2/3 in worker threads and in processes, JavaScript beside C.
  mman bench pressure [--size 256M] [--limit 64M] [--reads 50000] [--budget 10] [--json] [--dir DIR]
      Random reads of a file larger than a memory cgroup's limit: mmap vs fs.readSync, major faults.
  mman bench tlb [--size 1G] [--reads 4000000] [--repeat 5] [--json]
      Random 4-byte reads over a resident region: 4 KiB pages against transparent and hugetlb huge pages.
  mman residency FILE... [--touch | --evict | --lock] [--json]
      Pages of each file in the page cache (like fincore/vmtouch). --touch reads them in,
      --evict drops them (POSIX_FADV_DONTNEED), --lock mlocks them until interrupted.
  mman --help`;

/** A mistake on the command line: printed with the usage, exit status 2. */
class UsageError extends Error {}

// parseArgs, with its errors turned into usage errors.
function parse<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function sizeOption(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  try {
    return parseSize(text, name);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function countOption(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new UsageError(`--${name} must be a positive integer, not '${text}'`);
  return value;
}

type Progress = (done: number, total: number, label: string) => void;

// Runs a benchmark with a progress bar on stderr (drawn when it is a terminal), then prints its
// report to `out`: the JSON with --json, else the table.
async function runAndPrint<R>(
  out: NodeJS.WritableStream,
  json: boolean | undefined,
  run: (onProgress: Progress) => R | Promise<R>,
  table: (report: R) => string,
): Promise<R> {
  const bar = progressBar();
  let report: R;
  try {
    report = await run((done, total, label) => bar.update(done, total, label));
  } finally {
    bar.done();
  }
  out.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${table(report)}\n`);
  return report;
}

/** The fault report as an aligned table, measured kinds first, then why the others were skipped. */
export function faultTable(report: FaultReport): string {
  const table = formatTable(
    [
      { heading: 'kind' },
      { heading: 'ns/page', numeric: true },
      { heading: 'min', numeric: true },
      { heading: 'max', numeric: true },
      { heading: 'C ns/page', numeric: true },
      { heading: 'JS/C', numeric: true },
      { heading: 'minor/page', numeric: true },
      { heading: 'major/page', numeric: true },
      { heading: 'resident', numeric: true },
      { heading: 'huge', numeric: true },
    ],
    report.kinds.map((k) => [
      k.kind,
      formatNumber(k.nsPerPage),
      formatNumber(k.nsMin),
      formatNumber(k.nsMax),
      formatNumber(k.nativeNsPerPage),
      k.ratio.toFixed(2),
      k.minorFaultsPerPage.toFixed(4),
      k.majorFaultsPerPage.toFixed(4),
      `${k.residentPages}/${k.pages}`,
      `${Math.round(k.hugeShare * 100)}%`,
    ]),
  );
  const head =
    `First touch of a ${formatSize(report.size)} mapping (${report.size / report.pageSize} pages of ${report.pageSize} B), median of ${report.repeat}; ` +
    `${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Linux ${report.machine.kernel}, Node ${report.machine.node}, THP ${report.machine.thp}, load ${report.machine.loadAverage.toFixed(2)}`;
  const skipped = report.skipped.map((s) => `${s.kind}: skipped, ${s.reason}`);
  return [head, '', table, ...(skipped.length > 0 ? ['', ...skipped] : [])].join('\n');
}

/** The I/O report as an aligned table: ms per variant and how many times slower than the mapping. */
export function ioTable(report: IoReport): string {
  const table = formatTable(
    [
      { heading: 'operation' },
      { heading: 'method' },
      { heading: 'ms', numeric: true },
      { heading: '× mmap', numeric: true },
    ],
    report.results.map((r) => [r.operation, r.method, formatNumber(r.ms), r.ratio.toFixed(2)]),
  );
  const loop = formatTable(
    [
      { heading: 'method' },
      { heading: 'total ms', numeric: true },
      { heading: 'reads ms', numeric: true },
      { heading: 'loop p50 ms', numeric: true },
      { heading: 'p99 ms', numeric: true },
      { heading: 'max ms', numeric: true },
    ],
    report.eventLoop.map((r) => [
      r.method,
      formatNumber(r.totalMs),
      formatNumber(r.readsMs),
      r.delayP50.toFixed(2),
      r.delayP99.toFixed(2),
      r.delayMax.toFixed(2),
    ]),
  );
  return [
    `${formatSize(report.size)} file in the page cache, ${report.randomReads} random 4-byte reads, median of ${report.repeat}`,
    '',
    table,
    '',
    `Event loop: ${report.eventLoopReads} random 4-byte reads of the file dropped from the page cache, a 1 ms timer running`,
    '',
    loop,
  ].join('\n');
}

/** The scale report as an aligned table: pages per second, total and per task, and the scaling. */
export function scaleTable(report: ScaleReport): string {
  const table = formatTable(
    [
      { heading: 'kind' },
      { heading: 'mode' },
      { heading: 'tasks', numeric: true },
      { heading: 'pages/s', numeric: true },
      { heading: 'per task', numeric: true },
      { heading: 'scaling', numeric: true },
      { heading: 'C pages/s', numeric: true },
      { heading: 'C scaling', numeric: true },
      { heading: 'JS/C', numeric: true },
    ],
    report.results.map((r) => [
      r.kind,
      r.mode,
      String(r.tasks),
      formatNumber(r.pagesPerSecond),
      formatNumber(r.perTask),
      Number.isNaN(r.scaling) ? '' : r.scaling.toFixed(2),
      formatNumber(r.nativePagesPerSecond),
      Number.isNaN(r.nativeScaling) ? '' : r.nativeScaling.toFixed(2),
      r.ratio.toFixed(2),
    ]),
  );
  return [
    `Each task maps ${formatSize(report.taskBytes)}, writes one byte per page, unmaps, for ${report.seconds} s; ` +
      `${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Linux ${report.machine.kernel}, Node ${report.machine.node}`,
    ...(report.oversubscribed
      ? [`More tasks than CPUs (${report.machine.cpus}) in some runs: they share CPUs, and their scaling says so.`]
      : []),
    '',
    table,
  ].join('\n');
}

async function benchScale(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parse({
    args,
    strict: true,
    options: {
      kinds: { type: 'string' },
      tasks: { type: 'string' },
      mode: { type: 'string' },
      seconds: { type: 'string' },
      json: { type: 'boolean' },
      svg: { type: 'string' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(out);
  const kinds = (values.kinds ?? SCALE_KINDS.join(',')).split(',').map((k) => k.trim()) as ScaleKind[];
  const unknown = kinds.filter((k) => !(SCALE_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new UsageError(`unknown kind ${unknown.join(', ')}; kinds are ${SCALE_KINDS.join(', ')}`);
  const tasks = (values.tasks ?? '1,2').split(',').map((t) => countOption(t.trim(), 1, 'tasks'));
  const mode = values.mode ?? 'both';
  if (!['threads', 'processes', 'both'].includes(mode))
    throw new UsageError(`--mode is threads, processes or both, not '${mode}'`);
  const modes: ScaleMode[] = mode === 'both' ? ['threads', 'processes'] : [mode as ScaleMode];
  const seconds = Number(values.seconds ?? 5);
  if (!(seconds > 0 && seconds <= 3600))
    throw new UsageError(`--seconds must be in (0, 3600], not '${values.seconds}'`);
  const report = await runAndPrint(
    out,
    values.json,
    (onProgress) =>
      runScaleBench({
        kinds,
        tasks,
        modes,
        seconds,
        dir: values.dir,
        onProgress,
      }),
    scaleTable,
  );
  if (values.svg !== undefined) writeFileSync(values.svg, scaleChart(report));
  return 0;
}

/** The pressure report as an aligned table: one row per limit and method. */
export function pressureTable(report: PressureReport): string {
  if (report.skipped !== undefined) return `pressure: skipped, ${report.skipped}`;
  const rows: string[][] = [];
  for (const point of report.points) {
    if (point.failed !== undefined) {
      rows.push([formatSize(point.limit), point.ratio.toFixed(2), point.failed, '', '', '']);
      continue;
    }
    for (const r of point.results)
      rows.push([
        formatSize(point.limit),
        point.ratio.toFixed(2),
        r.method,
        formatNumber(r.nsPerRead),
        String(r.reads),
        String(r.majorFaults),
      ]);
  }
  const table = formatTable(
    [
      { heading: 'limit' },
      { heading: 'file/limit', numeric: true },
      { heading: 'method' },
      { heading: 'ns/read', numeric: true },
      { heading: 'reads', numeric: true },
      { heading: 'major faults', numeric: true },
    ],
    rows,
  );
  return [
    `${report.reads} random 4-byte reads of a ${formatSize(report.size)} file dropped from the page cache first, ` +
      `in a child held in a cgroup ${report.cgroup} memory limit; ${report.machine.cpus} CPUs, Linux ${report.machine.kernel}`,
    '',
    table,
  ].join('\n');
}

async function benchPressure(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parse({
    args,
    strict: true,
    options: {
      size: { type: 'string' },
      limit: { type: 'string' },
      reads: { type: 'string' },
      budget: { type: 'string' },
      json: { type: 'boolean' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(out);
  await runAndPrint(
    out,
    values.json,
    (onProgress) =>
      runPressureBench({
        size: sizeOption(values.size, 256 * 2 ** 20, 'size'),
        limit: sizeOption(values.limit, 64 * 2 ** 20, 'limit'),
        reads: countOption(values.reads, 50_000, 'reads'),
        budgetMs: countOption(values.budget, 10, 'budget') * 1000,
        dir: values.dir,
        onProgress,
      }),
    pressureTable,
  );
  return 0;
}

/** The TLB report as an aligned table: ns per random read by page size, JavaScript beside C. */
export function tlbTable(report: TlbReport): string {
  const table = formatTable(
    [
      { heading: 'pages' },
      { heading: 'ns/read', numeric: true },
      { heading: 'C ns/read', numeric: true },
      { heading: 'JS/C', numeric: true },
      { heading: 'huge', numeric: true },
    ],
    report.results.map((r) => [
      r.kind,
      formatNumber(r.nsPerRead),
      formatNumber(r.nativeNsPerRead),
      (r.nsPerRead / r.nativeNsPerRead).toFixed(2),
      `${Math.round(r.hugeShare * 100)}%`,
    ]),
  );
  const skipped = report.skipped.map((s) => `${s.kind}: skipped, ${s.reason}`);
  return [
    `${report.reads} random 4-byte reads over a resident ${formatSize(report.size)} region, median of ${report.repeat}; ` +
      `${report.machine.cpus} CPUs, ${report.machine.cpuModel}, Linux ${report.machine.kernel}, THP ${report.machine.thp}`,
    '',
    table,
    ...(skipped.length > 0 ? ['', ...skipped] : []),
  ].join('\n');
}

async function benchTlb(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parse({
    args,
    strict: true,
    options: {
      size: { type: 'string' },
      reads: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(out);
  await runAndPrint(
    out,
    values.json,
    (onProgress) =>
      runTlbBench({
        size: sizeOption(values.size, 2 ** 30, 'size'),
        reads: countOption(values.reads, 4_000_000, 'reads'),
        repeat: countOption(values.repeat, 5, 'repeat'),
        onProgress,
      }),
    tlbTable,
  );
  return 0;
}

/** Residency of files as an aligned table, with a total line for more than one file. */
export function residencyTable(files: readonly FileResidency[]): string {
  const rows = files.map((f) => [
    f.path,
    formatSize(f.size),
    String(f.pages),
    String(f.residentPages),
    `${f.percent.toFixed(1)}%`,
  ]);
  if (files.length > 1) {
    const pages = files.reduce((n, f) => n + f.pages, 0);
    const resident = files.reduce((n, f) => n + f.residentPages, 0);
    rows.push([
      'total',
      formatSize(files.reduce((n, f) => n + f.size, 0)),
      String(pages),
      String(resident),
      `${(pages === 0 ? 100 : (resident / pages) * 100).toFixed(1)}%`,
    ]);
  }
  return formatTable(
    [
      { heading: 'file' },
      { heading: 'size', numeric: true },
      { heading: 'pages', numeric: true },
      { heading: 'resident', numeric: true },
      { heading: 'percent', numeric: true },
    ],
    rows,
  );
}

async function benchFaults(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parse({
    args,
    strict: true,
    options: {
      size: { type: 'string' },
      kinds: { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean' },
      svg: { type: 'string' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(out);
  let kinds: FaultKind[] | undefined;
  if (values.kinds !== undefined) {
    kinds = values.kinds
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== '') as FaultKind[];
    const unknown = kinds.filter((k) => !isFaultKind(k));
    if (unknown.length > 0)
      throw new UsageError(`unknown kind ${unknown.join(', ')}; kinds are ${FAULT_KINDS.join(', ')}`);
  }
  const report = await runAndPrint(
    out,
    values.json,
    (onProgress) =>
      runFaultBench({
        size: sizeOption(values.size, 256 * 2 ** 20, 'size'),
        repeat: countOption(values.repeat, 7, 'repeat'),
        kinds,
        dir: values.dir,
        onProgress,
      }),
    faultTable,
  );
  if (values.svg !== undefined) writeFileSync(values.svg, faultChart(report));
  return 0;
}

async function benchIo(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values } = parse({
    args,
    strict: true,
    options: {
      size: { type: 'string' },
      reads: { type: 'string' },
      'loop-reads': { type: 'string' },
      repeat: { type: 'string' },
      json: { type: 'boolean' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(out);
  await runAndPrint(
    out,
    values.json,
    (onProgress) =>
      runIoBench({
        size: sizeOption(values.size, 2 ** 30, 'size'),
        randomReads: countOption(values.reads, 1_000_000, 'reads'),
        eventLoopReads: countOption(values['loop-reads'], 100_000, 'loop-reads'),
        repeat: countOption(values.repeat, 3, 'repeat'),
        dir: values.dir,
        onProgress,
      }),
    ioTable,
  );
  return 0;
}

// Holds the locked mappings until SIGINT or SIGTERM, then unlocks by unmapping.
function holdUntilInterrupted(mappings: Mapping[], out: NodeJS.WritableStream): Promise<number> {
  const pages = mappings.reduce((n, m) => n + Math.ceil(m.length / PAGE_SIZE), 0);
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 2 ** 30);
    const release = (): void => {
      clearInterval(keepAlive);
      process.off('SIGINT', release);
      process.off('SIGTERM', release);
      for (const mapping of mappings) mapping.unmap();
      out.write('Released.\n');
      resolve(0);
    };
    process.on('SIGINT', release);
    process.on('SIGTERM', release);
    // Only now: whoever reads this line may interrupt at once.
    out.write(`Locked ${pages} pages in ${mappings.length} file(s); press Ctrl-C to release.\n`);
  });
}

async function residency(args: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values, positionals } = parse({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      touch: { type: 'boolean' },
      evict: { type: 'boolean' },
      lock: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return help(out);
  if (positionals.length === 0) throw new UsageError('residency needs at least one FILE');
  if ([values.touch, values.evict, values.lock].filter(Boolean).length > 1) {
    throw new UsageError('--touch, --evict and --lock exclude each other');
  }
  const locked: Mapping[] = [];
  try {
    for (const path of positionals) {
      if (values.touch) touchFile(path);
      if (values.evict) evictFile(path);
      if (values.lock) {
        const mapping = lockFile(path);
        if (mapping !== null) locked.push(mapping);
      }
    }
  } catch (err) {
    for (const mapping of locked) mapping.unmap();
    throw err;
  }
  const files = positionals.map(fileResidency);
  out.write(values.json ? `${JSON.stringify({ files }, null, 2)}\n` : `${residencyTable(files)}\n`);
  return values.lock ? holdUntilInterrupted(locked, out) : 0;
}

function help(out: NodeJS.WritableStream): number {
  out.write(`${USAGE}\n`);
  return 0;
}

/**
 * Runs the `mman` command with `args` (without `node` and the script) and resolves with
 * the exit status: 0 on success, 1 on a failure, 2 on a usage error.
 */
export async function main(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const [command, sub, ...rest] = args;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') return help(out);
    if (command === 'bench' && sub === 'faults') return await benchFaults(rest, out);
    if (command === 'bench' && sub === 'io') return await benchIo(rest, out);
    if (command === 'bench' && sub === 'tlb') return await benchTlb(rest, out);
    if (command === 'bench' && sub === 'scale') return await benchScale(rest, out);
    if (command === 'bench' && sub === 'pressure') return await benchPressure(rest, out);
    if (command === 'residency') return await residency(args.slice(1), out);
    throw new UsageError(`unknown command '${args.slice(0, command === 'bench' ? 2 : 1).join(' ')}'`);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`mman: ${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    const e = error as NodeJS.ErrnoException;
    err.write(`mman: ${e.code !== undefined ? '' : `${e.name}: `}${e.message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}
