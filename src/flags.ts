// The kernel's flags for mmap(2), mprotect(2), madvise(2), msync(2) and mremap(2), one doc
// comment per member after the man pages. Values are those of <sys/mman.h> and
// <linux/mman.h> on x86-64 and arm64; test/flags.test.ts checks each against the constant
// the addon compiled from this machine's headers.

/** Memory protection, for {@link mmap} and {@link Mapping.protect} (`PROT_*`). Combine with `|`. */
export enum Prot {
  /** `PROT_NONE`: pages may not be accessed. */
  None = 0x0,
  /** `PROT_READ`: pages may be read. */
  Read = 0x1,
  /** `PROT_WRITE`: pages may be written. */
  Write = 0x2,
  /** `PROT_EXEC`: pages may be executed. Never set unless asked for explicitly. */
  Exec = 0x4,
}

/**
 * Flags for {@link mmap} (`MAP_*`). Exactly one of `Shared`, `Private`, `SharedValidate`; combine
 * the rest with `|`.
 */
export enum MapFlags {
  /**
   * `MAP_SHARED`: share this mapping. Updates are visible to other processes mapping the same
   * region and, for file mappings, are carried through to the file.
   */
  Shared = 0x01,
  /**
   * `MAP_PRIVATE`: create a private copy-on-write mapping. Updates are not visible to other
   * processes mapping the same file, and are not carried through to the file.
   */
  Private = 0x02,
  /**
   * `MAP_SHARED_VALIDATE` (Linux 4.15): like `Shared`, but the kernel verifies all passed flags are
   * known and fails with `EOPNOTSUPP` for unknown ones. Required for `Sync`.
   */
  SharedValidate = 0x03,
  /**
   * `MAP_FIXED`: place the mapping at exactly the given address, replacing whatever was there.
   * Refused by {@link mmap}; use {@link Mapping.mapFixed} inside a mapping you own.
   */
  Fixed = 0x10,
  /**
   * `MAP_ANONYMOUS`: the mapping is not backed by any file; its contents are initialized to zero.
   * `fd` must be -1 and `offset` 0.
   */
  Anonymous = 0x20,
  /**
   * `MAP_NORESERVE`: do not reserve swap space for this mapping. When swap space is not reserved
   * one might get SIGSEGV upon a write if no physical memory is available.
   */
  NoReserve = 0x4000,
  /**
   * `MAP_POPULATE` (Linux 2.5.46): populate (prefault) page tables for the mapping. For a file
   * mapping, this causes read-ahead on the file; later accesses will not be blocked by page faults.
   */
  Populate = 0x8000,
  /**
   * `MAP_NONBLOCK` (Linux 2.5.46): meaningful only with `Populate`; don't perform read-ahead,
   * create page tables only for pages already in RAM. Since Linux 2.6.23 it makes `Populate` do
   * nothing.
   */
  NonBlock = 0x10000,
  /**
   * `MAP_LOCKED` (Linux 2.5.37): mark the mapped region to be locked in the same way as mlock(2);
   * failures to populate do not make mmap fail.
   */
  Locked = 0x2000,
  /**
   * `MAP_STACK` (Linux 2.6.27): allocate the mapping at an address suitable for a process or thread
   * stack; no effect today beyond that hint.
   */
  Stack = 0x20000,
  /**
   * `MAP_HUGETLB` (Linux 2.6.32): allocate the mapping using huge pages (needs pages reserved in
   * /proc/sys/vm/nr_hugepages).
   */
  HugeTLB = 0x40000,
  /** `MAP_HUGE_2MB` (Linux 3.8): with `HugeTLB`, use 2 MiB huge pages (`21 << MAP_HUGE_SHIFT`). */
  Huge2MB = 21 << 26,
  /** `MAP_HUGE_1GB` (Linux 3.8): with `HugeTLB`, use 1 GiB huge pages (`30 << MAP_HUGE_SHIFT`). */
  Huge1GB = 30 << 26,
  /**
   * `MAP_SYNC` (Linux 4.15): with `SharedValidate` on a DAX file, the file's metadata is durable
   * once a write through the mapping is; `EOPNOTSUPP` elsewhere.
   */
  Sync = 0x80000,
  /**
   * `MAP_FIXED_NOREPLACE` (Linux 4.17): like `Fixed` with respect to the address, but never
   * clobbers a preexisting mapped range: fails with `EEXIST` instead.
   */
  FixedNoReplace = 0x100000,
}

/** Advice for {@link Mapping.advise} (`MADV_*`). `MADV_HWPOISON` and `MADV_SOFT_OFFLINE` are deliberately absent. */
export enum Advice {
  /** `MADV_NORMAL`: no special treatment. This is the default. */
  Normal = 0,
  /** `MADV_RANDOM`: expect page references in random order (hence, read ahead may be less useful than normally). */
  Random = 1,
  /**
   * `MADV_SEQUENTIAL`: expect page references in sequential order (hence, pages can be aggressively
   * read ahead, and may be freed soon after they are accessed).
   */
  Sequential = 2,
  /** `MADV_WILLNEED`: expect access in the near future (hence, it might be a good idea to read some pages ahead). */
  WillNeed = 3,
  /**
   * `MADV_DONTNEED`: do not expect access in the near future. **Destroys data**: private pages
   * (anonymous, and what a `'copy'` file mapping wrote) read back as zeros or as the file's bytes
   * afterwards; shared and file pages are refilled from their backing store.
   */
  DontNeed = 4,
  /**
   * `MADV_FREE` (Linux 4.5): the application no longer requires the pages; the kernel can free them
   * lazily when memory is needed. **Destroys data**: a page freed before it is written again reads
   * as zeros. Private anonymous only.
   */
  Free = 8,
  /**
   * `MADV_REMOVE` (Linux 2.6.16): free up the range and its backing store, punching a hole in the
   * file (shmem, tmpfs and filesystems that support it). **Destroys data**, in the file itself:
   * every process mapping it reads zeros there afterwards.
   */
  Remove = 9,
  /** `MADV_DONTFORK` (Linux 2.6.16): do not make the pages available to the child after a fork(2). */
  DontFork = 10,
  /** `MADV_DOFORK` (Linux 2.6.16): undo the effect of `DontFork`. */
  DoFork = 11,
  /** `MADV_MERGEABLE` (Linux 2.6.32): enable Kernel Samepage Merging for the pages. */
  Mergeable = 12,
  /** `MADV_UNMERGEABLE` (Linux 2.6.32): undo the effect of `Mergeable`. */
  Unmergeable = 13,
  /** `MADV_HUGEPAGE` (Linux 2.6.38): enable Transparent Huge Pages for the pages. */
  HugePage = 14,
  /** `MADV_NOHUGEPAGE` (Linux 2.6.38): ensure the pages will not be backed by transparent huge pages. */
  NoHugePage = 15,
  /** `MADV_DONTDUMP` (Linux 3.4): exclude the pages from a core dump. */
  DontDump = 16,
  /** `MADV_DODUMP` (Linux 3.4): undo the effect of `DontDump`. */
  DoDump = 17,
  /**
   * `MADV_WIPEONFORK` (Linux 4.14): present the child with zero-filled memory in this range after a
   * fork(2). **Destroys data** in the child. Private anonymous only.
   */
  WipeOnFork = 18,
  /** `MADV_KEEPONFORK` (Linux 4.14): undo the effect of `WipeOnFork`. */
  KeepOnFork = 19,
  /**
   * `MADV_COLD` (Linux 5.4): deactivate the pages; they become a more probable reclaim target
   * should there be memory pressure. Nondestructive.
   */
  Cold = 20,
  /**
   * `MADV_PAGEOUT` (Linux 5.4): reclaim the pages now. Nondestructive: the contents are read back
   * on the next access.
   */
  PageOut = 21,
  /**
   * `MADV_POPULATE_READ` (Linux 5.14): populate (prefault) page tables readable, faulting in all
   * pages as if by reading, without actually reading.
   */
  PopulateRead = 22,
  /**
   * `MADV_POPULATE_WRITE` (Linux 5.14): populate (prefault) page tables writable, faulting in all
   * pages as if by writing, without actually writing.
   */
  PopulateWrite = 23,
  /**
   * `MADV_DONTNEED_LOCKED` (Linux 5.18): like `DontNeed`, but also for locked pages. **Destroys
   * data** as `DontNeed` does.
   */
  DontNeedLocked = 24,
  /**
   * `MADV_COLLAPSE` (Linux 6.1): perform a best-effort synchronous collapse of the native pages
   * into transparent huge pages.
   */
  Collapse = 25,
  /**
   * `MADV_GUARD_INSTALL` (Linux 6.13): make the pages guard pages, without a new VMA: any access
   * raises SIGSEGV, **which kills the process** (no JavaScript handler can catch it), as with
   * `Prot.None`. **Destroys data**: pages already there are dropped. Cheaper than
   * {@link Mapping.protect} for many small guards; `EINVAL` before 6.13.
   */
  GuardInstall = 102,
  /**
   * `MADV_GUARD_REMOVE` (Linux 6.13): remove guard pages; the range reads as it would after
   * `DontNeed` (zeros for anonymous memory, the file's bytes for a file).
   */
  GuardRemove = 103,
}

/** Flags for {@link Mapping.sync} (`MS_*`). */
export enum SyncFlags {
  /**
   * `MS_ASYNC`: schedule the update, return at once (since Linux 2.6.19 a no-op: the kernel tracks
   * dirty pages already).
   */
  Async = 1,
  /**
   * `MS_INVALIDATE`: ask to invalidate other mappings of the same file, so that they can be updated
   * with the fresh values just written.
   */
  Invalidate = 2,
  /** `MS_SYNC`: request an update and wait for it to complete. */
  Sync = 4,
}

/** Flags for mremap(2) (`MREMAP_*`); {@link Mapping.resize} uses `MayMove`. */
export enum RemapFlags {
  /**
   * `MREMAP_MAYMOVE`: by default, if there is not sufficient space to expand a mapping at its
   * current location, mremap() fails. With this flag the kernel may relocate the mapping to a new
   * virtual address.
   */
  MayMove = 1,
  /** `MREMAP_FIXED`: move the mapping to a given address (implies `MayMove`). Not used by this library. */
  Fixed = 2,
  /**
   * `MREMAP_DONTUNMAP` (Linux 5.7): with `MayMove`, remap to a new address but leave the old range
   * mapped. Not used by this library.
   */
  DontUnmap = 4,
}

/** Flags for {@link Mapping.lock} (`MLOCK_*`, mlock2(2)). */
export enum LockFlags {
  /**
   * `MLOCK_ONFAULT` (Linux 4.4): lock pages that are currently resident, and mark the range so
   * pages are locked when they are faulted in, instead of populating them all now.
   */
  OnFault = 1,
}
