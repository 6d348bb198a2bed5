// The public surface of mman. Re-exports only.
export { PAGE_SIZE, MAX_BUFFER_LENGTH, Mapping, mappingStats } from './mapping';
export { mmap, mapFile, mapFileAsync, mapAnonymous } from './map';
export type { MapFileMode, MapFileOptions, MapFileAsyncOptions, MapAnonymousOptions } from './map';
export type {
  MappingStats,
  PopulateOptions,
  SyncOptions,
  FlushOptions,
  ResizeOptions,
  LockOptions,
  UnmapOptions,
  MappingDescriptor,
} from './mapping';
export type { MappingMemory } from './smaps';
export { Prot, MapFlags, Advice, SyncFlags, RemapFlags, LockFlags } from './flags';
export type { SystemError, MmanErrorCode } from './errors';
export { SharedMemory, fork, shareWithCluster, SHM_DIRECTORY } from './shared';
export type {
  SharedMemoryCreateOptions,
  SharedMemoryOpenOptions,
  SharedMapOptions,
  SharedForkOptions,
  ClusterSharing,
  SharedMemoryDescriptor,
  SocketPassOptions,
  Seal,
} from './shared';
export type { ShareOptions } from './descriptors';
export { wait, waitAsync, notify } from './futex';
export type { WaitResult, WaitOptions, WaitAsyncOptions, NotifyOptions } from './futex';
export { Mutex } from './mutex';
export type { LockResult, MutexOptions, LockAsyncOptions, WithLockOptions } from './mutex';
export { RingBuffer } from './ring';
export type { RingBufferOptions, RingWaitOptions } from './ring';
