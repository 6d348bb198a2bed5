// class Mapping: one mapped region, and every call on it. Policy lives here (defaults,
// validation, page arithmetic); native/ only makes the calls. The ways one is made are in
// src/map.ts, the file helpers they share with resize() and SharedMemory in src/files.ts.
import { readFileSync } from 'node:fs';
import { Buffer, constants as bufferConstants } from 'node:buffer';
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

import { native, type Handle } from './native';
import { sizeFile, statFd } from './files';
import { mapFile } from './map';
import { IMMUTABLE, lend } from './buffers';
import { memoryOf, type MappingMemory } from './smaps';
import { putAside, shareTimeout, takeAside, type ShareOptions, type SharedDescriptorBase } from './descriptors';
import { Advice, LockFlags, MapFlags, Prot, RemapFlags, SyncFlags } from './flags';
import {
  abortError,
  illegalConstructor,
  invalidArgType,
  invalidArgValue,
  mappingClosed,
  mappingInaccessible,
  mappingReadOnly,
  mmanError,
  outOfRange,
  systemError,
  validateBoolean,
  validateInt32,
  validateInteger,
  validateOptions,
  validateAbortSignal,
} from './errors';

/** The size of a page on this machine, from `sysconf(_SC_PAGESIZE)`: 4096 on x86-64; 4, 16 or 64 KiB on arm64. */
export const PAGE_SIZE: number = native.pageSize;

/**
 * The largest ArrayBuffer this Node can make: 4 GiB on Node 20, 2^53 - 1 on Node 22+. Longer
 * mappings are read through {@link Mapping.view}.
 */
export const MAX_BUFFER_LENGTH: number = bufferConstants.MAX_LENGTH;

// residency() answers one byte per page in one Uint8Array: at most 2^32 of them (4 GiB).
const RESIDENCY_MAX_PAGES = Math.min(MAX_BUFFER_LENGTH, 2 ** 32);

// The largest length we accept anywhere: page-rounding it must stay a safe integer.
/** @internal */
export const MAX_LENGTH = Number.MAX_SAFE_INTEGER - 2 ** 30;

const PROT_BITS = Prot.Read | Prot.Write | Prot.Exec;
const MAP_TYPE_BITS = 0x03;
const MAP_HUGE_BITS = 0x3f << 26;
const MAP_KNOWN_BITS =
  MAP_TYPE_BITS |
  MapFlags.Anonymous |
  MapFlags.NoReserve |
  MapFlags.Populate |
  MapFlags.NonBlock |
  MapFlags.Locked |
  MapFlags.Stack |
  MapFlags.HugeTLB |
  MapFlags.Sync |
  MapFlags.FixedNoReplace |
  MAP_HUGE_BITS |
  (native.constants.MAP_32BIT ?? 0);
/** @internal */
export const ADVICE_VALUES: ReadonlySet<number> = new Set(
  Object.values(Advice).filter((v): v is number => typeof v === 'number'),
);

/** @internal */
export const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;
/** @internal */
export const roundDown = (n: number, to: number): number => Math.floor(n / to) * to;

let defaultHugePageSize: number | undefined;

/** The kernel's default huge page size (`Hugepagesize` in /proc/meminfo), read once. */
export function defaultHugePage(): number {
  if (defaultHugePageSize === undefined) {
    const match = /^Hugepagesize:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'latin1'));
    defaultHugePageSize = match ? Number(match[1]) * 1024 : 2 * 1024 * 1024;
  }
  return defaultHugePageSize;
}

/** What this process holds mapped through mman right now, in every thread. */
export interface MappingStats {
  /** Ranges held in the kernel: those of open mappings, and the retired ones below. */
  regions: number;
  /** Their bytes, in whole pages. */
  bytes: number;
  /**
   * Of those, ranges retired: unmapped (or moved away from by `resize()`), closed to
   * JavaScript, and kept mapped only because a buffer over them may still be in use (by
   * Node's own asynchronous I/O, say) until the garbage collector shows it is not.
   */
  retiredRegions: number;
  /** Their bytes. */
  retiredBytes: number;
}

/**
 * Counts the ranges this process holds through mman, for leak checks. It first releases
 * the retired ranges whose buffers the garbage collector has found unreachable, so it
 * returns to its baseline once every Mapping is unmapped and a collection has run.
 */
export function mappingStats(): MappingStats {
  const [regions, bytes, retiredRegions, retiredBytes] = native.stats();
  return { regions, bytes, retiredRegions, retiredBytes };
}

/** Options for {@link Mapping.sync}. */
export interface SyncOptions {
  /** `MS_ASYNC` instead of `MS_SYNC`: return at once. Default `false`. */
  async?: boolean;
  /** Add `MS_INVALIDATE`. Default `false`. */
  invalidate?: boolean;
  /** First byte to sync, relative to the mapping. Default 0. */
  offset?: number;
  /** Bytes to sync. Default: to the end of the mapping. */
  length?: number;
}

/** Options for {@link Mapping.flush}. */
export type FlushOptions = Omit<SyncOptions, 'async'>;

/** Options for {@link Mapping.resize}. */
export interface ResizeOptions {
  /** Let the kernel move the mapping when it cannot grow in place (`MREMAP_MAYMOVE`). Default `true`. */
  mayMove?: boolean;
  /**
   * For a writable shared file mapping (`'r+'`, `'w+'`) that keeps its file's descriptor
   * (`keepFile`, `create`, `'w+'`): first extend the file to hold the new length, when it is
   * shorter, so the new pages are the file's and never SIGBUS. The new blocks are reserved
   * (fallocate(2)) unless the mapping was made `sparse`, so a full filesystem is `ENOSPC`
   * here and the file keeps its size. The file is never shrunk. Default `false`.
   */
  growFile?: boolean;
}

/** Options for {@link Mapping.populate}. */
export interface PopulateOptions {
  /** First byte, relative to the mapping. Default 0. */
  offset?: number;
  /** Bytes. Default: to the end of the mapping. */
  length?: number;
  /**
   * Fault the pages in writable (`MADV_POPULATE_WRITE`), for memory about to be written: a
   * private mapping's pages are copied now, and a shared file mapping's are marked dirty (so
   * they are written back). Default `false`: readable (`MADV_POPULATE_READ`).
   */
  write?: boolean;
  /** Aborting it rejects with an `AbortError` after the chunk under way. */
  signal?: AbortSignal;
}

// populate() works in chunks of this many bytes: no threadpool thread is held longer than
// one chunk takes (a few ms from a disk, well under one from the page cache).
const POPULATE_CHUNK = 8 * 1024 * 1024;

/** What {@link Mapping.share} returns: structured-cloneable, for {@link Mapping.from} in another thread. */
export interface MappingDescriptor extends SharedDescriptorBase {
  readonly type: 'mman.Mapping';
  /** Where the mapping starts in the file, in bytes. */
  readonly offset: number;
  /** Bytes the mapping exposes, as the original's {@link Mapping.length}. */
  readonly length: number;
  /** The original could write (`Prot.Write`): so can the mapping made of it. */
  readonly writable: boolean;
  /** The original was guarded (`guard: true`): so is the mapping made of it. */
  readonly guard: boolean;
}

/** Options for {@link Mapping.unmap}. */
export interface UnmapOptions {
  /**
   * Also detach every view made so far, at once: afterwards they have length 0 and reads
   * give `undefined`, which makes a use after unmap() show. **Only when no view is still in
   * the hands of an asynchronous Node API**: Node's zlib reads the view again for each
   * chunk and aborts the process on a detached one (`Assertion failed:
   * Buffer::IsWithinBounds`), and a stream that has queued a view (a socket under
   * backpressure, a file stream not yet open) writes nothing and never finishes. The pages
   * themselves still stay mapped until the views are collected. Default `false`.
   */
  detachViews?: boolean;
}

/** Options for {@link Mapping.lock}. */
export interface LockOptions {
  /** `mlock2(MLOCK_ONFAULT)`: lock pages as they are faulted in instead of populating all now. Default `false`. */
  onFault?: boolean;
}

// What Mapping.make() passes the constructor: a `new Mapping()` from JavaScript is refused.
const CONSTRUCT = Symbol('Mapping.construct');

// What a Mapping is made of: the region, where the exposed window starts in it and how long it
// is, the size mapped, the page granule, the flags and protection, and what it keeps of its file.
type MappingParts = [
  handle: Handle,
  delta: number,
  length: number,
  size: number,
  granule: number,
  flags: number,
  prot: number,
  file: FileKept,
];

// native.remap(): the region moved to grow, then could not (ENOMEM); its old buffers are retired.
const { MOVED_NOT_GROWN } = native.answers;

/**
 * The symbol `using` disposes through: `Symbol.dispose`, which Node 20 defines as
 * `Symbol.for('nodejs.dispose')` (and a vm realm may lack). Public: the declarations of
 * the public classes name it.
 */
export const dispose: typeof Symbol.dispose = Symbol.dispose ?? Symbol.for('nodejs.dispose');

// Checks a Mapping for the other modules of this package (futex, mutex, ring).
let checkHandle: (mapping: Mapping, writer: string | undefined) => Handle;

/**
 * @internal The native handle of a mapping still fit for use, checked on every call that
 * touches its memory: ERR_MAPPING_CLOSED after unmap(); for a guarded mapping, what its guard
 * saw (ERR_MAPPING_TRUNCATED, ERR_MAPPING_PAGE_LOST: a lock or a ring over zero pages is
 * shared with no one); ERR_MAPPING_INACCESSIBLE once protect() took the read permission
 * away; and, when `writer` names what is about to write, ERR_MAPPING_READ_ONLY once it took
 * the write permission away.
 */
export function handleOf(mapping: Mapping, writer?: string): Handle {
  return checkHandle(mapping, writer);
}

/**
 * One region of memory mapped with mmap(2), and the one `ArrayBuffer` over it.
 *
 * Views made from {@link Mapping.buffer} read and write the mapped pages directly: no
 * copies. After {@link Mapping.unmap} (or `using`) every method throws
 * `ERR_MAPPING_CLOSED`; the pages go back to the kernel once no buffer or view over them is
 * alive, so an operation still using a view never loses them. A mapping that is dropped
 * without `unmap()` is unmapped once it and every buffer over it are garbage collected.
 *
 * Reading a page of a file mapping that lies past the end of the file (because the file
 * is shorter than the mapping, or was truncated by another process) raises SIGBUS, which
 * kills the process.
 */
export class Mapping implements Disposable {
  #handle: Handle | null;
  #delta: number; // where the exposed window starts inside the mapped pages
  #length: number; // bytes exposed
  #granule: number; // PAGE_SIZE, or the huge page size for MAP_HUGETLB
  #flags: number;
  #guarded: boolean; // its SIGBUS faults are survived (mapFile's options.guard)
  #keepsFile: boolean; // the addon keeps a descriptor of its file (options.keepFile)
  #sparse: boolean; // made with options.sparse: growFile extends without reserving either
  #fileStart: number; // the file offset of the first exposed byte (file mappings)
  #growable: number; // how far resize() may grow: a shared anonymous mapping's original size
  #name: string | undefined; // its anonymous memory's name (mapAnonymous's options.name)
  #prot: number; // its protection, as last set over the whole mapping
  #buffer: ArrayBuffer | null = null;
  #bytes: Buffer | null = null;

  static {
    checkHandle = (mapping, writer) => {
      const handle = mapping.#open();
      if ((mapping.#prot & Prot.Read) === 0) throw mappingInaccessible();
      if (writer !== undefined && (mapping.#prot & Prot.Write) === 0) throw mappingReadOnly(writer);
      return handle;
    };
  }

  /**
   * @internal A Mapping over the region `handle` (made by create() in src/map.ts, for
   * {@link mmap}, {@link mapFile} and {@link mapAnonymous}: no one else makes one).
   */
  static make(...parts: MappingParts): Mapping {
    return new Mapping(CONSTRUCT, ...parts);
  }

  // Private: the type checker refuses `new Mapping()`; the token refuses it from JavaScript.
  private constructor(
    token: typeof CONSTRUCT,
    ...[handle, delta, length, size, granule, flags, prot, file]: MappingParts
  ) {
    if (token !== CONSTRUCT) throw illegalConstructor('mmap(), mapFile() or mapAnonymous()');
    this.#guarded = file.guard;
    this.#keepsFile = file.keepFile || file.guard; // a guarded one's fault-table entry keeps one
    this.#sparse = file.sparse === true;
    this.#fileStart = file.start;
    this.#handle = handle;
    this.#delta = delta;
    this.#length = length;
    this.#granule = granule;
    this.#flags = flags;
    this.#prot = prot;
    const sharedAnonymous = (flags & MapFlags.Anonymous) !== 0 && (flags & MAP_TYPE_BITS) !== MapFlags.Private;
    this.#growable = sharedAnonymous ? size : Infinity;
  }

  #open(): Handle {
    const handle = this.#handle;
    if (handle === null) throw mappingClosed();
    if (this.#guarded && native.guardFaults(handle) !== 0) throw this.#faultError(handle);
    return handle;
  }

  // What the guard did, as the error every later call throws: pages that could not be backed
  // (writes lost) first, since they are the worse news; else pages past the end of the file.
  #faultError(handle: Handle): Error {
    const [truncated, lost, lostFirst, lostEnd, lostErrno] = native.guardReport(handle);
    if (lost === 0) {
      return mmanError('ERR_MAPPING_TRUNCATED', truncated);
    }
    const [reason, description] = getSystemErrorMap().get(-lostErrno) ?? ['EIO', 'i/o error'];
    const offset = Math.max(0, lostFirst - this.#fileStart);
    const end = Math.max(offset, Math.min(this.#length, lostEnd - this.#fileStart));
    return Object.assign(mmanError('ERR_MAPPING_PAGE_LOST', lost, reason, description, offset, end, truncated), {
      reason,
      offset,
      length: end - offset,
      pages: lost,
    });
  }

  /**
   * For a mapping made with `guard: true`: true once a read or write hit a page past the end
   * of the file (truncated under the mapping) and the guard put a zero page there.
   */
  get truncated(): boolean {
    return this.truncatedPages !== 0;
  }

  /**
   * For a mapping made with `guard: true`: how many pages past the end of the file the guard
   * replaced with zero pages.
   */
  get truncatedPages(): number {
    return this.#guarded && this.#handle !== null ? native.guardReport(this.#handle)[0] : 0;
  }

  /**
   * For a mapping made with `guard: true`: how many pages inside the file could not be backed
   * (its filesystem full, or failing) and were replaced with zero pages. Writes to them are
   * lost; every later call throws `ERR_MAPPING_PAGE_LOST`, which says where and why.
   */
  get lostPages(): number {
    return this.#guarded && this.#handle !== null ? native.guardReport(this.#handle)[1] : 0;
  }

  /** True for a mapping made with `guard: true` (its SIGBUS faults are survived). */
  get guarded(): boolean {
    return this.#guarded;
  }

  /**
   * True while the whole mapping is writable (`Prot.Write`, as mapped or as last set by
   * {@link Mapping.protect} over all of it). A write through a view of a mapping that is not
   * kills the process with SIGSEGV (after a line on stderr naming the mapping); the APIs that
   * write ({@link Mutex}, {@link RingBuffer}, a waiter count) refuse it with
   * `ERR_MAPPING_READ_ONLY`.
   */
  get writable(): boolean {
    return this.#handle !== null && (this.#prot & Prot.Write) !== 0;
  }

  // The one bounds check: [offset, offset + length) inside the exposed window, overflow-safe.
  #range(offset: unknown, length: unknown): [number, number] {
    const off = offset === undefined ? 0 : validateInteger(offset, 'offset', 0, this.#length);
    const len = length === undefined ? this.#length - off : validateInteger(length, 'length', 0, this.#length - off);
    return [off, len];
  }

  // The whole pages that [offset, offset + length) touches, relative to the mapped pages.
  #pages(offset: unknown, length: unknown): [number, number] {
    const [off, len] = this.#range(offset, length);
    if (len === 0) return [0, 0];
    const start = roundDown(this.#delta + off, PAGE_SIZE);
    return [start, roundUp(this.#delta + off + len, PAGE_SIZE) - start];
  }

  /**
   * The ArrayBuffer over the whole mapping. Made once (on first use) and kept until
   * `unmap()` or `resize()`, after which it belongs to whoever still holds it (the old
   * extent stays mapped for it until it is collected). Moved away with `transfer()` (Node 22+),
   * it is made again over the same pages at the next use. A mapping longer than
   * {@link MAX_BUFFER_LENGTH} (4 GiB on Node 20) has none: use {@link Mapping.view}.
   */
  get buffer(): ArrayBuffer {
    const handle = this.#open();
    // Moved away (`transfer()`) or detached by someone: the pages are still this mapping's, so
    // a new buffer is made over them; the old one is watched as a resize() leaves it.
    if (this.#buffer !== null && this.#buffer.byteLength === 0) this.#letBufferGo(handle);
    if (this.#buffer === null) {
      if (this.#length > MAX_BUFFER_LENGTH) {
        throw outOfRange(
          'length',
          `<= ${MAX_BUFFER_LENGTH} for one ArrayBuffer on this Node; use mapping.view(offset, length) windows`,
          this.#length,
        );
      }
      // Kept: held here until unmap()/resize() hand it back to the addon.
      this.#bytes = lend(this, handle, this.#delta, this.#length, true, (this.#prot & Prot.Write) === 0);
      this.#buffer = this.#bytes.buffer as ArrayBuffer;
    }
    return this.#buffer;
  }

  /**
   * A `Buffer` over {@link Mapping.buffer}, made once: the mapping's own memory, no copy. A
   * `Buffer` is a `Uint8Array`, so it goes to any API that takes either (`res.end()`,
   * `socket.write()`, a parser that insists on a `Buffer`).
   */
  get bytes(): Buffer {
    if (this.#guarded) this.#open(); // a truncated guarded mapping reports it here too
    if (this.#bytes === null || this.#bytes.byteLength === 0) void this.buffer; // makes both
    return this.#bytes as Buffer;
  }

  /** Bytes exposed: what was asked for (the kernel maps whole pages around it). 0 once unmapped. */
  get length(): number {
    return this.#handle === null ? 0 : this.#length;
  }

  /** The address of the first exposed byte. */
  get address(): bigint {
    return native.address(this.#open()) + BigInt(this.#delta);
  }

  /** True for a `MAP_SHARED` mapping: its writes are seen by every process mapping the same memory. */
  get shared(): boolean {
    return (this.#flags & MAP_TYPE_BITS) !== MapFlags.Private;
  }

  /** The flags it was mapped with (`MapFlags`). */
  get flags(): MapFlags {
    return this.#flags;
  }

  /**
   * The name its anonymous memory shows under in `/proc/<pid>/maps` (`mapAnonymous`'s
   * `options.name`), or `undefined`: none was asked for, or the kernel cannot name memory.
   */
  get name(): string | undefined {
    return this.#name;
  }

  /** @internal True when the exposed window starts 4-byte aligned in memory (futex words). */
  get wordAligned(): boolean {
    return this.#delta % 4 === 0;
  }

  /** True once {@link Mapping.unmap} has run. */
  get closed(): boolean {
    return this.#handle === null;
  }

  /**
   * A `Buffer` over `[offset, offset + length)`: a view of {@link Mapping.buffer}, or, for a
   * mapping too long for one ArrayBuffer, a window of its own. No copy.
   */
  view(offset: number, length?: number): Buffer {
    const handle = this.#open();
    const [off, len] = this.#range(offset, length);
    if (this.#length <= MAX_BUFFER_LENGTH) return Buffer.from(this.buffer, off, len);
    if (len > MAX_BUFFER_LENGTH) {
      throw outOfRange('length', `<= ${MAX_BUFFER_LENGTH} for one window on this Node`, len);
    }
    return lend(this, handle, this.#delta + off, len, false, (this.#prot & Prot.Write) === 0);
  }

  /**
   * Changes the protection of the pages that `[offset, offset + length)` touches
   * (mprotect(2)). A write to a page without `Prot.Write` raises SIGSEGV.
   */
  protect(prot: Prot, offset?: number, length?: number): void {
    const handle = this.#open();
    validateProt(prot);
    const [start, len] = this.#pages(offset, length);
    if (len === 0) return;
    const rc = native.protect(handle, start, len, prot);
    if (rc < 0) throw callError(rc, 'mprotect');
    this.#noteProtection(handle, start, len, prot);
  }

  // The mapped pages [start, start + len) have protection `prot` now (protect(), mapFixed()).
  #noteProtection(handle: Handle, start: number, len: number, prot: number): void {
    const wasWritable = (this.#prot & Prot.Write) !== 0;
    if (start === 0 && len >= this.#mappedSize()) this.#prot = prot;
    else this.#prot &= prot | Prot.Exec; // a part read-only (or unreadable): not writable (readable) as a whole
    // Made writable as a whole: a buffer handed out while it was not may be immutable (where
    // the runtime has them); the next `buffer` is a new, writable one.
    if (!wasWritable && (this.#prot & Prot.Write) !== 0 && this.#buffer !== null && IMMUTABLE)
      this.#letBufferGo(handle);
  }

  // The buffer made so far stops being the one `buffer` and `bytes` return (the addon watches
  // it on its own, as after a resize); the next use makes a new one.
  #letBufferGo(handle: Handle): void {
    native.retireBuffers(handle, this.#buffer);
    this.#buffer = null;
    this.#bytes = null;
  }

  /** Gives the kernel advice about the pages that `[offset, offset + length)` touches (madvise(2)). */
  advise(advice: Advice, offset?: number, length?: number): void {
    const handle = this.#open();
    if (typeof advice !== 'number') throw invalidArgType('advice', 'of type number (an Advice)', advice);
    if (!ADVICE_VALUES.has(advice)) throw invalidArgValue('advice', advice, 'must be a member of Advice');
    const [start, len] = this.#pages(offset, length);
    if (len === 0) return;
    const rc = native.advise(handle, start, len, advice);
    if (rc < 0) throw callError(rc, 'madvise');
  }

  /**
   * Writes dirty pages of a shared file mapping back to the file (msync(2)): `MS_SYNC`
   * (waits) unless `async` is set. Blocks the event loop; {@link Mapping.flush} does not.
   */
  sync(options?: SyncOptions): void {
    this.#open();
    const opts = validateOptions<SyncOptions>(options);
    const flags =
      (validateBoolean(opts.async, 'options.async') ? SyncFlags.Async : SyncFlags.Sync) |
      (validateBoolean(opts.invalidate, 'options.invalidate') ? SyncFlags.Invalidate : 0);
    const [start, len] = this.#pages(opts.offset, opts.length);
    const handle = this.#open(); // again: reading the options ran the caller's getters
    if (len === 0) return;
    const rc = native.sync(handle, start, len, flags);
    if (rc < 0) throw systemError(rc, 'msync');
  }

  /** `msync(MS_SYNC)` on the libuv threadpool: resolves once the pages are on disk. */
  async flush(options?: FlushOptions): Promise<void> {
    this.#open();
    const opts = validateOptions<FlushOptions>(options);
    const flags = SyncFlags.Sync | (validateBoolean(opts.invalidate, 'options.invalidate') ? SyncFlags.Invalidate : 0);
    const [start, len] = this.#pages(opts.offset, opts.length);
    const handle = this.#open(); // again: reading the options ran the caller's getters
    if (len === 0) return;
    const rc = await native.flush(handle, start, len, flags);
    if (rc < 0) throw systemError(rc, 'msync');
  }

  /**
   * Locks the pages that `[offset, offset + length)` touches into RAM (mlock(2), or
   * mlock2(2) with `onFault`). Bounded by `RLIMIT_MEMLOCK` unless privileged: `EPERM`/`ENOMEM` past it.
   */
  lock(offset?: number, length?: number, options?: LockOptions): void {
    this.#open();
    const opts = validateOptions<LockOptions>(options);
    const flags = validateBoolean(opts.onFault, 'options.onFault') ? LockFlags.OnFault : 0;
    const [start, len] = this.#pages(offset, length);
    const handle = this.#open(); // again: reading the options ran the caller's getters
    if (len === 0) return;
    const rc = native.lock(handle, start, len, flags);
    if (rc < 0) throw callError(rc, flags === 0 ? 'mlock' : 'mlock2');
  }

  /** Unlocks the pages that `[offset, offset + length)` touches (munlock(2)). */
  unlock(offset?: number, length?: number): void {
    const handle = this.#open();
    const [start, len] = this.#pages(offset, length);
    if (len === 0) return;
    const rc = native.unlock(handle, start, len);
    if (rc < 0) throw callError(rc, 'munlock');
  }

  /**
   * Which pages that `[offset, offset + length)` touches are resident in RAM (mincore(2)):
   * one byte per page, bit 0 set when resident.
   */
  residency(offset?: number, length?: number): Uint8Array {
    const handle = this.#open();
    const [start, len] = this.#pages(offset, length);
    if (len / PAGE_SIZE > RESIDENCY_MAX_PAGES)
      throw outOfRange(
        'length',
        `at most ${RESIDENCY_MAX_PAGES} pages at once (one byte each, in one Uint8Array): ask for a part with offset and length`,
        length,
      );
    const out = new Uint8Array(len / PAGE_SIZE);
    if (len === 0) return out;
    const rc = native.residency(handle, start, len, out);
    if (rc < 0) throw systemError(rc, 'mincore');
    return out;
  }

  /**
   * Grows or shrinks the mapping to `newLength` bytes (mremap(2)), keeping its contents.
   * Take a fresh {@link Mapping.buffer} after it: the old one and its views keep the old
   * extent (the same pages when it grew in place or is shared, a copy otherwise).
   * Growing a file mapping past the end of the file makes those pages SIGBUS on access.
   *
   * The old pages are never pulled from under an operation that may still use them (a
   * socket write of an old view, say): while a buffer over them may be alive, shrinking
   * leaves the cut-off tail mapped until it is collected, and a mapping that must move to
   * grow is mapped a second time at the new address (shared), or made anew with a copy of
   * the pages it wrote (private; a private file mapping keeps a duplicate of the file's
   * descriptor until it is unmapped, to map the file again). So a private mapping that
   * cannot grow in place costs a pass over its pages unless no buffer over it was ever
   * made. See docs/ARCHITECTURE.md.
   */
  resize(newLength: number, options?: ResizeOptions): void {
    this.#open();
    validateInteger(newLength, 'newLength', 1, MAX_LENGTH);
    const opts = validateOptions<ResizeOptions>(options);
    const mayMove = validateBoolean(opts.mayMove, 'options.mayMove', true);
    const growFile = validateBoolean(opts.growFile, 'options.growFile');
    const handle = this.#open(); // again: reading the options ran the caller's getters
    const newSize = roundUp(this.#delta + newLength, this.#granule);
    if (newSize > this.#growable) {
      throw outOfRange(
        'newLength',
        `<= ${this.#growable - this.#delta}: a shared anonymous mapping's memory is sized at mmap time, and pages past it raise SIGBUS`,
        newLength,
      );
    }
    if (growFile) {
      if ((this.#flags & MapFlags.Anonymous) !== 0 || !this.shared || (this.#prot & Prot.Write) === 0)
        throw invalidArgValue('options.growFile', true, 'is only for a writable shared file mapping');
      if (!this.#keepsFile)
        throw invalidArgValue(
          'options.growFile',
          true,
          "needs the file's descriptor, which this mapping does not keep: map it with { keepFile: true } (create: true and mode 'w+' keep it)",
        );
      // The file holds at least the new window; new blocks are reserved unless it was made
      // sparse, so that a full filesystem is ENOSPC here rather than SIGBUS at a later write.
      const file = native.regionFile(handle);
      if (typeof file === 'number') throw systemError(file, 'ftruncate');
      const [fd, fileOffset] = file;
      const { isFile, size } = statFd(fd);
      const wanted = fileOffset + this.#delta + newLength;
      if (isFile && size < wanted) sizeFile(fd, size, wanted, this.#sparse);
    }
    const rc = native.remap(handle, newSize, mayMove ? RemapFlags.MayMove : 0, this.#buffer);
    if (rc < 0) throw systemError(rc, 'mremap');
    this.#buffer = null;
    this.#bytes = null;
    if (rc !== MOVED_NOT_GROWN) this.#length = newLength;
    if (this.#name !== undefined) native.name(handle, 0, this.#mappedSize(), this.#name); // a copy is unnamed
    if (rc === MOVED_NOT_GROWN) throw systemError(-osConstants.errno.ENOMEM, 'mremap');
  }

  // Bytes of the mapped pages: the exposed window and the page (or huge page) ends around it.
  #mappedSize(): number {
    return roundUp(this.#delta + this.#length, this.#granule);
  }

  /** @internal Names its anonymous memory (mapAnonymous's options.name); 0 or -errno. */
  nameAnonymous(name: string): number {
    const rc = native.name(this.#open(), 0, this.#mappedSize(), name);
    if (rc === MAP_LIMIT) throw mapLimitError();
    if (rc === 0) this.#name = name;
    return rc;
  }

  /**
   * Makes the pages that `[offset, offset + length)` touches resident, off the event loop,
   * and resolves once they are, so that later reads from JavaScript (writes, with
   * `options.write`) find them mapped and never stop the thread for a disk read.
   *
   * madvise(2) `MADV_POPULATE_READ`/`MADV_POPULATE_WRITE` (Linux 5.14) on the libuv
   * threadpool, one chunk of at most 8 MiB at a time: other `fs` work interleaves, and no
   * threadpool thread is held for longer than a chunk. On older kernels each page is read
   * through process_vm_readv(2) instead (resident, but a first write still takes a minor fault).
   * The pages can be reclaimed again under memory pressure; {@link Mapping.lock} keeps them.
   *
   * Rejects with `EFAULT` (`syscall: 'madvise'`) where a page lies past the end of the file
   * (a file shorter than the mapping, or truncated under it): the way to learn of it without
   * SIGBUS. (`EFAULT` also when `write` is asked of pages without write permission.) Rejects
   * with an `AbortError` once `options.signal` aborts, and with `ERR_MAPPING_CLOSED` if the
   * mapping is unmapped meanwhile; the chunk under way keeps its pages mapped until it ends.
   *
   * @example
   * using m = mapFile('index.bin');
   * await m.populate();                    // the disk reads happen here, on the threadpool
   * const hit = m.bytes[someOffset];       // no fault, no stall
   */
  async populate(options?: PopulateOptions): Promise<void> {
    this.#open();
    const opts = validateOptions<PopulateOptions>(options);
    const write = validateBoolean(opts.write, 'options.write');
    const signal = validateAbortSignal(opts.signal, 'options.signal');
    const [start, len] = this.#pages(opts.offset, opts.length);
    for (let at = start; at < start + len; at += POPULATE_CHUNK) {
      if (signal?.aborted) throw abortError(signal);
      const handle = this.#open();
      // A resize() meanwhile may have shrunk it: populate what is left of the range.
      const end = Math.min(start + len, this.#mappedSize());
      if (at >= end) break;
      const rc = await native.populate(handle, at, Math.min(POPULATE_CHUNK, end - at), write);
      if (rc < 0) throw systemError(rc, 'madvise');
    }
    if (signal?.aborted) throw abortError(signal);
    this.#open();
  }

  /**
   * A plain object to post to a worker thread (`postMessage`, `workerData`), where
   * {@link Mapping.from} makes of it a mapping of the same pages: what either thread writes,
   * the other reads, and {@link wait}/{@link notify} and {@link RingBuffer} work between them
   * as between processes. For a shared file mapping or a {@link SharedMemory} mapping; a
   * private mapping (its pages are this thread's copy) or a shared anonymous one (no file to
   * map again: use {@link SharedMemory}) throws `ERR_MAPPING_NOT_SHAREABLE`.
   *
   * The buffer itself cannot be posted: `postMessage` copies an `ArrayBuffer` (a copy, not
   * the pages), and transferring one moves V8's backing store, which an external buffer
   * over mapped memory cannot give up. What crosses instead is a duplicate of the file's
   * descriptor, put aside in this process for `options.timeoutMs` (default 60 s): received
   * once, by one thread; closed if never received.
   *
   * @example
   * const worker = new Worker('./worker.js', { workerData: mapping.share() });
   * // worker.js: const view = Mapping.from(workerData);
   */
  share(options?: ShareOptions): MappingDescriptor {
    this.#open();
    const ttl = shareTimeout(options);
    const handle = this.#open(); // again: reading the options ran the caller's getters
    if ((this.#flags & MapFlags.Anonymous) !== 0 || !this.shared) {
      throw mmanError(
        'ERR_MAPPING_NOT_SHAREABLE',
        (this.#flags & MapFlags.Anonymous) !== 0 && this.shared ? 'shared-anonymous' : 'private',
      );
    }
    if (!this.#keepsFile) {
      throw mmanError('ERR_MAPPING_NOT_SHAREABLE', 'no-file');
    }
    const file = native.regionFile(handle);
    if (typeof file === 'number') throw systemError(file, 'fcntl');
    return {
      type: 'mman.Mapping',
      id: putAside(file[0], ttl),
      pid: process.pid,
      offset: file[1] + this.#delta,
      length: this.#length,
      writable: (this.#prot & Prot.Write) !== 0,
      guard: this.#guarded,
    };
  }

  /**
   * In another thread of the same process: maps what {@link Mapping.share} described (the
   * same file range, read-write if the original was). A descriptor is received once; it is
   * `ERR_SHARED_DESCRIPTOR_TAKEN` after that or once expired, `ERR_SHARED_DESCRIPTOR_FOREIGN`
   * in another process.
   */
  static from(descriptor: MappingDescriptor): Mapping {
    const { fd, d } = takeAside<MappingDescriptor>(descriptor, 'mman.Mapping');
    try {
      return mapFile(fd, {
        mode: d.writable ? 'r+' : 'r',
        offset: d.offset,
        length: d.length,
        guard: d.guard === true,
        keepFile: d.guard !== true, // to share it on; a guarded one's fault-table entry keeps one anyway
      });
    } finally {
      native.fdClose(fd); // the mapping keeps a descriptor of its own
    }
  }

  /**
   * The kernel's own accounting of the mapping's pages, from `/proc/self/smaps`: resident,
   * proportional, shared and private clean and dirty, anonymous, huge pages, swap and locked
   * bytes, summed over the VMAs that hold the mapping (see {@link MappingMemory.size} for
   * when that includes a neighbour). Reads the file, so it costs a fraction of a millisecond
   * per few hundred mappings of the process: not for a hot path.
   */
  memory(): MappingMemory {
    const base = native.address(this.#open());
    return memoryOf(base, base + BigInt(this.#mappedSize()));
  }

  /**
   * Maps `fd` (or anonymous memory, with `fd` -1 and `MapFlags.Anonymous`) over
   * `[offset, offset + length)` of this mapping with `MAP_FIXED`: the only way this library
   * passes `MAP_FIXED`, confined to pages this mapping owns. `offset` must fall on a page
   * boundary of the mapped pages. Existing views keep working and see the new pages.
   */
  mapFixed(offset: number, length: number, prot: Prot, flags: MapFlags, fd = -1, fileOffset = 0): void {
    const handle = this.#open();
    const [off, len] = this.#range(offset, length);
    const start = this.#delta + off;
    if (start % PAGE_SIZE !== 0) throw outOfRange('offset', `on a page boundary (PAGE_SIZE ${PAGE_SIZE})`, offset);
    if (len === 0) throw outOfRange('length', '> 0', length);
    validateProt(prot);
    validateMapFlags(flags);
    if ((flags & MapFlags.FixedNoReplace) !== 0)
      throw invalidArgValue('flags', flags, 'must not include MapFlags.FixedNoReplace here');
    validateFd(fd, flags);
    validateFileOffset(fileOffset);
    const rc = native.fixed(handle, start, roundUp(len, PAGE_SIZE), prot, flags, fd, fileOffset);
    if (rc < 0) throw callError(rc, 'mmap');
    this.#noteProtection(handle, start, roundUp(len, PAGE_SIZE), prot);
  }

  /**
   * Unmaps the region. Idempotent, and never harmful to an operation still using a view.
   *
   * The mapping closes at once: every method throws `ERR_MAPPING_CLOSED`, `bytes` and
   * `buffer` with it, and `length` is 0. The range goes back to the kernel (munmap(2)) once
   * nothing can reach it any more: Node's asynchronous APIs (socket and stream writes, `fs`
   * reads and writes, `zlib`, `crypto` jobs) keep the view they were given, and some use it
   * again later, so until the garbage collector finds every buffer and view over the
   * mapping unreachable the pages stay mapped with their contents, and such an operation
   * completes on the mapping's own pages. A view kept past unmap() still reads them. A
   * buffer moved away with `transfer()` keeps them until it is collected too.
   * {@link mappingStats} counts these retired ranges. `options.detachViews` also empties
   * every view at once; read its warning first.
   */
  unmap(options?: UnmapOptions): void {
    const detach =
      options === undefined
        ? false
        : validateBoolean(validateOptions<UnmapOptions>(options).detachViews, 'options.detachViews');
    const handle = this.#handle;
    if (handle === null) return;
    const kept = this.#buffer;
    this.#handle = null;
    this.#buffer = null;
    this.#bytes = null;
    native.unmap(handle, kept, detach);
  }

  /** Same as {@link Mapping.unmap}, for `using`. */
  [dispose](): void {
    this.unmap();
  }
}

/** @internal */
export function validateProt(prot: unknown): asserts prot is Prot {
  validateInt32(prot, 'prot', 0);
  if (((prot as number) & ~PROT_BITS) !== 0)
    throw invalidArgValue('prot', prot, 'must combine Prot.Read, Prot.Write and Prot.Exec');
}

/** @internal */
export function validateMapFlags(flags: unknown): asserts flags is MapFlags {
  if (typeof flags !== 'number') throw invalidArgType('flags', 'of type number (MapFlags)', flags);
  if (!Number.isInteger(flags) || flags < -(2 ** 31) || flags > 2 ** 32 - 1)
    throw outOfRange('flags', 'a 32-bit integer', flags);
  const bits = flags | 0;
  if ((bits & MapFlags.Fixed) !== 0) {
    throw invalidArgValue(
      'flags',
      flags,
      'must not include MapFlags.Fixed, which can replace memory this process uses; use MapFlags.FixedNoReplace with an address, or mapping.mapFixed() inside a mapping you own',
    );
  }
  if ((bits & ~MAP_KNOWN_BITS) !== 0) throw invalidArgValue('flags', flags, 'has bits that are not MapFlags');
  if ((bits & MAP_TYPE_BITS) === 0)
    throw invalidArgValue(
      'flags',
      flags,
      'must include one of MapFlags.Shared, MapFlags.Private, MapFlags.SharedValidate',
    );
}

/** @internal */
export function validateFd(fd: unknown, flags: number): void {
  if ((flags & MapFlags.Anonymous) !== 0) {
    if (fd !== -1 && fd !== undefined) throw invalidArgValue('fd', fd, 'must be -1 for MapFlags.Anonymous');
    return;
  }
  // -1, as for anonymous memory, but without the flag: say what is missing.
  if (typeof fd === 'number' && Number.isInteger(fd) && fd < 0)
    throw outOfRange('fd', '>= 0 (a file descriptor: memory with no file needs MapFlags.Anonymous)', fd);
  validateInt32(fd, 'fd', 0);
}

/** @internal */
export function validateFileOffset(offset: unknown): void {
  validateInteger(offset, 'offset', 0, MAX_LENGTH);
  if ((offset as number) % PAGE_SIZE !== 0)
    throw outOfRange('offset', `a multiple of PAGE_SIZE (${PAGE_SIZE})`, offset);
}

/** @internal What a file mapping keeps of its file (create()'s `file`). */
export interface FileKept {
  /** For messages: the path it was mapped from. */
  path?: string;
  keepFile: boolean;
  guard: boolean;
  /** The file was sized without reserving its blocks: growFile does the same. */
  sparse?: boolean;
  /** The page size of the file's mappings: a huge page's on hugetlbfs. */
  granule?: number;
  /** The file offset of the first exposed byte. */
  start: number;
}

const { MAP_LIMIT } = native.answers;

// The error of a call on a live mapping: ERR_MAPPING_LIMIT when it would have split a memory
// area within mman's reserve of vm.max_map_count, else the system error.
function callError(rc: number, syscall: string): Error {
  return rc === MAP_LIMIT ? mapLimitError() : systemError(rc, syscall);
}

/** @internal */
export function mapLimitError(): Error {
  const [areas, max, reserve] = native.mapLimit();
  return mmanError('ERR_MAPPING_LIMIT', { areas, max, reserve });
}
