// What the machine offers that changes which benchmarks can run and what they measure.
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release } from 'node:os';

import { defaultHugePage } from '../../internal';

/** The facts a benchmark result is meaningless without. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  /** Transparent huge pages mode: `always`, `madvise`, `never`, or `unknown`. */
  thp: string;
  /** Free reserved hugetlb pages, and their size in bytes. */
  hugePagesFree: number;
  hugePageSize: number;
  /** The 1-minute load average when the run started: above ~0.5 per CPU, other work was competing. */
  loadAverage: number;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return fallback;
  }
}

/** Reads /proc and /sys once: CPUs, kernel, Node, THP mode and reserved huge pages. */
export function machineInfo(): MachineInfo {
  const cpuinfo = readOr('/proc/cpuinfo', '');
  const meminfo = readOr('/proc/meminfo', '');
  const thpLine = readOr('/sys/kernel/mm/transparent_hugepage/enabled', '');
  const meminfoNumber = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(meminfo)?.[1] ?? 0);
  return {
    cpus: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    kernel: release(),
    node: process.version,
    thp: /\[(\w+)\]/.exec(thpLine)?.[1] ?? 'unknown',
    hugePagesFree: meminfoNumber('HugePages_Free'),
    hugePageSize: defaultHugePage(),
    loadAverage: loadavg()[0],
  };
}
