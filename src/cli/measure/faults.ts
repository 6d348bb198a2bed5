// First-touch cost of each kind of mapping: one access per page from JavaScript, the same
// loop in C on a twin mapping in the same run, fault counts from getrusage, residency after.
import { Advice, mapAnonymous, mapFile, PAGE_SIZE, type Mapping } from '../..';
import { tools } from '../../internal';
import { releaseUnmappedSync } from './io';
import { machineInfo, type MachineInfo } from './machine';
import { countResident, evictFile, fileResidency } from '../util/page-cache';
import { median } from './stats';
import { createScratchFile, type ScratchFile } from './scratch-file';

/** Every kind of first touch the benchmark knows, in the order it runs them. */
export const FAULT_KINDS = [
  'anon-private-read',
  'anon-private-write',
  'anon-shared-write',
  'file-private-read',
  'file-private-write',
  'file-shared-read',
  'file-shared-write',
  'anon-populate',
  'anon-populate-write',
  'anon-thp',
  'hugetlb',
  'file-cold-read',
] as const;

/** One of {@link FAULT_KINDS}. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What one kind cost, per page of the mapping. Times are ns per page. */
export interface FaultResult {
  kind: FaultKind;
  /** What is done before the touch, untimed: how the mapping was made. */
  setup: string;
  /** Median over the repetitions of the JavaScript loop, with its min and max. */
  nsPerPage: number;
  nsMin: number;
  nsMax: number;
  /** Median of the same loop in C (native touchPages) on a twin mapping. */
  nativeNsPerPage: number;
  /** Median of the JS/C ratios of each repetition (a pair run back to back): 1.0 means JavaScript adds nothing. */
  ratio: number;
  /** getrusage deltas over the JavaScript touch, per page (median). */
  minorFaultsPerPage: number;
  majorFaultsPerPage: number;
  /** Pages resident (mincore) after the JavaScript touch. */
  residentPages: number;
  pages: number;
  /**
   * Share of the mapping the kernel backed with huge pages after the JavaScript touch, 0 to 1
   * (median): smaps `AnonHugePages` + `FilePmdMapped` ({@link Mapping.memory}). Shows whether
   * `anon-thp` really got transparent huge pages.
   */
  hugeShare: number;
}

/** A kind that could not run on this machine, and why. */
export interface SkippedKind {
  kind: FaultKind;
  reason: string;
}

/** The whole run: the measured kinds in order, the skipped ones with their reason. */
export interface FaultReport {
  size: number;
  pageSize: number;
  repeat: number;
  machine: MachineInfo;
  kinds: FaultResult[];
  skipped: SkippedKind[];
}

/** Options for {@link runFaultBench}. */
export interface FaultBenchOptions {
  /** Bytes per mapping. Default 256 MiB. */
  size?: number;
  /** Kinds to run, in this order. Default: all of {@link FAULT_KINDS}. */
  kinds?: readonly FaultKind[];
  /** Timed repetitions per kind, each for JavaScript and for C. Default 7. */
  repeat?: number;
  /** Directory for the scratch file of the file kinds. Default `os.tmpdir()`. */
  dir?: string;
  /** Called before each step, for a progress bar. */
  onProgress?: (done: number, total: number, label: string) => void;
}

interface KindPlan {
  setup: string;
  write: boolean;
  /** Why the kind cannot run here, or null. */
  unavailable(context: Context): string | null;
  /** A fresh mapping, ready for its first touch. */
  prepare(context: Context): Mapping;
}

interface Context {
  size: number;
  machine: MachineInfo;
  file(): ScratchFile;
}

const PLANS: Record<FaultKind, KindPlan> = {
  'anon-private-read': {
    setup: 'mmap(MAP_PRIVATE|MAP_ANONYMOUS); reads map the shared zero page',
    write: false,
    unavailable: () => null,
    prepare: (c) => mapAnonymous(c.size),
  },
  'anon-private-write': {
    setup: 'mmap(MAP_PRIVATE|MAP_ANONYMOUS); each write allocates and zeroes a page',
    write: true,
    unavailable: () => null,
    prepare: (c) => mapAnonymous(c.size),
  },
  'anon-shared-write': {
    setup: 'mmap(MAP_SHARED|MAP_ANONYMOUS): shmem pages',
    write: true,
    unavailable: () => null,
    prepare: (c) => mapAnonymous(c.size, { shared: true }),
  },
  'file-private-read': {
    setup: 'mmap(MAP_PRIVATE) of a file in the page cache',
    write: false,
    unavailable: () => null,
    prepare: (c) => mapFile(c.file().path, { mode: 'copy' }),
  },
  'file-private-write': {
    setup: 'mmap(MAP_PRIVATE) of a cached file; each write copies the page (copy-on-write)',
    write: true,
    unavailable: () => null,
    prepare: (c) => mapFile(c.file().path, { mode: 'copy' }),
  },
  'file-shared-read': {
    setup: 'mmap(MAP_SHARED) of a file in the page cache',
    write: false,
    unavailable: () => null,
    prepare: (c) => mapFile(c.file().path, { mode: 'r' }),
  },
  'file-shared-write': {
    setup: 'mmap(MAP_SHARED, PROT_WRITE) of a cached file; writes dirty the page cache',
    write: true,
    unavailable: () => null,
    prepare: (c) => mapFile(c.file().path, { mode: 'r+' }),
  },
  'anon-populate': {
    setup: 'mmap(MAP_POPULATE): pages are allocated before the touch',
    write: true,
    unavailable: () => null,
    prepare: (c) => mapAnonymous(c.size, { populate: true }),
  },
  'anon-populate-write': {
    setup: 'madvise(MADV_POPULATE_WRITE) before the touch',
    write: true,
    unavailable: () => null,
    prepare: (c) => {
      const mapping = mapAnonymous(c.size);
      try {
        mapping.advise(Advice.PopulateWrite);
      } catch (err) {
        mapping.unmap();
        throw err;
      }
      return mapping;
    },
  },
  'anon-thp': {
    setup: 'madvise(MADV_HUGEPAGE): one fault maps a 2 MiB transparent huge page',
    write: true,
    unavailable: (c) =>
      c.machine.thp === 'madvise' || c.machine.thp === 'always'
        ? null
        : `transparent huge pages are '${c.machine.thp}' (/sys/kernel/mm/transparent_hugepage/enabled)`,
    prepare: (c) => mapAnonymous(c.size, { hugePages: 'transparent' }),
  },
  hugetlb: {
    setup: 'mmap(MAP_HUGETLB) from reserved huge pages',
    write: true,
    unavailable: (c) => {
      const needed = Math.ceil(c.size / c.machine.hugePageSize);
      return c.machine.hugePagesFree >= needed
        ? null
        : `needs ${needed} free huge pages of ${c.machine.hugePageSize / 1024} kB, ${c.machine.hugePagesFree} reserved (/proc/sys/vm/nr_hugepages)`;
    },
    prepare: (c) => mapAnonymous(c.size, { hugePages: true }),
  },
  'file-cold-read': {
    setup: 'posix_fadvise(POSIX_FADV_DONTNEED) first: reads go to the disk (major faults)',
    write: false,
    unavailable: (c) => {
      const file = c.file();
      releaseUnmappedSync(); // an earlier kind's pages, still mapped, cannot be evicted
      evictFile(file.path);
      const left = fileResidency(file.path);
      return left.percent > 50
        ? `the page cache kept ${left.percent.toFixed(0)}% of the file after POSIX_FADV_DONTNEED (tmpfs?); use --dir on a disk`
        : null;
    },
    prepare: (c) => {
      const path = c.file().path;
      releaseUnmappedSync();
      evictFile(path);
      return mapFile(path, { mode: 'r' });
    },
  },
};

// Kept small and monomorphic, the length read once and unrolled by four, so V8's code keeps
// as many page walks in flight as the C loop does; one access per page all the same.
// bench/read-loop.js times this same function.
export function readEveryPage(bytes: Uint8Array, stride: number): number {
  const length = bytes.length;
  const unrolledEnd = length - 3 * stride;
  let sum = 0;
  let i = 0;
  for (; i < unrolledEnd; i += 4 * stride)
    sum += bytes[i] + bytes[i + stride] + bytes[i + 2 * stride] + bytes[i + 3 * stride];
  for (; i < length; i += stride) sum += bytes[i];
  return sum;
}

export function writeEveryPage(bytes: Uint8Array, stride: number): void {
  const length = bytes.length;
  const unrolledEnd = length - 3 * stride;
  let i = 0;
  for (; i < unrolledEnd; i += 4 * stride) {
    bytes[i] = 1;
    bytes[i + stride] = 1;
    bytes[i + 2 * stride] = 1;
    bytes[i + 3 * stride] = 1;
  }
  for (; i < length; i += stride) bytes[i] = 1;
}

// Where the warm-up's reads go, so that the compiler keeps them: written, never read.
let _sink = 0;

function warmUpLoops(): void {
  const bytes = new Uint8Array(64 * PAGE_SIZE);
  for (let i = 0; i < 2000; i++) {
    writeEveryPage(bytes, PAGE_SIZE);
    _sink += readEveryPage(bytes, PAGE_SIZE);
  }
}

// A VM's first touch of guest memory costs the host's fault too: pay it before timing.
function warmUpGuestMemory(bytes: number): void {
  const mapping = mapAnonymous(bytes);
  try {
    tools.touchPages(mapping.buffer, PAGE_SIZE, true);
  } finally {
    mapping.unmap();
  }
}

interface Sample {
  ns: number;
  minor: number;
  major: number;
  resident: number;
  huge: number; // bytes in huge pages
}

function touchFromJavaScript(plan: KindPlan, context: Context): Sample {
  const mapping = plan.prepare(context);
  try {
    const bytes = mapping.bytes;
    const before = process.resourceUsage();
    const start = process.hrtime.bigint();
    if (plan.write) writeEveryPage(bytes, PAGE_SIZE);
    else _sink += readEveryPage(bytes, PAGE_SIZE);
    const ns = Number(process.hrtime.bigint() - start);
    const after = process.resourceUsage();
    const memory = mapping.memory();
    return {
      ns,
      minor: after.minorPageFault - before.minorPageFault,
      major: after.majorPageFault - before.majorPageFault,
      resident: countResident(mapping),
      huge: memory.anonHugePages + memory.filePmdMapped,
    };
  } finally {
    mapping.unmap();
  }
}

function touchFromC(plan: KindPlan, context: Context): number {
  const mapping = plan.prepare(context);
  try {
    return tools.touchPages(mapping.buffer, PAGE_SIZE, plan.write);
  } finally {
    mapping.unmap();
  }
}

/**
 * Measures the first-touch cost of each kind: for each repetition, a fresh mapping
 * touched once per page from JavaScript (timed, with fault counts), and a fresh twin
 * touched by the same loop in C. Kinds this machine cannot run are reported as skipped.
 * Needs about `size` bytes of free memory per mapping, and a scratch file of `size`
 * bytes, which is removed before returning.
 */
export function runFaultBench(options: FaultBenchOptions = {}): FaultReport {
  const size = Math.ceil((options.size ?? 256 * 2 ** 20) / PAGE_SIZE) * PAGE_SIZE;
  const repeat = options.repeat ?? 7;
  const kinds = options.kinds ?? FAULT_KINDS;
  const machine = machineInfo();
  let scratch: ScratchFile | null = null;
  const context: Context = {
    size,
    machine,
    file: () => (scratch ??= createScratchFile(size, options.dir)),
  };
  const pages = size / PAGE_SIZE;
  const report: FaultReport = { size, pageSize: PAGE_SIZE, repeat, machine, kinds: [], skipped: [] };
  // Per kind: one untimed warm-up pair, then `repeat` timed pairs.
  const total = kinds.length * (repeat + 1) + 1;
  let done = 0;
  const progress = (label: string): void => options.onProgress?.(done++, total, label);
  try {
    progress('warming up');
    warmUpLoops();
    warmUpGuestMemory(Math.min(Math.max(4 * size, 2 ** 30), 2 ** 32 - PAGE_SIZE));
    for (const kind of kinds) {
      const plan = PLANS[kind];
      let reason: string | null;
      try {
        reason = plan.unavailable(context);
      } catch (err) {
        reason = `failed: ${(err as Error).message}`;
      }
      if (reason !== null) {
        report.skipped.push({ kind, reason });
        done += repeat + 1;
        continue;
      }
      const samples: Sample[] = [];
      const nativeNs: number[] = [];
      const kindStart = done;
      try {
        for (let rep = -1; rep < repeat; rep++) {
          progress(kind);
          // Alternate which goes first, so neither always inherits the other's leftovers.
          let sample: Sample;
          let c: number;
          if (rep % 2 === 0) {
            sample = touchFromJavaScript(plan, context);
            c = touchFromC(plan, context);
          } else {
            c = touchFromC(plan, context);
            sample = touchFromJavaScript(plan, context);
          }
          if (rep < 0) continue;
          samples.push(sample);
          nativeNs.push(c);
        }
      } catch (err) {
        // A kernel that refuses this kind (EINVAL, ENOMEM, EPERM) skips it; it never fakes it.
        report.skipped.push({ kind, reason: `failed: ${(err as Error).message}` });
        done = kindStart + repeat + 1;
        continue;
      }
      const perPage = samples.map((s) => s.ns / pages);
      const nsPerPage = median(perPage);
      const nativeNsPerPage = median(nativeNs) / pages;
      report.kinds.push({
        kind,
        setup: plan.setup,
        nsPerPage,
        nsMin: Math.min(...perPage),
        nsMax: Math.max(...perPage),
        nativeNsPerPage,
        ratio: median(samples.map((sample, i) => sample.ns / nativeNs[i])),
        minorFaultsPerPage: median(samples.map((s) => s.minor)) / pages,
        majorFaultsPerPage: median(samples.map((s) => s.major)) / pages,
        residentPages: median(samples.map((s) => s.resident)),
        pages,
        // memory() counts a neighbour merged into the same VMA too: never more than the mapping.
        hugeShare: Math.min(1, median(samples.map((s) => s.huge)) / size),
      });
    }
    progress('done');
  } finally {
    (scratch as ScratchFile | null)?.remove();
  }
  return report;
}
