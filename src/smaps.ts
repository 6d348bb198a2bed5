// The kernel's own accounting of a range of this process's memory, from /proc/self/smaps.
import { readFileSync } from 'node:fs';

/**
 * What the kernel counts for a mapping's pages (`/proc/self/smaps`), in bytes, summed over
 * the VMAs that hold them. See proc(5) for each figure.
 */
export interface MappingMemory {
  /**
   * Bytes of the VMAs counted (smaps `Size`). More than the mapping when the kernel merged
   * it with a neighbour of the same kind (adjacent anonymous memory with the same flags, say);
   * every figure below then includes the neighbour's pages. A named anonymous mapping
   * (`mapAnonymous(n, { name })`) is never merged with memory of another name.
   */
  size: number;
  /** How many VMAs hold the mapping: more than one after `protect()` or `advise()` of part of it. */
  vmas: number;
  /** Resident (`Rss`). */
  rss: number;
  /** Proportional set size (`Pss`): each resident page divided by the number of processes mapping it. */
  pss: number;
  /** Resident pages mapped by other processes too, unmodified (`Shared_Clean`). */
  sharedClean: number;
  /** Resident pages mapped by other processes too, modified (`Shared_Dirty`). */
  sharedDirty: number;
  /** Resident pages only this process maps, unmodified (`Private_Clean`). */
  privateClean: number;
  /**
   * Resident pages only this process maps, modified (`Private_Dirty`): a shared file page this
   * process wrote counts here until another process maps it.
   */
  privateDirty: number;
  /** Anonymous pages, including the private copies of file pages (`Anonymous`). */
  anonymous: number;
  /** Anonymous memory backed by transparent huge pages (`AnonHugePages`). */
  anonHugePages: number;
  /** File pages mapped by huge page table entries (`FilePmdMapped`). */
  filePmdMapped: number;
  /** Swapped out (`Swap`). */
  swap: number;
  /** Locked in RAM by mlock (`Locked`). */
  locked: number;
}

const FIELDS: Record<string, keyof MappingMemory> = {
  Size: 'size',
  Rss: 'rss',
  Pss: 'pss',
  Shared_Clean: 'sharedClean',
  Shared_Dirty: 'sharedDirty',
  Private_Clean: 'privateClean',
  Private_Dirty: 'privateDirty',
  Anonymous: 'anonymous',
  AnonHugePages: 'anonHugePages',
  FilePmdMapped: 'filePmdMapped',
  Swap: 'swap',
  Locked: 'locked',
};

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) /;
const FIELD = /^(\w+):\s+(\d+) kB$/;

/** Sums the smaps figures of every VMA that overlaps `[start, end)`. */
export function memoryOf(
  start: bigint,
  end: bigint,
  smaps = readFileSync('/proc/self/smaps', 'latin1'),
): MappingMemory {
  const sum: MappingMemory = {
    size: 0,
    vmas: 0,
    rss: 0,
    pss: 0,
    sharedClean: 0,
    sharedDirty: 0,
    privateClean: 0,
    privateDirty: 0,
    anonymous: 0,
    anonHugePages: 0,
    filePmdMapped: 0,
    swap: 0,
    locked: 0,
  };
  let inside = false;
  for (const line of smaps.split('\n')) {
    const header = HEADER.exec(line);
    if (header !== null) {
      inside = BigInt(`0x${header[1]}`) < end && BigInt(`0x${header[2]}`) > start;
      if (inside) sum.vmas++;
      continue;
    }
    if (!inside) continue;
    const field = FIELD.exec(line);
    const key = field === null ? undefined : FIELDS[field[1]];
    if (key !== undefined) sum[key] += Number(field![2]) * 1024;
  }
  return sum;
}
