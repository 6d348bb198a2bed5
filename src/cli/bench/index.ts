// The benchmark toolkit the `mman` command runs, for the scripts in bench/ too: they import it
// from here (lib/cli/bench), never from the files behind it.
export { median } from './stats';
export { FAULT_KINDS, readEveryPage, runFaultBench, type FaultKind, type FaultReport } from './faults';
export { runIoBench, type IoReport } from './io';
export * as io from './io'; // its single scans and reads, which bench/core.js times one by one
export { machineInfo, type MachineInfo } from './machine';
export { evictFile, fileResidency, touchFile } from './page-cache';
export { createScratchFile, type ScratchFile } from './scratch-file';
export { formatSize, parseSize } from './size';
