// The measurements the `mman` command runs, for the scripts in bench/ too: they import them
// from here (lib/cli/measure), never from the files behind it.
export { median } from './stats';
export { readEveryPage, runFaultBench, type FaultKind, type FaultReport } from './faults';
export * as io from './io'; // its single scans and reads, which bench/core.js times one by one
export { machineInfo, type MachineInfo } from './machine';
export { touchFile } from '../util/page-cache';
export { createScratchFile, type ScratchFile } from './scratch-file';
export { parseSize } from '../util/size';
