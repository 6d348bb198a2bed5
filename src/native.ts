// The compiled addon (native/), typed. Where the binary lives is src/load.ts's business.
import { join } from 'node:path';
import { loadAddon } from './load';

/** An opaque handle to one native Region; only the addon can make or read one. */
export type Handle = { readonly __mmanHandle: unique symbol };

/** The addon's hooks for the tools (the `mman` command, bench/) and the tests: native/tools.cc. */
export interface NativeTools {
  /** One access per `stride` bytes of `buffer` (a write of 1, or a read); returns elapsed ns. */
  touchPages(buffer: ArrayBuffer, stride: number, write: boolean): number;
  /** Reads the 32-bit word of `buffer` at each of `indexes`, in order; returns elapsed ns. */
  readWords(buffer: ArrayBuffer, indexes: Uint32Array): number;
  /** posix_fadvise(2): 0 or -errno. */
  fadvise(fd: number, offset: number, length: number, advice: number): number;
  readonly fadviseConstants: Readonly<Record<string, number>>;
  /** populate()'s fallback (a page touch through process_vm_readv) on this thread: 0 or -errno. */
  populateByTouch(handle: Handle, offset: number, length: number): number;
  /** ns per one-page mmap + munmap in a C loop inside this process, or -errno. */
  mapUnmapLoop(iterations: number): number;
  /** Pending waitAsync calls and waiter threads of this thread. */
  waitAsyncStats(): { pending: number; sleeping: number; threads: number };
  /** Source builds only (not the prebuilds): bytes malloc has out (glibc), or -1. */
  mallocInUse?(): number;
}

/** What native.openFile answers for a file it opened. */
export type OpenedFile = [fd: number, mode: number, size: number, created: boolean, hugePage: number];

/**
 * The kernel constants the addon exports by name (MMAN_EXPORT_CONSTANT in native/addon.cc), as
 * the headers it was built with define them; test/flags.test.ts checks this list against the
 * addon, so that a name misspelt here or there is a type error, not `undefined`.
 */
export const CONSTANT_NAMES = [
  'PROT_NONE',
  'PROT_READ',
  'PROT_WRITE',
  'PROT_EXEC',
  'MAP_SHARED',
  'MAP_PRIVATE',
  'MAP_SHARED_VALIDATE',
  'MAP_FIXED',
  'MAP_FIXED_NOREPLACE',
  'MAP_ANONYMOUS',
  'MAP_NORESERVE',
  'MAP_POPULATE',
  'MAP_NONBLOCK',
  'MAP_LOCKED',
  'MAP_STACK',
  'MAP_HUGETLB',
  'MAP_SYNC',
  'MAP_HUGE_SHIFT',
  'MAP_HUGE_2MB',
  'MAP_HUGE_1GB',
  'MADV_NORMAL',
  'MADV_RANDOM',
  'MADV_SEQUENTIAL',
  'MADV_WILLNEED',
  'MADV_DONTNEED',
  'MADV_FREE',
  'MADV_REMOVE',
  'MADV_DONTFORK',
  'MADV_DOFORK',
  'MADV_MERGEABLE',
  'MADV_UNMERGEABLE',
  'MADV_HUGEPAGE',
  'MADV_NOHUGEPAGE',
  'MADV_DONTDUMP',
  'MADV_DODUMP',
  'MADV_WIPEONFORK',
  'MADV_KEEPONFORK',
  'MADV_COLD',
  'MADV_PAGEOUT',
  'MADV_POPULATE_READ',
  'MADV_POPULATE_WRITE',
  'MADV_DONTNEED_LOCKED',
  'MADV_COLLAPSE',
  'MS_ASYNC',
  'MS_INVALIDATE',
  'MS_SYNC',
  'MREMAP_MAYMOVE',
  'MREMAP_FIXED',
  'MREMAP_DONTUNMAP',
  'MLOCK_ONFAULT',
  'MFD_CLOEXEC',
  'MFD_ALLOW_SEALING',
  'F_SEAL_SEAL',
  'F_SEAL_SHRINK',
  'F_SEAL_GROW',
  'F_SEAL_WRITE',
  'F_SEAL_FUTURE_WRITE',
  'MFD_NOEXEC_SEAL',
  'TMPFS_MAGIC',
  'HUGETLBFS_MAGIC',
  'O_PATH',
  'FUTEX_TID_MASK',
  'FUTEX_WAITERS',
  'MUTEX_LIVENESS_MS',
] as const;

/** Exported only where the headers have them: MAP_32BIT on x86-64, MADV_GUARD_* from Linux 6.13. */
export const OPTIONAL_CONSTANT_NAMES = ['MAP_32BIT', 'MADV_GUARD_INSTALL', 'MADV_GUARD_REMOVE'] as const;

/** The addon's constants, by name. */
export type NativeConstants = Readonly<
  Record<(typeof CONSTANT_NAMES)[number], number> & Partial<Record<(typeof OPTIONAL_CONSTANT_NAMES)[number], number>>
>;

export interface NativeAddon {
  readonly pageSize: number;
  readonly constants: NativeConstants;
  /** The answers that are neither a value nor a negative errno (native/answers.h). */
  readonly answers: Readonly<{
    WAIT_OK: number;
    WAIT_NOT_EQUAL: number;
    WAIT_TIMED_OUT: number;
    WAIT_CANCELLED: number;
    MISALIGNED: number;
    MOVED_NOT_GROWN: number;
    MAP_LIMIT: number;
    GUARD_FULL: number;
    GUARD_SLOTS: number;
    MAP_KEEP_FILE: number;
    MAP_GUARD: number;
    MAP_HINT: number;
    MAP_LABEL: number;
    LOCK_ACQUIRED: number;
    LOCK_OWNER_DIED: number;
    LOCK_BUSY: number;
    LOCK_TIMED_OUT: number;
    STOPPING: number;
  }>;
  readonly tools: NativeTools;
  /** 0 if the runtime allows ArrayBuffers over external memory, else the refusing napi_status. */
  readonly externalBuffers: number;
  /** This runtime's structuredClone moves an external buffer's memory into the copy (Deno): probed at load. */
  readonly storesMoveUnseen: boolean;
  /**
   * mmap(2), and the region over the result: its handle, -errno, or answers.MAP_LIMIT (refused
   * near vm.max_map_count, before any syscall). `label` names it in fault messages; `options`
   * is answers.MAP_KEEP_FILE | MAP_GUARD | MAP_HINT (`hint` is given) | MAP_LABEL (`label` is);
   * `granule` the page size it is made of.
   */
  map(
    length: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
    hint: bigint | undefined,
    label: string,
    options: number,
    granule: number,
  ): Handle | number;
  /** What the last count of this process's memory areas saw: [areas, vm.max_map_count, reserve]. */
  mapLimit(): [areas: number, max: number, reserve: number];
  /** Use {@link lend}, which keeps the handle on the buffer as native/lifetime.h requires. */
  buffer(handle: Handle, offset: number, length: number, kept: boolean): Uint8Array<ArrayBuffer>;
  /** Always 0: the range goes back to the kernel once nothing can reach it. */
  unmap(handle: Handle, kept: ArrayBuffer | null, detach: boolean): number;
  /** Called by a buffer's transfer() before its store moves to another ArrayBuffer. */
  noteTransfer(buffer: ArrayBuffer): void;
  /** The buffers made so far stop being the region's (observed on their own, as after a resize). */
  retireBuffers(handle: Handle, kept: ArrayBuffer | null): void;
  /** 0, -errno (nothing changed), or answers.MOVED_NOT_GROWN (ENOMEM after moving; old buffers retired). */
  remap(handle: Handle, newSize: number, flags: number, kept: ArrayBuffer | null): number;
  fixed(
    handle: Handle,
    offset: number,
    length: number,
    prot: number,
    flags: number,
    fd: number,
    fileOffset: number,
  ): number;
  address(handle: Handle): bigint;
  stats(): [regions: number, bytes: number, retiredRegions: number, retiredBytes: number];
  /** Pages the SIGBUS guard replaced with zero pages in the region, of either kind. */
  guardFaults(handle: Handle): number;
  /** [pages past the end of the file, pages inside it not backed, their first file offset, end, errno]. */
  guardReport(handle: Handle): [truncated: number, lost: number, lostFirst: number, lostEnd: number, lostErrno: number];
  /** Puts the guard's SIGBUS/SIGSEGV handlers back in front of any installed since, chaining to it. */
  guardReinstall(): void;
  protect(handle: Handle, offset: number, length: number, prot: number): number;
  advise(handle: Handle, offset: number, length: number, advice: number): number;
  sync(handle: Handle, offset: number, length: number, flags: number): number;
  flush(handle: Handle, offset: number, length: number, flags: number): Promise<number>;
  lock(handle: Handle, offset: number, length: number, flags: number): number;
  unlock(handle: Handle, offset: number, length: number): number;
  residency(handle: Handle, offset: number, length: number, out: Uint8Array): number;
  /** MADV_POPULATE_READ/WRITE (or a page touch) on the threadpool: 0 or -errno. */
  populate(handle: Handle, offset: number, length: number, write: boolean): Promise<number>;
  /** prctl(PR_SET_VMA_ANON_NAME) over the range; null removes the name. 0 or -errno. */
  name(handle: Handle, offset: number, length: number, name: string | null): number;
  /** The descriptor a file mapping keeps (still the region's) and the file offset of its first page, or -EBADF. */
  regionFile(handle: Handle): [fd: number, fileOffset: number] | number;
  /** A close-on-exec duplicate of `fd` put aside for another thread for `ttlMs`: its id, or -errno. */
  shareFd(fd: number, ttlMs: number): string | number;
  /** The descriptor put aside under `id`, now the caller's; -ENOENT if taken already or expired. */
  takeFd(id: string): number;
  /** Closes the expired descriptors put aside; how many still wait. */
  sweepShared(): number;
  /** The AF_* domain of socket `fd`, or -errno (-ENOTSOCK). */
  socketDomain(fd: number): number;
  /**
   * sendmsg of `payload` with a duplicate of `fd` attached (SCM_RIGHTS), on a thread of its own:
   * 0 or -errno (-ECANCELED after cancelJob(id)); {@link NotStarted} if the job cannot start.
   */
  sendFd(socket: number, fd: number, payload: string, timeoutMs: number): StartedJob<number> | NotStarted;
  /**
   * recvmsg of one message and the descriptor it carries, on a thread of its own: [fd, payload,
   * the peer's uid] or -errno (-ECANCELED after cancelJob(id)); {@link NotStarted} if the job
   * cannot start.
   */
  recvFd(socket: number, timeoutMs: number): StartedJob<[fd: number, payload: string, peerUid: number]> | NotStarted;
  /** Ends a pending sendFd/recvFd with -ECANCELED (its socket was closed in JavaScript); whether it was pending. */
  cancelJob(id: number): boolean;
  memfdCreate(name: string, flags: number): number;
  addSeals(fd: number, seals: number): number;
  getSeals(fd: number): number;
  setCloexec(fd: number, on: boolean): number;
  /**
   * open(2) with O_CLOEXEC | O_NONBLOCK | O_NOCTTY (never waits on a FIFO or a device), then
   * fstat(2): [fd, st_mode, st_size, whether this call created the file, the huge page size of a
   * hugetlbfs file or 0], or -errno.
   */
  openFile(path: string | Buffer, flags: number, mode: number): OpenedFile | number;
  /** The same on the threadpool. */
  openFileAsync(path: string | Buffer, flags: number, mode: number): Promise<OpenedFile | number>;
  /** fallocate(2) mode 0 over [offset, offset + length): 0 or -errno (-EOPNOTSUPP: cannot reserve here). */
  fdAllocate(fd: number, offset: number, length: number): number;
  /** fstat(2): [st_mode, st_size, the huge page size of a hugetlbfs file or 0], or -errno. */
  fdStat(fd: number): [mode: number, size: number, hugePage: number] | number;
  /** What the kernel says of a descriptor: [st_mode, F_GETFL flags, its filesystem's f_type, owner uid], or -errno. */
  describeFd(fd: number): [mode: number, flags: number, fsType: number, uid: number] | number;
  /** True if `path` (a symlink not followed) is the very file `fd` is: same device and inode. */
  isFileAt(fd: number, path: string): boolean;
  fdTruncate(fd: number, size: number): number;
  fdChmod(fd: number, mode: number): number;
  /** close(2), and the calling thread owns `fd` no more: 0 or -errno. */
  fdClose(fd: number): number;
  /**
   * The calling thread owns `fd` (a descriptor SharedMemory.fromFd() was given): closed with
   * the thread unless fdClose() comes first. Those the addon opens, creates, receives or takes
   * are owned from the start.
   */
  ownFd(fd: number): void;
  /** Whether the calling thread owns `fd` already (a SharedMemory of its, or one the addon handed out). */
  ownsFd(fd: number): boolean;
  /** answers.WAIT_OK / WAIT_NOT_EQUAL / WAIT_TIMED_OUT, -errno, MISALIGNED, or STOPPING (a worker being terminated). */
  wait(
    handle: Handle,
    buffer: ArrayBuffer,
    byteOffset: number,
    expected: number,
    timeoutMs: number,
    spin: number,
    waitersOffset: number,
  ): number;
  notify(handle: Handle, buffer: ArrayBuffer, byteOffset: number, count: number, waitersOffset: number): number;
  waitAsyncStart(
    handle: Handle,
    buffer: ArrayBuffer,
    byteOffset: number,
    expected: number,
    timeoutMs: number,
    waitersOffset: number,
    callback: (result: number) => void,
  ): number;
  waitAsyncCancel(id: number): boolean;
  /**
   * answers.LOCK_ACQUIRED / LOCK_OWNER_DIED / LOCK_TIMED_OUT, -EDEADLK, -errno, MISALIGNED, or
   * STOPPING (a worker being terminated).
   */
  mutexLock(handle: Handle, buffer: ArrayBuffer, byteOffset: number, timeoutMs: number, spin: number): number;
  /** One attempt, the holder looked at: LOCK_ACQUIRED / LOCK_OWNER_DIED / LOCK_BUSY, -EDEADLK, or MISALIGNED. */
  mutexTryLock(handle: Handle, buffer: ArrayBuffer, byteOffset: number, contended: boolean): number;
  /** 0, -EPERM (not held by this thread), or MISALIGNED. */
  mutexUnlock(handle: Handle, buffer: ArrayBuffer, byteOffset: number): number;
  /** gettid() of the calling thread. */
  threadId(): number;
  /** True when thread `tid` no longer exists (or is a zombie): the liveness check of mutexLock. */
  threadGone(tid: number): boolean;
}

/**
 * The functions the addon registers (exports.Set in native/*.cc): every function member of
 * {@link NativeAddon}, no more and no fewer. The compiler checks this list against the
 * interface (below); test/flags.test.ts checks it against the addon.
 */
export const NATIVE_FUNCTIONS = [
  'addSeals',
  'address',
  'advise',
  'buffer',
  'cancelJob',
  'describeFd',
  'fdAllocate',
  'fdChmod',
  'fdClose',
  'fdStat',
  'fdTruncate',
  'fixed',
  'flush',
  'getSeals',
  'guardFaults',
  'guardReinstall',
  'guardReport',
  'isFileAt',
  'lock',
  'map',
  'mapLimit',
  'memfdCreate',
  'mutexLock',
  'mutexTryLock',
  'mutexUnlock',
  'name',
  'noteTransfer',
  'notify',
  'openFile',
  'openFileAsync',
  'ownFd',
  'ownsFd',
  'populate',
  'protect',
  'recvFd',
  'regionFile',
  'remap',
  'residency',
  'retireBuffers',
  'sendFd',
  'setCloexec',
  'shareFd',
  'socketDomain',
  'stats',
  'sweepShared',
  'sync',
  'takeFd',
  'threadGone',
  'threadId',
  'unlock',
  'unmap',
  'wait',
  'waitAsyncCancel',
  'waitAsyncStart',
] as const satisfies readonly (keyof NativeAddon)[];

// Every function of NativeAddon is in NATIVE_FUNCTIONS: else this line does not compile.
type FunctionKeys<T> = {
  [K in keyof T]-?: T[K] extends ((...args: never[]) => unknown) | undefined ? K : never;
}[keyof T];
const everyFunctionListed: Exclude<FunctionKeys<NativeAddon>, (typeof NATIVE_FUNCTIONS)[number]> extends never
  ? true
  : never = true;
void everyFunctionListed;

/** A job on a thread of its own (native/jobs.h): its promise, and its id for cancelJob(). */
export interface StartedJob<T> {
  promise: Promise<T | number>;
  id: number;
}

/**
 * What a call answers instead of a {@link StartedJob} when the job cannot start: -errno and the
 * system call that failed (`'fcntl'` duplicating a descriptor, `'eventfd'`, `'pthread_create'`).
 */
export type NotStarted = [errno: number, syscall: string];

// build/Release (a source build) first, then prebuilds/linux-<cpu>/mman.<libc>.node; MMAN_ADDON
// points at another build of the same sources (the sanitizer build, say). See src/load.ts.
export const native = loadAddon(join(__dirname, '..')) as NativeAddon;

// A process.on('SIGBUS' | 'SIGSEGV') listener added or removed after the guard's handlers were
// installed replaces them (libuv installs its own, or the default action): the guard then
// survives no truncation and names no read-only write. Node starts and stops the signal in its
// own 'newListener'/'removeListener' listeners, registered at startup, so these run after it.
for (const event of ['newListener', 'removeListener'] as const) {
  process.on(event, (name: string | symbol) => {
    if (name === 'SIGBUS' || name === 'SIGSEGV') native.guardReinstall();
  });
}
