// What a huge page buys after the fault: random 4-byte reads over a resident region, in 4 KiB
// pages (THP off), in transparent huge pages, and in hugetlb pages when reserved. Every read
// misses the caches; whether it also misses the TLB depends on how far the TLB reaches.
import { Advice, mapAnonymous, PAGE_SIZE, type Mapping } from '../..';
import { tools } from '../../internal';
import { machineInfo, type MachineInfo } from './machine';
import { randomWordIndexes } from './io';
import { median } from './stats';

/** The page sizes the TLB benchmark compares. */
export const TLB_KINDS = ['pages-4k', 'thp', 'hugetlb'] as const;
export type TlbKind = (typeof TLB_KINDS)[number];

/** One page size's random reads. */
export interface TlbResult {
  kind: TlbKind;
  setup: string;
  /** Median ns per read from JavaScript, and the same reads in C (native readWords). */
  nsPerRead: number;
  nativeNsPerRead: number;
  /** Share of the region the kernel backed with huge pages (smaps), 0 to 1. */
  hugeShare: number;
}

/** The whole TLB run. */
export interface TlbReport {
  size: number;
  reads: number;
  repeat: number;
  machine: MachineInfo;
  results: TlbResult[];
  skipped: Array<{ kind: TlbKind; reason: string }>;
}

/** Options for {@link runTlbBench}. */
export interface TlbBenchOptions {
  /** Bytes of the region. Default 1 GiB. */
  size?: number;
  /** Random reads per repetition. Default 4,000,000. */
  reads?: number;
  /** Repetitions (the median is kept). Default 5. */
  repeat?: number;
  onProgress?: (done: number, total: number, label: string) => void;
}

// Four sums, so that no read waits for the one before it (with one sum V8's code keeps fewer
// misses in flight); native readWords makes the same reads the same way.
function sumAt(words: Uint32Array, indexes: Uint32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = indexes.length - (indexes.length % 4);
  for (let i = 0; i < n; i += 4) {
    s0 = (s0 + words[indexes[i]]) | 0;
    s1 = (s1 + words[indexes[i + 1]]) | 0;
    s2 = (s2 + words[indexes[i + 2]]) | 0;
    s3 = (s3 + words[indexes[i + 3]]) | 0;
  }
  for (let i = n; i < indexes.length; i++) s0 = (s0 + words[indexes[i]]) | 0;
  return (s0 + s1 + s2 + s3) | 0;
}

/**
 * Maps the region three ways, writes every page (so all is resident before the clock
 * starts), then times random 4-byte reads from JavaScript and from C. A kind this machine
 * cannot run (THP off, no hugetlb pages reserved) is skipped with the reason.
 */
export function runTlbBench(options: TlbBenchOptions = {}): TlbReport {
  const machine = machineInfo();
  const huge = machine.hugePageSize > 0 ? machine.hugePageSize : 2 * 1024 * 1024;
  const size = Math.ceil((options.size ?? 2 ** 30) / huge) * huge;
  const reads = options.reads ?? 4_000_000;
  const repeat = options.repeat ?? 5;
  const report: TlbReport = { size, reads, repeat, machine, results: [], skipped: [] };
  const indexes = randomWordIndexes(reads, size / 4, 0x1b873593);
  const plans: Record<TlbKind, { setup: string; unavailable: () => string | null; map: () => Mapping }> = {
    'pages-4k': {
      setup: `mmap(MAP_PRIVATE|MAP_ANONYMOUS) + madvise(MADV_NOHUGEPAGE): ${PAGE_SIZE} B pages`,
      unavailable: () => null,
      map: () => {
        const m = mapAnonymous(size);
        m.advise(Advice.NoHugePage);
        return m;
      },
    },
    thp: {
      setup: 'madvise(MADV_HUGEPAGE): transparent huge pages',
      unavailable: () =>
        machine.thp === 'madvise' || machine.thp === 'always'
          ? null
          : `transparent huge pages are '${machine.thp}' (/sys/kernel/mm/transparent_hugepage/enabled)`,
      map: () => mapAnonymous(size, { hugePages: 'transparent' }),
    },
    hugetlb: {
      setup: 'MAP_HUGETLB: reserved huge pages',
      unavailable: () =>
        machine.hugePagesFree * huge >= size
          ? null
          : `needs ${size / huge} free huge pages of ${huge / 1024} kB, ${machine.hugePagesFree} reserved (/proc/sys/vm/nr_hugepages)`,
      map: () => mapAnonymous(size, { hugePages: true }),
    },
  };
  const total = TLB_KINDS.length * (repeat + 1);
  let done = 0;
  for (const kind of TLB_KINDS) {
    const plan = plans[kind];
    const reason = plan.unavailable();
    if (reason !== null) {
      report.skipped.push({ kind, reason });
      done += repeat + 1;
      continue;
    }
    let mapping: Mapping;
    try {
      mapping = plan.map();
    } catch (err) {
      report.skipped.push({ kind, reason: `failed: ${(err as Error).message}` });
      done += repeat + 1;
      continue;
    }
    try {
      options.onProgress?.(done++, total, `tlb ${kind}: writing every page`);
      tools.touchPages(mapping.buffer, PAGE_SIZE, true);
      const words = new Uint32Array(mapping.buffer);
      sumAt(words, indexes.subarray(0, Math.min(indexes.length, 100_000))); // compiled before timing
      const js: number[] = [];
      const c: number[] = [];
      for (let r = 0; r < repeat; r++) {
        options.onProgress?.(done++, total, `tlb ${kind}`);
        const start = process.hrtime.bigint();
        sumAt(words, indexes);
        js.push(Number(process.hrtime.bigint() - start) / reads);
        c.push(tools.readWords(mapping.buffer, indexes) / reads);
      }
      const memory = mapping.memory();
      report.results.push({
        kind,
        setup: plan.setup,
        nsPerRead: median(js),
        nativeNsPerRead: median(c),
        hugeShare: kind === 'hugetlb' ? 1 : Math.min(1, (memory.anonHugePages + memory.filePmdMapped) / size),
      });
    } finally {
      mapping.unmap({ detachViews: true });
    }
  }
  options.onProgress?.(done, total, 'done');
  return report;
}
