// The ways a Mapping is made: mmap(), mapFile(), mapFileAsync() and mapAnonymous(), each
// validating and planning what to map, then create(), the one place a Mapping is born.
// napi_no_external_buffers_allowed, as Node-API numbers it.
const NO_EXTERNAL_BUFFERS_ALLOWED = 22;

import { constants as fsConstants, readFileSync, type PathLike } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

import { native, type OpenedFile } from './native';
import { Advice, MapFlags, Prot } from './flags';
import {
  abortError,
  invalidArgType,
  invalidArgValue,
  mmanError,
  outOfRange,
  systemError,
  validateAbortSignal,
  validateBoolean,
  validateInt32,
  validateInteger,
  validateOneOf,
  validateOptions,
} from './errors';
import {
  checkMappable,
  identityOf,
  removeCreated,
  sizeFile,
  statFd,
  S_IFMT,
  S_IFREG,
  type FileIdentity,
} from './files';
import {
  ADVICE_VALUES,
  defaultHugePage,
  mapLimitError,
  Mapping,
  MAX_LENGTH,
  PAGE_SIZE,
  roundDown,
  roundUp,
  validateFd,
  validateFileOffset,
  validateMapFlags,
  validateProt,
  type FileKept,
} from './mapping';

const NO_FILE: FileKept = { keepFile: false, guard: false, start: 0 };
const { MAP_LIMIT, MAP_KEEP_FILE, MAP_GUARD, MAP_HINT, MAP_LABEL, GUARD_FULL, GUARD_SLOTS } = native.answers;

let addressBounds: [bigint, bigint] | undefined;

// Where a mapping may be placed: from vm.mmap_min_addr (below it lies the NULL-pointer guard,
// which root could otherwise map) to the top of the user address space, the power of two above
// the highest mapping (the stack's end: 2^47 on x86-64, 2^48 on most arm64 kernels).
function addressRange(): [bigint, bigint] {
  if (addressBounds === undefined) {
    let low = 65536n;
    try {
      low = BigInt(readFileSync('/proc/sys/vm/mmap_min_addr', 'latin1').trim());
    } catch {
      // no /proc: the common default
    }
    let top = 0n;
    for (const line of readFileSync('/proc/self/maps', 'latin1').split('\n')) {
      const end = BigInt(`0x${line.slice(line.indexOf('-') + 1, line.indexOf(' ')) || '0'}`);
      if (end < 1n << 63n && end > top) top = end; // not the x86 vsyscall page, in kernel space
    }
    let high = 1n << 32n;
    while (high < top) high <<= 1n;
    addressBounds = [low > BigInt(PAGE_SIZE) ? low : BigInt(PAGE_SIZE), high];
  }
  return addressBounds;
}

// The huge page size of MAP_HUGETLB with `flags`: the one MAP_HUGE_* names, or the default.
function hugePageSize(flags: number): number {
  const shift = (flags >>> 26) & 0x3f;
  return shift !== 0 ? 2 ** shift : defaultHugePage();
}

// The one place a Mapping is born: mmap, then wrap; on any later failure, unmap.
function create(
  length: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
  delta: number,
  hint?: bigint,
  file: FileKept = NO_FILE,
): Mapping {
  if (native.externalBuffers !== 0) {
    const why =
      native.externalBuffers === NO_EXTERNAL_BUFFERS_ALLOWED
        ? 'it refuses external ArrayBuffers (napi_no_external_buffers_allowed: Electron 21 and later run V8 with its memory cage)'
        : `napi_create_external_arraybuffer failed at load with status ${native.externalBuffers}`;
    throw mmanError('ERR_MAPPING_EXTERNAL_BUFFERS_FORBIDDEN', why);
  }
  const granule = (flags & MapFlags.HugeTLB) !== 0 ? hugePageSize(flags) : (file.granule ?? PAGE_SIZE);
  const size = roundUp(delta + length, granule);
  const options =
    (file.keepFile ? MAP_KEEP_FILE : 0) |
    (file.guard ? MAP_GUARD : 0) |
    (hint !== undefined ? MAP_HINT : 0) |
    (file.path !== undefined ? MAP_LABEL : 0);
  const result = native.map(size, prot, flags, fd, offset, hint, file.path ?? '', options, granule);
  if (typeof result === 'number') {
    if (result === MAP_LIMIT) throw mapLimitError();
    if (result === GUARD_FULL) throw mmanError('ERR_MAPPING_LIMIT', { guardSlots: GUARD_SLOTS });
    throw systemError(result, 'mmap', file.path);
  }
  return Mapping.make(result, delta, length, size, granule, flags, prot, file);
}

/**
 * mmap(2), one to one: maps `length` bytes with protection `prot` and `flags`, from `fd`
 * at `offset` (a multiple of {@link PAGE_SIZE}), or anonymous memory with
 * `MapFlags.Anonymous` and `fd` -1. `MapFlags.Fixed` is refused; `MapFlags.FixedNoReplace`
 * needs `address`. A file mapping longer than the file SIGBUSes on the pages past its end.
 *
 * @example
 * const m = mmap(PAGE_SIZE, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous);
 */
export function mmap(length: number, prot: Prot, flags: MapFlags, fd = -1, offset = 0, address?: bigint): Mapping {
  validateInteger(length, 'length', 1, MAX_LENGTH);
  validateProt(prot);
  validateMapFlags(flags);
  validateFd(fd, flags);
  validateFileOffset(offset);
  if ((flags & MapFlags.Anonymous) !== 0 && offset !== 0)
    throw outOfRange('offset', '0 for MapFlags.Anonymous', offset);
  if ((flags & MapFlags.FixedNoReplace) !== 0) {
    if (typeof address !== 'bigint')
      throw invalidArgType('address', 'of type bigint with MapFlags.FixedNoReplace', address);
    const [low, high] = addressRange();
    const end = address + BigInt(roundUp(length, PAGE_SIZE));
    if (address < low || end > high || address % BigInt(PAGE_SIZE) !== 0n)
      throw outOfRange(
        'address',
        `a multiple of PAGE_SIZE (${PAGE_SIZE}) from vm.mmap_min_addr (0x${low.toString(16)}) with the mapping ending by the top of the address space (0x${high.toString(16)})`,
        address,
      );
  } else if (address !== undefined) {
    throw invalidArgValue('address', address, 'is only used with MapFlags.FixedNoReplace');
  }
  return create(length, prot, flags, fd, offset, 0, address);
}

/**
 * How {@link mapFile} maps: `'r'` read-only shared, `'r+'` read-write shared, `'w+'` read-write
 * shared over a file emptied (or created) first, `'copy'` read-write private (copy-on-write).
 */
export type MapFileMode = 'r' | 'r+' | 'w+' | 'copy';

/** A file about to be mapped, as opened (or stat'ed) here. */
interface TargetFile {
  fd: number;
  type: number;
  size: number;
  /** This call created it (O_CREAT): a failure afterwards removes it again. */
  created: boolean;
  /** This call opened it from `path` (with O_TRUNC for 'w+'), and closes it after mapping. */
  opened: boolean;
  path?: string | Buffer;
  /** A file on hugetlbfs: its huge page size (mappings are made of whole huge pages), else 0. */
  hugePage: number;
}

function describePath(path: PathLike): string | Buffer {
  if (path instanceof URL) return fileURLToPath(path);
  if (typeof path !== 'string' && !Buffer.isBuffer(path))
    throw invalidArgType('file', 'a path (string, Buffer, URL), a file descriptor or a FileHandle', path);
  if (typeof path === 'string' ? path.includes('\0') : path.includes(0))
    throw invalidArgValue('file', path, 'must be a string, Buffer or URL without null bytes');
  return path;
}

function openedFile(result: OpenedFile | number, path: string | Buffer): TargetFile {
  if (typeof result === 'number') throw systemError(result, 'open', path.toString());
  const [fd, mode, size, created, hugePage] = result;
  return { fd, type: mode & S_IFMT, size, created, opened: true, path, hugePage };
}

function givenFile(fd: number): TargetFile {
  const stat = statFd(fd);
  return { fd, type: stat.type, size: stat.size, created: false, opened: false, hugePage: stat.hugePage };
}

/** Options for {@link mapFile}. */
export interface MapFileOptions {
  /**
   * `'r'` (default): read-only, `MAP_SHARED`. `'r+'`: read-write, `MAP_SHARED`, writes reach the
   * file. `'w+'`: as `'r+'`, over a file created if missing and emptied first (as `fs` and
   * `numpy.memmap` mean by `w+`), then sized to `offset + length`. `'copy'`: read-write,
   * `MAP_PRIVATE`, writes stay in this process.
   */
  mode?: MapFileMode;
  /** First byte of the file to map; any value (the mapping starts at the page below). Default 0. */
  offset?: number;
  /** Bytes to map. Default: the rest of the file after `offset`. Required with `create` and `'w+'`. */
  length?: number;
  /**
   * With `'r+'`: create the file if it is missing (mode `0o666` less the umask, as `fs` does)
   * and extend it when it is shorter than `offset + length` (its new blocks reserved with
   * fallocate(2) unless `sparse`), so that every mapped page is the file's and none can
   * SIGBUS. Never truncates. With a descriptor or a
   * `FileHandle` it only extends. `'w+'` implies it. Default `false`.
   */
  create?: boolean;
  /** Prefault the page tables (`MAP_POPULATE`), reading the file ahead, on this thread. */
  populate?: boolean;
  /** madvise(2) the mapping once it is made. */
  advice?: Advice;
  /**
   * Survive a page that no file page can back: past the end of the file (truncated under the
   * mapping by another process) or one its filesystem cannot allocate (full, or failing). The
   * page reads as zeros instead of killing the process with SIGBUS, and every later method
   * call throws: `ERR_MAPPING_TRUNCATED` ({@link Mapping.truncated}) or, for a page inside the
   * file, `ERR_MAPPING_PAGE_LOST` ({@link Mapping.lostPages}), with the byte range and the
   * reason (`ENOSPC`, `EIO`). Writes to such pages are lost, never silently: the error says so.
   * The process-wide SIGBUS handler is chained to any earlier one; the mapping keeps a
   * descriptor of the file (the handler reads its size to tell the two apart).
   */
  guard?: boolean;
  /**
   * Keep a duplicate of the file's descriptor (close-on-exec) for as long as the mapping is
   * open. Needed by {@link Mapping.share}, by `resize(n, { growFile: true })`, and by a
   * `'copy'` mapping's {@link Mapping.resize} to move without ever exposing the file's bytes
   * where it wrote its own. Default: `true` with `create` or mode `'w+'` (a file made to be
   * written and grown), else `false`: a mapping holds no descriptor, so a process can hold as
   * many mappings as `vm.max_map_count` allows whatever its `ulimit -n`. A guarded mapping
   * holds one in any case (the guard reads the file's size), which serves for all of these.
   */
  keepFile?: boolean;
  /**
   * With `create` or `'w+'`: extend the file without reserving its blocks (ftruncate(2)
   * alone), as a sparse file. Default `false`: the space is reserved (fallocate(2)) when the
   * file is made or grown, so a full disk or a small `/dev/shm` is `ENOSPC` right there, and
   * never SIGBUS at a later write. **Sparse risks that SIGBUS**: a write to a page the
   * filesystem then has no room for kills the process (`guard: true` turns it into
   * `ERR_MAPPING_PAGE_LOST`). On tmpfs reserving commits the memory at once.
   */
  sparse?: boolean;
}

/** Options for {@link mapFileAsync}: those of {@link mapFile}, with `populate` done off the event loop. */
export interface MapFileAsyncOptions extends Omit<MapFileOptions, 'populate'> {
  /**
   * Make every page resident before resolving, on the threadpool ({@link Mapping.populate}),
   * so that the first reads do not stop the event loop. Default `true`.
   */
  populate?: boolean;
  /** Aborting it rejects with an `AbortError`; whatever was mapped is unmapped. */
  signal?: AbortSignal;
}

/**
 * What {@link mapFile} maps: a path, an open file descriptor or an `fs/promises` FileHandle.
 * @inline
 */
type FileTarget = PathLike | number | FileHandle;

const { O_RDONLY, O_RDWR, O_CREAT, O_TRUNC } = fsConstants;
const MODES: Record<MapFileMode, { prot: number; flags: number; open: number }> = {
  r: { prot: Prot.Read, flags: MapFlags.Shared, open: O_RDONLY },
  'r+': { prot: Prot.Read | Prot.Write, flags: MapFlags.Shared, open: O_RDWR },
  'w+': { prot: Prot.Read | Prot.Write, flags: MapFlags.Shared, open: O_RDWR | O_CREAT | O_TRUNC },
  copy: { prot: Prot.Read | Prot.Write, flags: MapFlags.Private, open: O_RDONLY },
};

// What mapFile and mapFileAsync were asked for, checked before anything is opened.
interface FilePlan {
  prot: number;
  flags: number;
  open: number; // open(2) flags for a path
  offset: number;
  length: number | undefined;
  create: boolean; // extend the file to offset + length
  empty: boolean; // 'w+': empty the file first
  guard: boolean;
  keepFile: boolean;
  sparse: boolean; // extend without reserving the blocks
  advice: Advice | undefined;
}

function planFile(opts: Partial<MapFileOptions>, populate: boolean): FilePlan {
  const modeName = validateOneOf(opts.mode ?? 'r', 'options.mode', Object.keys(MODES) as MapFileMode[]);
  const mode = MODES[modeName];
  const offset = opts.offset === undefined ? 0 : validateInteger(opts.offset, 'options.offset', 0, MAX_LENGTH);
  const length = opts.length === undefined ? undefined : validateInteger(opts.length, 'options.length', 1, MAX_LENGTH);
  const create = validateBoolean(opts.create, 'options.create') || modeName === 'w+';
  if (create && modeName !== 'r+' && modeName !== 'w+')
    throw invalidArgValue('options.create', opts.create, "is only for mode 'r+' (or 'w+', which implies it)");
  if (create && length === undefined)
    throw invalidArgValue(
      'options.length',
      length,
      `is required with ${modeName === 'w+' ? "mode 'w+'" : 'options.create'}: the bytes to map, to which the file is extended`,
    );
  const guard = validateBoolean(opts.guard, 'options.guard');
  const keepFile = validateBoolean(opts.keepFile, 'options.keepFile', create);
  const sparse = validateBoolean(opts.sparse, 'options.sparse');
  if (sparse && !create)
    throw invalidArgValue('options.sparse', sparse, "is only for options.create or mode 'w+', which size the file");
  if (opts.advice !== undefined && !ADVICE_VALUES.has(opts.advice))
    throw invalidArgValue('options.advice', opts.advice, 'must be a member of Advice');
  return {
    prot: mode.prot,
    flags: mode.flags | (populate ? MapFlags.Populate : 0),
    open: mode.open | (create ? O_CREAT : 0),
    offset,
    length,
    create,
    empty: modeName === 'w+',
    guard,
    keepFile,
    sparse,
    advice: opts.advice,
  };
}

// A path to open, or a descriptor the caller keeps.
// `path` resolved against the current directory (a Buffer path as bytes: it may not be UTF-8).
function absolute(path: string | Buffer): string | Buffer {
  if (typeof path === 'string') return resolvePath(path);
  return path[0] === 0x2f ? path : Buffer.concat([Buffer.from(`${process.cwd()}/`), path]);
}

function fileTarget(file: unknown): { path: string | Buffer; fd?: undefined } | { path?: undefined; fd: number } {
  if (typeof file === 'number') return { fd: validateInt32(file, 'file', 0) };
  if (typeof file === 'string' || file instanceof URL || Buffer.isBuffer(file)) return { path: describePath(file) };
  if (file !== null && typeof file === 'object' && typeof (file as FileHandle).fd === 'number') {
    const fd = (file as FileHandle).fd;
    if (fd === -1) throw systemError(-osConstants.errno.EBADF, 'fstat'); // a closed FileHandle, as fs.promises says
    return { fd: validateInt32(fd, 'file.fd', 0) };
  }
  throw invalidArgType('file', 'a path (string, Buffer, URL), a file descriptor or a FileHandle', file);
}

// Maps an open file as planned: sizes it first if asked, then checks the window against it.
// A file this call created is removed again if anything fails.
function mapOpenFile(file: TargetFile, plan: FilePlan): Mapping {
  const path = file.path?.toString();
  try {
    checkMappable(file.type, path);
    const isFile = file.type === S_IFREG;
    let length = plan.length;
    let size = file.size;
    if (isFile && plan.create) {
      const wanted = plan.offset + length!;
      if (plan.empty && !file.opened) {
        const rc = native.fdTruncate(file.fd, 0);
        if (rc < 0) throw systemError(rc, 'ftruncate', path);
        size = 0;
      }
      if (size < wanted) {
        sizeFile(file.fd, size, wanted, plan.sparse, path);
        size = wanted;
      }
    }
    if (isFile) {
      if (size === 0) throw mmanError('ERR_MAPPING_EMPTY_FILE', path);
      if (plan.offset >= size) throw outOfRange('options.offset', `< the file size (${size})`, plan.offset);
      length ??= size - plan.offset;
      if (length > size - plan.offset)
        throw outOfRange(
          'options.length',
          `<= the file size minus offset (${size - plan.offset}); pages past the end of the file raise SIGBUS (options.create extends the file)`,
          length,
        );
    } else if (length === undefined) {
      throw invalidArgValue('options.length', length, 'is required for a file that is not a regular file');
    }
    // hugetlbfs maps whole huge pages, from a file offset that is a multiple of one.
    const granule = file.hugePage || PAGE_SIZE;
    const pageOffset = roundDown(plan.offset, granule);
    const mapping = create(length, plan.prot, plan.flags, file.fd, pageOffset, plan.offset - pageOffset, undefined, {
      path,
      keepFile: plan.keepFile,
      guard: plan.guard,
      sparse: plan.sparse,
      start: plan.offset,
      granule,
    });
    try {
      if (plan.advice !== undefined) mapping.advise(plan.advice);
    } catch (err) {
      mapping.unmap();
      throw err;
    }
    return mapping;
  } catch (err) {
    if (file.created && file.path !== undefined) removeCreated(file.path, file.fd);
    throw err;
  }
}

/**
 * Maps a file, given as a path, a file descriptor or a `FileHandle`. A path is opened and
 * closed again here (the mapping keeps the file alive); an fd or FileHandle stays the
 * caller's. The mapping covers `[offset, offset + length)` of the file, exactly.
 *
 * An empty file, or a window past the end of the file, is refused (touching it would
 * SIGBUS) unless `create` (or mode `'w+'`) sizes the file first. The file shrinking under
 * the mapping later (another process truncating it) makes reads of the lost pages SIGBUS,
 * which kills the process: see `guard`, and {@link Mapping.populate}, which reports it as
 * `EFAULT`.
 *
 * The first touch of each page not in the page cache reads the disk on this thread: in a
 * server, use {@link mapFileAsync} (or {@link Mapping.populate}) to do that off the event loop.
 *
 * @example
 * using m = mapFile('data.bin');           // read-only, shared
 * const sum = new Uint32Array(m.buffer).reduce((a, b) => a + b, 0);
 * @example
 * using log = mapFile('log.bin', { mode: 'r+', create: true, length: 1 << 20 });
 * log.resize(2 << 20, { growFile: true }); // the file grows with it
 */
export function mapFile(file: FileTarget, options?: MapFileOptions): Mapping {
  const opts = validateOptions<MapFileOptions>(options);
  const plan = planFile(opts, validateBoolean(opts.populate, 'options.populate'));
  const target = fileTarget(file);
  if (target.fd !== undefined) return mapOpenFile(givenFile(target.fd), plan);
  const opened = openedFile(native.openFile(target.path, plan.open, 0o666), target.path);
  try {
    return mapOpenFile(opened, plan);
  } finally {
    native.fdClose(opened.fd); // the mapping needs no descriptor (or keeps its own)
  }
}

/**
 * {@link mapFile} for a server: opens the file on the threadpool, maps it, and (unless
 * `populate: false`) makes every page resident off the event loop ({@link Mapping.populate})
 * before it resolves, so that reading the mapping never stalls the loop on the disk.
 *
 * @example
 * const m = await mapFileAsync('index.bin', { signal: AbortSignal.timeout(5000) });
 */
export async function mapFileAsync(file: FileTarget, options?: MapFileAsyncOptions): Promise<Mapping> {
  const opts = validateOptions<MapFileAsyncOptions>(options);
  const populate = validateBoolean(opts.populate, 'options.populate', true);
  const signal = validateAbortSignal(opts.signal, 'options.signal');
  const plan = planFile({ ...opts, populate: undefined }, false);
  const target = fileTarget(file);
  if (signal?.aborted) throw abortError(signal);
  let mapping: Mapping;
  let created: FileIdentity | undefined; // the file this call made: a failure from here on removes it
  let path: string | Buffer | undefined;
  if (target.fd !== undefined) {
    mapping = mapOpenFile(givenFile(target.fd), plan);
  } else {
    // Opened on the threadpool, never waiting (O_NONBLOCK): an abort meanwhile is seen as soon
    // as the open is back, and whatever it made is undone before the promise rejects, so that
    // nothing is left behind once it has.
    // Made absolute now: a process.chdir() while the call is pending must not make the open, or
    // the removal of a file it created, look in another directory.
    path = absolute(target.path);
    const result = await native.openFileAsync(path, plan.open, 0o666);
    const opened = openedFile(result, path);
    try {
      if (signal?.aborted) {
        if (opened.created) removeCreated(path, opened.fd);
        throw abortError(signal);
      }
      mapping = mapOpenFile(opened, plan);
      if (opened.created) created = identityOf(opened.fd);
    } finally {
      native.fdClose(opened.fd);
    }
  }
  try {
    if (populate) await mapping.populate({ signal });
    else if (signal?.aborted) throw abortError(signal);
  } catch (err) {
    mapping.unmap();
    if (created !== undefined) removeCreated(path!, created);
    throw err;
  }
  return mapping;
}

/** Options for {@link mapAnonymous}. */
export interface MapAnonymousOptions {
  /**
   * `MAP_SHARED` instead of `MAP_PRIVATE`: shared with children made by fork(2) (not by Node's fork
   * + exec: use SharedMemory).
   */
  shared?: boolean;
  /** Prefault the pages now (`MAP_POPULATE`) instead of on first touch. */
  populate?: boolean;
  /** Do not reserve swap space (`MAP_NORESERVE`). */
  noReserve?: boolean;
  /**
   * `true`: hugetlbfs pages (`MAP_HUGETLB`, needs reserved huge pages, else `ENOMEM`);
   * `'transparent'`: `madvise(MADV_HUGEPAGE)`.
   */
  hugePages?: boolean | 'transparent';
  /**
   * Names the memory: it shows as `[anon:<name>]` in `/proc/<pid>/maps` and `smaps`, and so in
   * every tool that reads them, and is never merged with memory of another name (prctl(2)
   * `PR_SET_VMA_ANON_NAME`: Linux 5.17 built with `CONFIG_ANON_VMA_NAME`; a shared mapping
   * needs Linux 6.2). A kernel without it leaves the memory unnamed and the mapping is made
   * all the same: {@link Mapping.name} says which. At most 79 printable ASCII characters, none
   * of `` \ ` $ [ ] ``. Kept across {@link Mapping.resize}.
   */
  name?: string;
}

// What PR_SET_VMA_ANON_NAME accepts (the kernel's is_valid_name_char, ANON_VMA_NAME_MAX_LEN 80).
const ANON_NAME = /^[\x20-\x7e]{1,79}$/;
const ANON_NAME_REFUSED = /[\\`$[\]]/;

/**
 * Maps `length` bytes of zero-filled anonymous memory, private unless `shared`.
 *
 * @example
 * using m = mapAnonymous(1 << 20);
 * m.bytes.fill(1);
 */
export function mapAnonymous(length: number, options?: MapAnonymousOptions): Mapping {
  validateInteger(length, 'length', 1, MAX_LENGTH);
  const opts = validateOptions<MapAnonymousOptions>(options);
  let flags =
    MapFlags.Anonymous | (validateBoolean(opts.shared, 'options.shared') ? MapFlags.Shared : MapFlags.Private);
  if (validateBoolean(opts.populate, 'options.populate')) flags |= MapFlags.Populate;
  if (validateBoolean(opts.noReserve, 'options.noReserve')) flags |= MapFlags.NoReserve;
  const huge =
    opts.hugePages === undefined
      ? false
      : validateOneOf(opts.hugePages, 'options.hugePages', [true, false, 'transparent'] as const);
  if (huge === true) flags |= MapFlags.HugeTLB;
  const name = opts.name;
  if (name !== undefined) {
    if (typeof name !== 'string') throw invalidArgType('options.name', 'of type string', name);
    if (!ANON_NAME.test(name) || ANON_NAME_REFUSED.test(name))
      throw invalidArgValue('options.name', name, 'must be 1 to 79 printable ASCII characters, none of \\ ` $ [ ]');
  }
  const mapping = create(length, Prot.Read | Prot.Write, flags, -1, 0, 0);
  try {
    if (huge === 'transparent') mapping.advise(Advice.HugePage);
    if (name !== undefined) {
      const rc = mapping.nameAnonymous(name);
      // EINVAL for a valid name: this kernel cannot name memory (no CONFIG_ANON_VMA_NAME).
      if (rc < 0 && rc !== -osConstants.errno.EINVAL) throw systemError(rc, 'prctl');
    }
  } catch (err) {
    mapping.unmap();
    throw err;
  }
  return mapping;
}
