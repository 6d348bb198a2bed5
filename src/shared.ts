// SharedMemory (memfd_create or a /dev/shm file) and fork(), which hands SharedMemory fds
// to a Node child. Node's fork is fork + exec, which drops every mapping: only an fd crosses.
import { fork as forkProcess, type ChildProcess, type ForkOptions, type StdioOptions } from 'node:child_process';
import { constants as fsConstants, unlinkSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { Socket } from 'node:net';
import { isMainThread } from 'node:worker_threads';
import type { Cluster, ClusterSettings } from 'node:cluster';
import { join } from 'node:path';

import { native, type NotStarted, type StartedJob } from './native';
import { putAside, shareTimeout, takeAside, type ShareOptions, type SharedDescriptorBase } from './descriptors';
import { dispose, MAX_LENGTH, type Mapping } from './mapping';
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- MapFileOptions is named by {@link} in the doc comments
import { mapFile, type MapFileOptions } from './map';
import { removeCreated, sizeFile, statFd } from './files';
import {
  illegalConstructor,
  invalidArgType,
  invalidArgValue,
  mmanError,
  systemError,
  validateBoolean,
  validateInt32,
  validateInteger,
  validateOptions,
  validateOneOf,
} from './errors';

/** Where named segments live: the directory glibc's shm_open(3) uses. */
export const SHM_DIRECTORY = '/dev/shm';

/** The environment variable through which {@link fork} tells the child its fds. */
export const SHARED_ENV = 'MMAN_SHARED';

const {
  MFD_CLOEXEC,
  MFD_ALLOW_SEALING,
  MFD_NOEXEC_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_GROW,
  TMPFS_MAGIC,
  HUGETLBFS_MAGIC,
  O_PATH,
} = native.constants;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const O_ACCMODE = 0o3; // open(2)'s access mode bits, as Linux numbers them

/**
 * A file seal (fcntl(2) `F_ADD_SEALS`): `'shrink'` and `'grow'` fix the size either way,
 * `'write'` forbids every write (refused with `EBUSY` while a writable mapping of it exists),
 * `'futureWrite'` (Linux 5.1) forbids new writable mappings and writes while those already
 * made keep writing, and `'seal'` forbids adding seals.
 */
export type Seal = 'shrink' | 'grow' | 'write' | 'futureWrite' | 'seal';

const SEALS: Record<Seal, number> = {
  shrink: native.constants.F_SEAL_SHRINK,
  grow: native.constants.F_SEAL_GROW,
  write: native.constants.F_SEAL_WRITE,
  futureWrite: native.constants.F_SEAL_FUTURE_WRITE,
  seal: native.constants.F_SEAL_SEAL,
};
const SEAL_NAMES = Object.keys(SEALS) as Seal[];

/** What {@link SharedMemory.share} returns: structured-cloneable, for {@link SharedMemory.from} in another thread. */
export interface SharedMemoryDescriptor extends SharedDescriptorBase {
  readonly type: 'mman.SharedMemory';
  /** The segment's name under `/dev/shm`, or `undefined` for a memfd (as {@link SharedMemory.name}). */
  readonly name: string | undefined;
  /** The segment was opened read-only here: so is the one made of it. */
  readonly readOnly: boolean;
}
const MAX_SIZE = MAX_LENGTH;
const NAME_MAX = 255;

/** Options for {@link SharedMemory.create}. */
export interface SharedMemoryCreateOptions {
  /**
   * Create a named segment `/dev/shm/<name>` (mode 0600, created exclusively) that
   * unrelated processes can {@link SharedMemory.open}, instead of an anonymous memfd. One
   * path component: no `/`, not `.` or `..`, not empty, at most 255 bytes, no NUL.
   */
  name?: string;
  /**
   * A named segment's permission bits, exactly (the umask takes nothing away): at most
   * `0o666`. Default `0o600`: the owner only.
   */
  mode?: number;
  /**
   * memfd only: also seal against growing (`F_SEAL_GROW`), so the size never changes and
   * {@link SharedMemory.grow} fails with `EPERM`. Default `false`: it may grow, never shrink.
   */
  fixedSize?: boolean;
  /**
   * A named segment only: size it without reserving its memory (ftruncate(2) alone), here and
   * in {@link SharedMemory.grow}. Default `false`: the memory is reserved (fallocate(2)) when
   * the segment is made or grown, so that a `/dev/shm` too small for it (Docker's default is
   * 64 MiB) is `ENOSPC` at this call, and the file is removed again. **Sparse risks SIGBUS**:
   * a write to a page `/dev/shm` then has no room for kills a process that maps it unguarded.
   * Reserving commits the memory at once (tmpfs has no lazy reservation); a memfd has no size
   * limit to hit, and is never reserved.
   */
  sparse?: boolean;
}

/** Options for {@link SharedMemory.open}. */
export interface SharedMemoryOpenOptions {
  /** Open it `O_RDONLY`: its mappings are read-only (`map()` then maps `PROT_READ`). Default `false`. */
  readOnly?: boolean;
}

// The memory files a segment may be: tmpfs (memfd_create, /dev/shm) and hugetlbfs.
const MEMORY_FILESYSTEMS: ReadonlySet<number> = new Set([TMPFS_MAGIC, HUGETLBFS_MAGIC]);

/** Options for {@link SharedMemory.sendTo} and {@link SharedMemory.receive}. */
export interface SocketPassOptions {
  /** Give up after this many milliseconds (`ETIMEDOUT`). Default: forever. */
  timeoutMs?: number;
}

const AF_UNIX = 1;
// What sendTo() writes beside the descriptor: the segment's name, which receive() keeps only if
// /dev/shm/<name> is the very file received. It takes a descriptor from any other sender (a C
// or Python program) with whatever it wrote.
const PAYLOAD_TAG = 'mman-shm';

// The descriptor of a connected Unix-domain net.Socket.
function unixSocketFd(socket: unknown): number {
  if (!(socket instanceof Socket)) throw invalidArgType('socket', 'an instance of net.Socket', socket);
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw invalidArgValue(
      'socket',
      '[net.Socket]',
      'must be connected, in a runtime that exposes its descriptor (Node; not Bun or Deno)',
    );
  }
  const domain = native.socketDomain(fd);
  if (domain < 0) throw systemError(domain, 'getsockopt');
  if (domain !== AF_UNIX)
    throw invalidArgValue('socket', '[net.Socket]', 'must be a Unix-domain socket: descriptors pass over AF_UNIX only');
  return fd;
}

// A wait on a socket's descriptor ends when the socket is closed in JavaScript (the wait holds
// a duplicate, which would keep the connection up and send, or take, a descriptor after all):
// the promise rejects with ERR_SOCKET_CLOSED.
async function untilClosed<T>(socket: Socket, pending: StartedJob<T> | NotStarted): Promise<T | number> {
  if (Array.isArray(pending)) throw systemError(pending[0], pending[1]);
  // One 'close' listener per socket however many calls wait on it (Node warns past ten).
  let waiting = waitingOn.get(socket);
  if (waiting === undefined) {
    const jobs = new Set<number>();
    const listener = (): void => {
      waitingOn.delete(socket);
      for (const id of jobs) native.cancelJob(id);
    };
    waiting = { jobs, listener };
    waitingOn.set(socket, waiting);
    socket.once('close', listener);
  }
  waiting.jobs.add(pending.id);
  try {
    const result = await pending.promise;
    if (result === -osConstants.errno.ECANCELED) throw mmanError('ERR_SOCKET_CLOSED');
    return result;
  } finally {
    waiting.jobs.delete(pending.id);
    if (waiting.jobs.size === 0 && waitingOn.get(socket) === waiting) {
      waitingOn.delete(socket);
      socket.off('close', waiting.listener);
    }
  }
}
const waitingOn = new WeakMap<Socket, { jobs: Set<number>; listener: () => void }>();

function socketTimeout(options: unknown): number {
  const { timeoutMs } = validateOptions<SocketPassOptions>(options); // read once: it may be a getter
  return timeoutMs === undefined ? -1 : validateInt32(timeoutMs, 'options.timeoutMs', 0);
}

/** Options for {@link SharedMemory.map}. */
export interface SharedMapOptions {
  /** First byte of the segment to map. Default 0. */
  offset?: number;
  /** Bytes to map. Default: the rest of the segment after `offset`. */
  length?: number;
  /** Map with `PROT_READ` only. Default `false` (read-write). */
  readOnly?: boolean;
  /**
   * Survive a peer truncating the segment, or `/dev/shm` running out of room: see `guard` in
   * {@link MapFileOptions}. Default: `true` unless the segment is sealed against shrinking
   * (every memfd this package makes is), since anyone who can open a named segment can
   * truncate it under every process that maps it. A segment received from a peer that is not
   * so sealed is always mapped guarded.
   */
  guard?: boolean;
  /**
   * Keep a descriptor of the segment with the mapping, for {@link Mapping.share}: see
   * {@link MapFileOptions.keepFile}. Default `false`.
   */
  keepFile?: boolean;
}

function isValidName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0') &&
    Buffer.byteLength(name) <= NAME_MAX
  );
}

function validateName(name: unknown): string {
  if (typeof name !== 'string') throw invalidArgType('options.name', 'of type string', name);
  if (!isValidName(name)) {
    throw invalidArgValue(
      'name',
      name,
      `must be one path component: not empty, not '.' or '..', no '/', no NUL, at most ${NAME_MAX} bytes`,
    );
  }
  return name;
}

function closed(): Error {
  return mmanError('ERR_SHARED_MEMORY_CLOSED');
}

const CONSTRUCT = Symbol('SharedMemory.construct');

// A SharedMemory dropped without close() gives its descriptor back when it is collected, as a
// FileHandle does (mappings made from it have their own).
const closeOnCollect = new FinalizationRegistry<number>((fd) => native.fdClose(fd));

let inheritedSegments: SharedMemory[] | undefined;

// The descriptors a SharedMemory holds are opened, sized, looked at and closed by the addon,
// never by node:fs: some runtimes' fs (Deno's) refuse a descriptor they did not open.
function check(rc: number, syscall: string, path?: string): number {
  if (rc < 0) throw systemError(rc, syscall, path);
  return rc;
}

// The system error for `rc`, its message followed by why the kernel refused, in parentheses.
function explained(rc: number, syscall: string, why: string): Error {
  const err = systemError(rc, syscall);
  err.message += ` (${why})`;
  return err;
}

// Opens a named segment's file (never following a symlink, never waiting on a FIFO planted
// there): its descriptor, once it is known to be a regular file.
function openFd(path: string, flags: number, mode: number): number {
  const opened = native.openFile(path, flags | fsConstants.O_NOFOLLOW, mode);
  if (typeof opened === 'number') throw systemError(opened, 'open', path);
  const [fd, stMode] = opened;
  if ((stMode & S_IFMT) !== S_IFREG) {
    native.fdClose(fd);
    throw mmanError('ERR_SHARED_MEMORY_BAD_DESCRIPTOR', { path });
  }
  return fd;
}

function badDescriptor(fd: number, why: string): Error {
  native.fdClose(fd);
  return mmanError('ERR_SHARED_MEMORY_BAD_DESCRIPTOR', { why });
}

// What a SharedMemory can be made of, from the kernel's own answers about the descriptor: a
// regular file of a memory filesystem, opened for reading (receive() and fromFd() alike).
// Whether it is read-only and its owner, or why not; a failed fstat throws.
function describeMemoryFile(fd: number): { readOnly: boolean; uid: number } | { why: string } {
  const described = native.describeFd(fd);
  if (typeof described === 'number') throw systemError(described, 'fstat');
  const [mode, flags, fsType, uid] = described;
  if ((flags & O_PATH) !== 0) return { why: 'an O_PATH descriptor, which cannot be mapped' };
  if ((mode & S_IFMT) !== S_IFREG) return { why: 'not a regular file' };
  if (!MEMORY_FILESYSTEMS.has(fsType)) return { why: 'a file outside tmpfs and hugetlbfs' };
  const access = flags & O_ACCMODE;
  if (access === fsConstants.O_WRONLY) return { why: 'opened write-only, which cannot be mapped' };
  return { readOnly: access === fsConstants.O_RDONLY, uid };
}

// What receive() accepts (describeMemoryFile); closes the descriptor and throws otherwise.
function checkReceived(fd: number): { readOnly: boolean; uid: number } {
  let file;
  try {
    file = describeMemoryFile(fd);
  } catch (err) {
    native.fdClose(fd);
    throw err;
  }
  if ('why' in file) throw badDescriptor(fd, file.why);
  return file;
}

// inherited() without MMAN_SHARED: a memory file just after the IPC channel, which no
// SharedMemory of this thread holds, was most likely handed over for inherited() by a parent
// that did not describe it (a cluster worker forked without shareWithCluster()'s env). Said
// once; the descriptor is left alone (it may be someone's fromFd() to take).
function warnUndescribed(): void {
  let channelFd: unknown;
  try {
    channelFd = (process as unknown as { channel?: { fd?: unknown } }).channel?.fd;
  } catch {
    return; // a process object that is not Node's own (a test runner's copy): no channel to look past
  }
  if (typeof channelFd !== 'number' || channelFd < 0) return;
  const fd = channelFd + 1;
  const described = native.describeFd(fd);
  if (typeof described === 'number' || (described[0] & S_IFMT) !== S_IFREG || !MEMORY_FILESYSTEMS.has(described[2]))
    return;
  if (native.ownsFd(fd)) return;
  process.emitWarning(
    `SharedMemory.inherited() found no ${SHARED_ENV} in the environment, but descriptor ${fd} (after the IPC channel) is a memory file: ` +
      'a cluster worker must be forked with the env shareWithCluster() returns (cluster.fork(env)). Nothing was taken',
    { code: 'MMAN_SHARED_MISSING' },
  );
}

/**
 * A segment of memory that several processes map: an anonymous `memfd_create(2)` file,
 * or a named file in `/dev/shm`. Every {@link SharedMemory.map} is `MAP_SHARED`, so what
 * one process writes, the others read, with no copies. Hand it to a child with {@link fork},
 * to `cluster` workers with {@link shareWithCluster}.
 *
 * A memfd is sealed against shrinking (`F_SEAL_SHRINK`): no process holding it can cut
 * pages from under another's mapping (which would SIGBUS it). A named segment cannot be
 * sealed: any process that can open it can truncate it.
 *
 * @example
 * using shm = SharedMemory.create(1 << 20);
 * const child = fork('worker.js', [], { share: [shm] });
 * const counters = new Int32Array(shm.map().buffer);
 */
export class SharedMemory implements Disposable {
  #fd: number;
  #name: string | undefined;
  #readOnly: boolean;
  #unlinked = false;
  #fromPeer = false; // received from another process: mapped guarded unless sealed against shrinking
  #sparse = false; // a named segment made with options.sparse: grow() does not reserve either

  // Private: the type checker refuses `new SharedMemory()`; the token refuses it from JavaScript.
  // Segments come from create(), open(), from(), fromFd(), receive() and inherited().
  private constructor(token: typeof CONSTRUCT, fd: number, name: string | undefined, readOnly = false) {
    if (token !== CONSTRUCT) throw illegalConstructor('SharedMemory.create(), open() or fromFd()');
    this.#fd = fd;
    this.#name = name;
    this.#readOnly = readOnly;
    native.ownFd(fd); // closed with this thread if never closed (a worker terminated, say)
    closeOnCollect.register(this, fd, this);
  }

  /**
   * Creates a zero-filled segment of `size` bytes: a memfd (`MFD_CLOEXEC |
   * MFD_ALLOW_SEALING`, and `MFD_NOEXEC_SEAL` where the kernel has it (Linux 6.3): never
   * executable; sealed with `F_SEAL_SHRINK`), or with `name` a `/dev/shm` file created with
   * `O_CREAT | O_EXCL` and exactly `options.mode` (default 0600) whatever the umask
   * (`EEXIST` if taken).
   */
  static create(size: number, options?: SharedMemoryCreateOptions): SharedMemory {
    validateInteger(size, 'size', 1, MAX_SIZE);
    const opts = validateOptions<SharedMemoryCreateOptions>(options);
    const fixedSize = validateBoolean(opts.fixedSize, 'options.fixedSize');
    const mode = opts.mode === undefined ? 0o600 : validateInt32(opts.mode, 'options.mode', 0, 0o777);
    if ((mode & 0o111) !== 0) throw invalidArgValue('options.mode', mode, 'must not make shared memory executable');
    if (opts.mode !== undefined && opts.name === undefined)
      throw invalidArgValue('options.mode', mode, 'is for a named segment: a memfd has no path to open');
    const sparse = validateBoolean(opts.sparse, 'options.sparse');
    if (sparse && opts.name === undefined)
      throw invalidArgValue('options.sparse', sparse, 'is for a named segment: a memfd is never reserved');
    if (opts.name !== undefined) {
      const name = validateName(opts.name);
      if (fixedSize)
        throw invalidArgValue('options.fixedSize', fixedSize, 'needs a memfd: a /dev/shm file cannot be sealed');
      const path = join(SHM_DIRECTORY, name);
      const fd = openFd(
        path,
        fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW,
        0o600, // created for the owner only, widened below: never more open than asked, even for a moment
      );
      try {
        check(native.fdChmod(fd, mode), 'fchmod'); // exactly `mode`: the umask takes nothing away
        sizeFile(fd, 0, size, sparse, path); // ENOSPC here, not SIGBUS at a write
      } catch (err) {
        removeCreated(path, fd);
        native.fdClose(fd);
        throw err;
      }
      const shm = new SharedMemory(CONSTRUCT, fd, name);
      shm.#sparse = sparse;
      return shm;
    }
    let fd = native.memfdCreate('mman', MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
    if (fd === -osConstants.errno.EINVAL) fd = native.memfdCreate('mman', MFD_CLOEXEC | MFD_ALLOW_SEALING); // before 6.3
    if (fd < 0) throw systemError(fd, 'memfd_create');
    try {
      check(native.fdTruncate(fd, size), 'ftruncate');
      check(native.addSeals(fd, F_SEAL_SHRINK | (fixedSize ? F_SEAL_GROW : 0)), 'fcntl');
    } catch (err) {
      native.fdClose(fd);
      throw err;
    }
    return new SharedMemory(CONSTRUCT, fd, undefined);
  }

  /**
   * Opens the existing named segment `/dev/shm/<name>`, read-write unless `readOnly`
   * (`ENOENT` if there is none, `EACCES` if its mode forbids it).
   */
  static open(name: string, options?: SharedMemoryOpenOptions): SharedMemory {
    const valid = validateName(name);
    const readOnly = validateBoolean(validateOptions<SharedMemoryOpenOptions>(options).readOnly, 'options.readOnly');
    const access = readOnly ? fsConstants.O_RDONLY : fsConstants.O_RDWR;
    const fd = openFd(join(SHM_DIRECTORY, valid), access | fsConstants.O_NOFOLLOW, 0);
    return new SharedMemory(CONSTRUCT, fd, valid, readOnly);
  }

  /**
   * A plain object to post to a worker thread (`postMessage`, `workerData`), where
   * {@link SharedMemory.from} makes of it a SharedMemory of the same segment. A duplicate of
   * the descriptor waits in this process for `options.timeoutMs` (default 60 s): received
   * once, by one thread; closed if never received. Share again for each receiver.
   */
  share(options?: ShareOptions): SharedMemoryDescriptor {
    const ttl = shareTimeout(options);
    return {
      type: 'mman.SharedMemory',
      id: putAside(this.fd, ttl),
      pid: process.pid,
      name: this.#name,
      readOnly: this.#readOnly,
    };
  }

  /**
   * In another thread of the same process: the SharedMemory that {@link SharedMemory.share}
   * described, with a descriptor of its own (closed by its {@link SharedMemory.close}).
   * `ERR_SHARED_DESCRIPTOR_TAKEN` once received or expired, `ERR_SHARED_DESCRIPTOR_FOREIGN`
   * in another process.
   */
  static from(descriptor: SharedMemoryDescriptor): SharedMemory {
    const { fd, d } = takeAside<SharedMemoryDescriptor>(descriptor, 'mman.SharedMemory');
    // A name is only ever one path component (the descriptor object is plain data: anything
    // in this process could have changed it before it got here).
    const name = typeof d.name === 'string' && isValidName(d.name) ? d.name : undefined;
    return new SharedMemory(CONSTRUCT, fd, name, d.readOnly === true);
  }

  /**
   * Sends the segment to the process at the other end of a connected Unix-domain socket:
   * a duplicate of its descriptor rides on one small message (sendmsg(2) `SCM_RIGHTS`),
   * with its name and mode; {@link SharedMemory.receive} there makes a SharedMemory of it.
   * How Linux programs hand memory around (Wayland, systemd); any process can receive it,
   * in any language (`socket.recv_fds` in Python). The descriptor carries the segment's
   * seals: seal it first (`'futureWrite'`) to hand out memory the receiver cannot write.
   *
   * Nothing else may be written to the socket meanwhile (its queue must be empty:
   * `ERR_INVALID_STATE` otherwise). Node only: Bun and Deno do not expose a socket's
   * descriptor.
   *
   * @example
   * const socket = net.connect('/run/app.sock');
   * await once(socket, 'connect');
   * await shm.sendTo(socket);
   */
  async sendTo(socket: Socket, options?: SocketPassOptions): Promise<void> {
    // The options first: a getter run after the descriptors were looked up could close them, and
    // their numbers be another file's or socket's by the time they are sent.
    const timeout = socketTimeout(options);
    const fd = this.fd;
    const sock = unixSocketFd(socket);
    if (socket.writableLength > 0) throw mmanError('ERR_INVALID_STATE', 'socket-queued');
    const payload = JSON.stringify({ [PAYLOAD_TAG]: 1, name: this.#name ?? null });
    const rc = await untilClosed(socket, native.sendFd(sock, fd, payload, timeout));
    if (rc < 0) throw systemError(rc, 'sendmsg');
  }

  /**
   * Receives a segment sent over a connected Unix-domain socket by {@link SharedMemory.sendTo}
   * (or by any process that sends one memfd or `/dev/shm` descriptor with `SCM_RIGHTS`).
   * Waits for the message on the threadpool. The socket is paused first and left paused:
   * call this before anything arrives on it (a server: `net.createServer({ pauseOnConnect:
   * true })`), since a descriptor that came with data Node already read is lost
   * (`ERR_SOCKET_ALREADY_READ`). A message without a descriptor rejects with
   * `ERR_SHARED_MEMORY_NO_DESCRIPTOR`, a descriptor that is not a memory file with
   * `ERR_SHARED_MEMORY_BAD_DESCRIPTOR` (it is closed); the peer closing first with
   * `ECONNRESET`. Node only.
   *
   * The peer is a stranger: what it sent is checked with the kernel, never taken from its
   * message. Only a regular file on tmpfs or hugetlbfs (a memfd, a `/dev/shm` file) opened for
   * reading is accepted; the segment is read-only if the descriptor is (`O_RDONLY`), whatever
   * the message says; it keeps a name only if `/dev/shm/<name>` is that very file (same device
   * and inode) and the peer owns it (its credentials, `SO_PEERCRED`) or is root, so
   * {@link SharedMemory.unlink} never removes a segment the peer could not have removed
   * itself; and unless it is sealed against shrinking (`F_SEAL_SHRINK`), every mapping of it
   * is guarded, so a peer that truncates it cannot kill this process.
   */
  static async receive(socket: Socket, options?: SocketPassOptions): Promise<SharedMemory> {
    const timeout = socketTimeout(options); // first: a getter may destroy the socket
    const sock = unixSocketFd(socket);
    if (socket.readableLength > 0) {
      throw mmanError('ERR_SOCKET_ALREADY_READ');
    }
    socket.pause();
    const handle = (socket as unknown as { _handle: { reading?: boolean; readStop?: () => number } })._handle;
    if (handle.reading === true && typeof handle.readStop === 'function') {
      handle.reading = false;
      handle.readStop(); // libuv must not read: it would drop the descriptor
    }
    const got = await untilClosed(socket, native.recvFd(sock, timeout));
    if (typeof got === 'number') {
      if (got === -osConstants.errno.EBADMSG) throw mmanError('ERR_SHARED_MEMORY_NO_DESCRIPTOR');
      throw systemError(got, 'recvmsg');
    }
    const [fd, payload, peerUid] = got;
    // The descriptor says what it is; the payload is a stranger's word. A name is kept from it
    // only if /dev/shm/<name> is this very file and the peer could remove it itself (it owns
    // the file, or is root): unlink() here must never remove what the peer could only read.
    const { readOnly, uid } = checkReceived(fd);
    const mayName = peerUid === 0 || peerUid === uid;
    let name: string | undefined;
    try {
      const parsed = JSON.parse(payload) as unknown;
      const claimed =
        parsed !== null && typeof parsed === 'object' && (parsed as Record<string, unknown>)[PAYLOAD_TAG] === 1
          ? (parsed as Record<string, unknown>).name
          : undefined;
      if (mayName && typeof claimed === 'string' && native.isFileAt(fd, join(SHM_DIRECTORY, validateName(claimed))))
        name = claimed;
    } catch {
      // another program's payload, or a name that is not one: the descriptor is what counts
    }
    const shm = new SharedMemory(CONSTRUCT, fd, name, readOnly);
    shm.#fromPeer = true;
    return shm;
  }

  /**
   * Adds seals (fcntl(2) `F_ADD_SEALS`), for a memfd. What the kernel refuses comes back as it
   * says it: `EBUSY` for `'write'` while a writable mapping exists (use `'futureWrite'`),
   * `EPERM` once `'seal'` is set and for a named segment (a `/dev/shm` file, which the kernel
   * makes sealed against sealing), each with the reason in its message; `EINVAL` for a seal
   * the kernel does not know.
   *
   * @example
   * shm.seal('shrink', 'grow', 'futureWrite', 'seal'); // readers may map it, never write it
   */
  seal(...seals: Seal[]): void {
    const fd = this.fd;
    let bits = 0;
    seals.forEach((seal, i) => {
      bits |= SEALS[validateOneOf(seal, `seals[${i}]`, SEAL_NAMES)];
    });
    const rc = native.addSeals(fd, bits);
    if (rc === -osConstants.errno.EPERM) {
      throw explained(
        rc,
        'fcntl',
        this.#name !== undefined
          ? 'a named segment cannot be sealed: only a segment made without a name, a memfd, takes seals'
          : "the segment is sealed with 'seal': no seal can be added",
      );
    }
    check(rc, 'fcntl');
  }

  /** The seals set on the segment (fcntl(2) `F_GET_SEALS`): `[]` for a file that cannot be sealed. */
  get seals(): Seal[] {
    const rc = native.getSeals(this.fd);
    if (rc === -osConstants.errno.EINVAL) return [];
    const bits = check(rc, 'fcntl');
    return SEAL_NAMES.filter((name) => (bits & SEALS[name]) !== 0);
  }

  /** True for a segment opened with `readOnly`: its mappings are read-only. */
  get readOnly(): boolean {
    return this.#readOnly;
  }

  /**
   * Wraps an open file descriptor of a memfd or shared-memory file (one received through
   * `stdio`, or opened from `/proc/<pid>/fd/<n>`): a regular file on tmpfs or hugetlbfs, open
   * for reading, else `ERR_INVALID_ARG_VALUE` (a disk file is {@link mapFile}'s). The
   * SharedMemory owns `fd` from now on: {@link SharedMemory.close} closes it. `name` records
   * the `/dev/shm` name it has, if any, so that {@link SharedMemory.unlink} can remove it.
   */
  static fromFd(fd: number, name?: string): SharedMemory {
    validateInt32(fd, 'fd', 0);
    if (name !== undefined) validateName(name);
    // Two owners would both close it, the second time whatever file took its number meanwhile.
    if (native.ownsFd(fd))
      throw invalidArgValue(
        'fd',
        fd,
        'is held already by a SharedMemory of this thread (fromFd() takes ownership): use that one, or duplicate the descriptor',
      );
    // A disk file is mapFile()'s: its pages are written back, and it is not what fork(),
    // share() or a peer hand over.
    const file = describeMemoryFile(fd);
    if ('why' in file)
      throw invalidArgValue(
        'fd',
        fd,
        `must be a memfd or a file in /dev/shm (tmpfs or hugetlbfs) opened for reading (this one: ${file.why}); map a disk file with mapFile()`,
      );
    return new SharedMemory(CONSTRUCT, fd, name, file.readOnly);
  }

  /**
   * In a child started by {@link fork}, or a `cluster` worker whose primary called
   * {@link shareWithCluster} and passed its `env` to `cluster.fork(env)`: the segments the
   * parent shared, in the same order. Empty in any other process (a plain `spawn`, a worker
   * forked without that `env`, the primary itself), and in a worker thread: take them in the
   * main thread, and hand them to workers with {@link SharedMemory.share}. Made once; their fds
   * are marked close-on-exec so they go no further than this process.
   *
   * `ERR_SHARED_MEMORY_BAD_ENVIRONMENT` when `MMAN_SHARED` is not the list fork() writes, or
   * names a descriptor that is not open here or not a memory file (the parent set the variable
   * without passing the descriptors in `stdio`); no descriptor is touched then. A process
   * started with a memory file just after its IPC channel but no `MMAN_SHARED` (a cluster
   * worker forked without the `env` of {@link shareWithCluster}) gets `[]` and a warning
   * (`MMAN_SHARED_MISSING`), once.
   */
  static inherited(): SharedMemory[] {
    if (inheritedSegments !== undefined) return inheritedSegments;
    // The descriptors are the process's, handed to its main thread: a worker (which starts
    // with a copy of the environment) must not take them as its own, and close them with it.
    if (!isMainThread) return (inheritedSegments = []);
    const described = process.env[SHARED_ENV];
    delete process.env[SHARED_ENV]; // a grandchild must not take our fd numbers for its own
    inheritedSegments = [];
    if (described === undefined) {
      warnUndescribed();
      return inheritedSegments;
    }
    // Checked whole before any descriptor is touched: a malformed list (another program's
    // variable, a hand-written one) must not make this process take stdin for a segment.
    const bad = (why: string): Error => mmanError('ERR_SHARED_MEMORY_BAD_ENVIRONMENT', SHARED_ENV, why);
    let list: unknown;
    try {
      list = JSON.parse(described);
    } catch {
      throw bad('is not JSON');
    }
    if (!Array.isArray(list)) throw bad('is not a list');
    const entries = list.map((entry: unknown, i) => {
      const { fd, name } = (entry ?? {}) as { fd?: unknown; name?: unknown };
      if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 3 || fd > 2 ** 31 - 1)
        throw bad(`has no descriptor of 3 or more at [${i}]`);
      if (name !== undefined && (typeof name !== 'string' || !isValidName(name))) throw bad(`has a bad name at [${i}]`);
      return { fd, name: name as string | undefined };
    });
    const named = new Set<number>();
    for (const { fd } of entries) {
      if (named.has(fd)) throw bad(`names descriptor ${fd} twice`); // before any is taken
      named.add(fd);
    }
    for (const { fd } of entries) {
      const described = native.describeFd(fd);
      if (described === -osConstants.errno.EBADF)
        throw bad(
          `names descriptor ${fd}, which is not open in this process (the parent must pass it in stdio after 'ipc': fork({ share }), or shareWithCluster() before cluster.fork())`,
        );
      if (typeof described === 'number' || (described[0] & S_IFMT) !== S_IFREG || !MEMORY_FILESYSTEMS.has(described[2]))
        throw bad(`names descriptor ${fd}, which is not a memfd or a file in /dev/shm`);
    }
    for (const { fd, name } of entries) {
      const rc = native.setCloexec(fd, true);
      if (rc < 0) throw systemError(rc, 'fcntl');
      inheritedSegments.push(SharedMemory.fromFd(fd, name));
    }
    return inheritedSegments;
  }

  /** The file descriptor. Throws `ERR_SHARED_MEMORY_CLOSED` after {@link SharedMemory.close}. */
  get fd(): number {
    if (this.#fd < 0) throw closed();
    return this.#fd;
  }

  /** The size in bytes, as the kernel has it now (another process may have grown it). */
  get size(): number {
    return statFd(this.fd).size;
  }

  /** The name in `/dev/shm`, or `undefined` for a memfd. */
  get name(): string | undefined {
    return this.#name;
  }

  /** True once {@link SharedMemory.close} has run. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Maps `[offset, offset + length)` of the segment, `MAP_SHARED`, read-write unless
   * `readOnly` (the default for a segment opened read-only; a `futureWrite`- or
   * `write`-sealed one refuses a writable mapping with `EPERM`). The mapping outlives
   * {@link SharedMemory.close}; unmap it on its own.
   */
  map(options?: SharedMapOptions): Mapping {
    // Every option read once, before the descriptor is looked up: a getter may close it, and
    // its number be another file's by the time it is mapped.
    const {
      offset,
      length,
      readOnly: readOnlyOption,
      guard: guardOption,
      keepFile: keepOption,
    } = validateOptions<SharedMapOptions>(options);
    const fd = this.fd;
    const readOnly = validateBoolean(readOnlyOption, 'options.readOnly', this.#readOnly);
    const seals = native.getSeals(fd);
    const sealed = seals >= 0 && (seals & F_SEAL_SHRINK) !== 0;
    const guard = validateBoolean(guardOption, 'options.guard', !sealed);
    if (!guard && this.#fromPeer && !sealed)
      throw invalidArgValue(
        'options.guard',
        false,
        'is refused for a segment from a peer that can still shrink it (not sealed with F_SEAL_SHRINK): such a segment is always mapped guarded',
      );
    const keepFile = validateBoolean(keepOption, 'options.keepFile');
    return mapFile(fd, { mode: readOnly ? 'r' : 'r+', offset, length, guard, keepFile });
  }

  /**
   * Grows the segment to `newSize` bytes (ftruncate(2)); the new bytes are zero. Mappings
   * already made keep their length: map again to see the new bytes. Shrinking is refused,
   * `ERR_OUT_OF_RANGE` before the call; growing a segment sealed with `'grow'` (`fixedSize`)
   * is `EPERM`, with the reason in its message.
   */
  grow(newSize: number): void {
    const fd = this.fd;
    const size = this.size;
    validateInteger(newSize, 'newSize', size, MAX_SIZE);
    if (newSize === size) return;
    // A named segment reserves what it grows by (unless made sparse): ENOSPC here, not SIGBUS.
    if (this.#name !== undefined) {
      sizeFile(fd, size, newSize, this.#sparse, join(SHM_DIRECTORY, this.#name));
      return;
    }
    const rc = native.fdTruncate(fd, newSize);
    if (rc === -osConstants.errno.EPERM && this.seals.includes('grow'))
      throw explained(rc, 'ftruncate', "the segment is sealed against growing: 'grow', which fixedSize sets");
    check(rc, 'ftruncate');
  }

  /** Closes the fd. Idempotent. Mappings already made stay valid; a named segment keeps its name. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    closeOnCollect.unregister(this);
    check(native.fdClose(fd), 'close');
  }

  /**
   * Removes the name from `/dev/shm` (shm_unlink(3)); the memory lives on while any process
   * has it open or mapped. Idempotent; nothing to do for a memfd.
   */
  unlink(): void {
    if (this.#name === undefined || this.#unlinked) return;
    unlinkSync(join(SHM_DIRECTORY, this.#name));
    this.#unlinked = true;
  }

  /** Same as {@link SharedMemory.close}, for `using`. Does not unlink a named segment. */
  [dispose](): void {
    this.close();
  }
}

/** Options for {@link fork}: those of `child_process.fork`, plus `share`. */
export interface SharedForkOptions extends ForkOptions {
  /** Segments to hand to the child; it gets them back with {@link SharedMemory.inherited}. */
  share?: readonly SharedMemory[];
}

// What hands `share` to a Node child, for fork() and shareWithCluster() alike: the child's stdio
// (`given`, or the default child_process.fork() makes of `silent`) with the descriptors `fds`
// appended after it, and the MMAN_SHARED value that describes them by their numbers there.
function stdioSharing(
  share: unknown,
  fds: (shm: SharedMemory) => number,
  given: unknown,
  silent: unknown,
  names: { share: string; stdio: string },
): { stdio: StdioOptions; described: string } {
  if (!Array.isArray(share)) throw invalidArgType(names.share, 'an array of SharedMemory', share);
  share.forEach((shm, i) => {
    if (!(shm instanceof SharedMemory))
      throw invalidArgType(`${names.share}[${i}]`, 'an instance of SharedMemory', shm);
  });
  const stdio: StdioOptions = Array.isArray(given)
    ? ([...(given as unknown[])] as StdioOptions)
    : typeof given === 'string'
      ? ([given, given, given, 'ipc'] as StdioOptions)
      : silent === true
        ? ['pipe', 'pipe', 'pipe', 'ipc']
        : ['inherit', 'inherit', 'inherit', 'ipc'];
  if (!stdio.includes('ipc')) throw invalidArgValue(names.stdio, given, "must be an array that includes 'ipc'");
  const described = (share as SharedMemory[]).map((shm, i) => ({
    fd: stdio.length + i,
    size: shm.size,
    ...(shm.name !== undefined ? { name: shm.name } : {}),
  }));
  for (const shm of share as SharedMemory[]) (stdio as unknown[]).push(fds(shm));
  return { stdio, described: JSON.stringify(described) };
}

/**
 * `child_process.fork`, handing the child the segments in `options.share`: their fds are
 * appended to the child's `stdio` after `'ipc'`, and `MMAN_SHARED` in its environment
 * lists them (`[{"fd":4,"size":65536}]`), which {@link SharedMemory.inherited} reads.
 * For `cluster.fork()` workers, see {@link shareWithCluster}.
 *
 * By hand, the same with `spawn`: put the fds in `stdio` (`[0, 1, 2, 'ipc', shm.fd]` gives
 * the child fd 4) and call `SharedMemory.fromFd(4)` in the child. An unrelated process
 * with the right to ptrace this one can `open('/proc/<pid>/fd/<n>')` and map that.
 */
export function fork(
  modulePath: string | URL,
  args?: readonly string[] | SharedForkOptions,
  options?: SharedForkOptions,
): ChildProcess {
  if (args !== undefined && !Array.isArray(args)) {
    if (options !== undefined) throw invalidArgType('args', 'an instance of Array', args);
    options = args as SharedForkOptions;
    args = undefined;
  }
  const opts = validateOptions<SharedForkOptions>(options);
  const { stdio, described } = stdioSharing(opts.share ?? [], (shm) => shm.fd, opts.stdio, opts.silent, {
    share: 'options.share',
    stdio: 'options.stdio',
  });
  const forkOptions: SharedForkOptions = { ...opts };
  delete forkOptions.share; // not a child_process option
  return forkProcess(modulePath, (args ?? []) as string[], {
    ...forkOptions,
    stdio,
    env: { ...(opts.env ?? process.env), [SHARED_ENV]: described },
  });
}

/** What {@link shareWithCluster} set up: the environment every `cluster.fork(env)` must get. */
export interface ClusterSharing {
  /**
   * Pass it to every `cluster.fork(env)`, a worker forked again after one died included (merge
   * variables of your own into a copy): `MMAN_SHARED`, as {@link fork} writes it.
   */
  readonly env: { readonly MMAN_SHARED: string };
  /**
   * What was given to `cluster.setupPrimary()`: your settings, with `stdio` ending in the
   * segments' descriptors after `'ipc'`.
   */
  readonly settings: Readonly<ClusterSettings>;
}

// The duplicates the cluster's settings name (closed when shareWithCluster() replaces them), and
// the stdio they were appended to: a second call starts again from that, not from its own.
let clusterShared: { fds: number[]; base: unknown; stdio: StdioOptions } | undefined;

/**
 * Hands segments to the workers `cluster.fork()` starts, as {@link fork} hands them to a
 * child: calls `cluster.setupPrimary(settings)` with each segment's descriptor appended to the
 * workers' `stdio` after `'ipc'`, and returns the environment to give every `cluster.fork(env)`
 * (`cluster.setupPrimary()` has no `env`; a worker forked without it finds nothing). In a
 * worker, {@link SharedMemory.inherited} returns the segments in the order of `share`, marked
 * close-on-exec so that they go no further.
 *
 * The descriptors the workers get are duplicates held by the cluster's settings, so a worker
 * forked later (one started again after another died) gets them even if this process closed
 * its `SharedMemory` meanwhile. Calling it again replaces the segments (and closes the former
 * duplicates): use the `env` it returns from then on. Like any `cluster.setupPrimary()` call,
 * the first one fixes `cluster.schedulingPolicy`: set that before. Only in the primary
 * (`cluster.isPrimary`), else `ERR_CLUSTER_NOT_PRIMARY`.
 *
 * @example
 * const shm = SharedMemory.create(1 << 20);
 * const { env } = shareWithCluster([shm]);
 * for (let i = 0; i < 4; i++) cluster.fork(env);
 * cluster.on('exit', () => cluster.fork(env)); // a new worker gets the segment too
 * // in a worker: const [shm] = SharedMemory.inherited();
 */
export function shareWithCluster(share: readonly SharedMemory[], settings?: ClusterSettings): ClusterSharing {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only by the one call that uses it
  const cluster = require('node:cluster') as Cluster;
  if (!cluster.isPrimary) throw mmanError('ERR_CLUSTER_NOT_PRIMARY');
  const opts = validateOptions<ClusterSettings>(settings, 'settings');
  const current = cluster.settings as ClusterSettings;
  // The workers' stdio as it stands, without segments a call before appended.
  const given =
    opts.stdio !== undefined
      ? opts.stdio
      : clusterShared !== undefined && current.stdio === clusterShared.stdio
        ? clusterShared.base
        : current.stdio;
  const fds: number[] = [];
  let result;
  try {
    result = stdioSharing(
      share,
      (shm) => {
        // A duplicate (close-on-exec here, as every descriptor the addon hands out), owned by this thread.
        const id = native.shareFd(shm.fd, 60_000);
        if (typeof id === 'number') throw systemError(id, 'fcntl');
        const fd = native.takeFd(id);
        if (fd < 0) throw systemError(fd, 'fcntl');
        fds.push(fd);
        return fd;
      },
      given,
      opts.silent ?? current.silent,
      { share: 'share', stdio: 'settings.stdio' },
    );
  } catch (err) {
    for (const fd of fds) native.fdClose(fd);
    throw err;
  }
  const applied: ClusterSettings = { ...opts, stdio: result.stdio as ClusterSettings['stdio'] };
  cluster.setupPrimary(applied);
  const former = clusterShared;
  clusterShared = { fds, base: given, stdio: cluster.settings.stdio as StdioOptions };
  if (former !== undefined) for (const fd of former.fds) native.fdClose(fd);
  return { env: { [SHARED_ENV]: result.described }, settings: applied };
}
