// The public surface of mman. Re-exports only.
export { PAGE_SIZE, MAX_BUFFER_LENGTH, Mapping, mmap, mapFile, mapAnonymous, mappingStats } from './mapping';
export type { MappingStats, MapFileMode, MapFileOptions, MapAnonymousOptions, SyncOptions, FlushOptions, ResizeOptions, LockOptions } from './mapping';
export { Prot, MapFlags, Advice, SyncFlags, RemapFlags, LockFlags } from './flags';
export type { SystemError, MmanErrorCode } from './errors';
