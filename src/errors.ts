// Errors shaped like Node's own: system errors carry code/errno/syscall (from libuv's
// table via node:util, never a hand-written one); bad arguments are TypeError/RangeError
// with the ERR_* codes of lib/internal/errors.js; mapping state has codes of its own.
import { getSystemErrorMap, inspect } from 'node:util';

/** A failed system call, as `fs` reports one: `EACCES: permission denied, mmap`. */
export interface SystemError extends Error {
  /** The errno name, e.g. `'EACCES'`. */
  code: string;
  /** The negative errno, e.g. `-13`. */
  errno: number;
  /** The system call that failed, e.g. `'mmap'`. */
  syscall: string;
  /** The file involved, when there was one. */
  path?: string;
}

// Every error code of mman's own, with its class and its message, in one place (Node's E() in
// lib/internal/errors.js): a call site names the code and passes what the message shows.
// docs/safety.md documents each, in the same order.
const CODES = {
  ERR_MAPPING_CLOSED: [Error, () => 'The mapping has been unmapped'],
  ERR_MAPPING_EMPTY_FILE: [
    Error,
    (path?: string) =>
      `Cannot map an empty file${path ? ` '${path}'` : ''}: any access would raise SIGBUS (options.create extends it)`,
  ],
  ERR_MAPPING_EXTERNAL_BUFFERS_FORBIDDEN: [
    Error,
    (why: string) =>
      `This runtime cannot put an ArrayBuffer over mapped memory: ${why}. mman maps nothing here; read the file with fs instead`,
  ],
  ERR_MAPPING_TRUNCATED: [
    Error,
    (pages: number) =>
      `The file under this mapping was truncated: the guard replaced the ${pages} page(s) past its end with zero pages when one was touched; writes to them are lost`,
  ],
  ERR_MAPPING_PAGE_LOST: [
    Error,
    (pages: number, reason: string, description: string, offset: number, end: number, truncated: number) =>
      `${pages} page(s) of this mapping could not be backed by its file (${reason}: ${description}) in bytes [${offset}, ${end}): they read as zeros, and what was written to them is lost` +
      (truncated !== 0 ? `; ${truncated} more lay past the end of the file` : ''),
  ],
  ERR_MAPPING_LIMIT: [
    Error,
    (limit: { areas: number; max: number; reserve: number } | { guardSlots: number }) =>
      'guardSlots' in limit
        ? `The SIGBUS guard's table is full: it holds ${limit.guardSlots} mappings of this process at once. Unmap some, or map without guard`
        : `Too many mappings: this process has ${limit.areas} memory areas, and the kernel allows ${limit.max} (the sysctl vm.max_map_count); mman keeps the last ${limit.reserve} for the runtime's own allocations. Unmap some, or raise vm.max_map_count`,
  ],
  ERR_MAPPING_READ_ONLY: [
    Error,
    (what: string) =>
      `${what} writes to the memory, and this mapping is read-only: a write would kill the process with SIGSEGV. Map it read-write`,
  ],
  ERR_MAPPING_INACCESSIBLE: [
    Error,
    () =>
      'This mapping is not readable (protect() took Prot.Read away): a read would kill the process with SIGSEGV. Make it readable first',
  ],
  ERR_MAPPING_NOT_SHAREABLE: [
    Error,
    (why: 'shared-anonymous' | 'private' | 'no-file') =>
      ({
        'shared-anonymous':
          'A shared anonymous mapping has no file another thread can map: use SharedMemory and shm.share()',
        private:
          "A private mapping's pages are this thread's own copy: only a shared file or SharedMemory mapping can be shared",
        'no-file':
          "This mapping does not keep its file's descriptor, which share() hands over: map it with { keepFile: true }",
      })[why],
  ],
  ERR_SHARED_MEMORY_CLOSED: [Error, () => 'The shared memory has been closed'],
  ERR_SHARED_MEMORY_NO_DESCRIPTOR: [Error, () => 'The peer sent a message without a descriptor'],
  ERR_SHARED_MEMORY_BAD_DESCRIPTOR: [
    Error,
    (what: { path: string } | { why: string }) =>
      'path' in what
        ? `'${what.path}' is not a shared memory segment: not a regular file`
        : `The peer sent a descriptor that is not a memfd or a file in /dev/shm (${what.why}): it was closed`,
  ],
  ERR_SHARED_MEMORY_BAD_ENVIRONMENT: [
    Error,
    (variable: string, why: string) =>
      `${variable} ${why}: it must be the JSON list fork() writes, [{"fd": <3 or more>, "name"?: <name>}]`,
  ],
  ERR_CLUSTER_NOT_PRIMARY: [
    Error,
    () =>
      'This process is a cluster worker: the primary shares segments with its workers (shareWithCluster() before cluster.fork()), and a worker takes them with SharedMemory.inherited()',
  ],
  ERR_SHARED_DESCRIPTOR_TAKEN: [
    Error,
    () =>
      'This descriptor was received already, or it expired (options.timeoutMs of share()): share() again for each receiver',
  ],
  ERR_SHARED_DESCRIPTOR_FOREIGN: [
    Error,
    (pid: number) =>
      `This descriptor was made by process ${pid}: share() hands memory to threads of the same process; for another process use fork({ share }), a name, or shm.sendTo(socket)`,
  ],
  ERR_SOCKET_ALREADY_READ: [
    Error,
    () =>
      'Data was already read from this socket, and any descriptor with it lost: receive() before anything arrives (net.createServer({ pauseOnConnect: true }))',
  ],
  ERR_SOCKET_CLOSED: [Error, () => 'The socket was closed while waiting: nothing was sent or received'],
  ERR_INVALID_STATE: [
    Error,
    (state: 'socket-queued' | 'nothing-reserved' | 'uncommitted') =>
      ({
        'socket-queued': 'The socket has data queued: send the segment once it has drained',
        'nothing-reserved': 'No message is reserved: call reserve() before commit()',
        uncommitted: 'A reserved message is not committed yet: call commit() first',
      })[state],
  ],
  ERR_MUTEX_DEADLOCK: [Error, () => 'This thread holds the mutex already: it is not recursive'],
  ERR_MUTEX_NOT_OWNER: [
    Error,
    (self: number, holder: number) => `This thread (${self}) does not hold the mutex (held by ${holder || 'no one'})`,
  ],
  ERR_INVALID_RETURN_VALUE: [
    TypeError,
    () =>
      'The function given to withLock() returned a promise: the lock was released before it settled; use withLockAsync() for an async function',
  ],
  ERR_MUTEX_TIMED_OUT: [
    Error,
    (ms: number, holder: number) =>
      `The mutex was not acquired within ${ms} ms (held by ${holder || 'no one'} when the time ran out): nothing was run`,
  ],
  ERR_RING_BUFFER_CLOSED: [Error, () => 'The ring buffer has been closed'],
  ERR_RING_BUFFER_ENDED: [
    Error,
    () => 'The stream was ended (end() was called on this ring buffer): nothing more can be written',
  ],
  ERR_ILLEGAL_CONSTRUCTOR: [TypeError, (use: string) => `Illegal constructor: use ${use}`],
  ERR_WORKER_TERMINATING: [Error, (call: string) => `This worker is being terminated: ${call} gave up waiting`],
  ERR_MMAN_ADDON_NOT_FOUND: [Error, (what: string, how: string) => `mman has no native addon ${what}. ${how}`],
  ERR_MMAN_ADDON_LOAD_FAILED: [
    Error,
    (what: string, how: string) => `mman could not load its native addon ${what}. ${how}`,
  ],
} as const satisfies Record<string, readonly [ErrorConstructor, (...args: never[]) => string]>;

type Codes = typeof CODES;

/** Error codes of their own that mman throws, beside Node's `ERR_*` argument codes (docs/safety.md). */
export type MmanErrorCode =
  | 'ERR_MAPPING_CLOSED'
  | 'ERR_MAPPING_EMPTY_FILE'
  | 'ERR_MAPPING_EXTERNAL_BUFFERS_FORBIDDEN'
  | 'ERR_MAPPING_TRUNCATED'
  | 'ERR_MAPPING_PAGE_LOST'
  | 'ERR_MAPPING_LIMIT'
  | 'ERR_MAPPING_READ_ONLY'
  | 'ERR_MAPPING_INACCESSIBLE'
  | 'ERR_MAPPING_NOT_SHAREABLE'
  | 'ERR_SHARED_MEMORY_CLOSED'
  | 'ERR_SHARED_MEMORY_NO_DESCRIPTOR'
  | 'ERR_SHARED_MEMORY_BAD_DESCRIPTOR'
  | 'ERR_SHARED_MEMORY_BAD_ENVIRONMENT'
  | 'ERR_CLUSTER_NOT_PRIMARY'
  | 'ERR_SHARED_DESCRIPTOR_TAKEN'
  | 'ERR_SHARED_DESCRIPTOR_FOREIGN'
  | 'ERR_SOCKET_ALREADY_READ'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_INVALID_STATE'
  | 'ERR_MUTEX_DEADLOCK'
  | 'ERR_MUTEX_NOT_OWNER'
  | 'ERR_MUTEX_TIMED_OUT'
  | 'ERR_INVALID_RETURN_VALUE'
  | 'ERR_RING_BUFFER_CLOSED'
  | 'ERR_RING_BUFFER_ENDED'
  | 'ERR_ILLEGAL_CONSTRUCTOR'
  | 'ERR_WORKER_TERMINATING'
  | 'ERR_MMAN_ADDON_NOT_FOUND'
  | 'ERR_MMAN_ADDON_LOAD_FAILED'
  | 'ABORT_ERR';

// The public list and the registry name the same codes (ABORT_ERR is abortError()'s): else this
// line does not compile.
const sameCodes: [Exclude<keyof Codes, MmanErrorCode>, Exclude<MmanErrorCode, keyof Codes | 'ABORT_ERR'>] extends [
  never,
  never,
]
  ? true
  : never = true;
void sameCodes;

let systemErrorMap: Map<number, [string, string]> | undefined;

// Node prints `TypeError [ERR_X]: ...` in the stack; do the same, then keep the plain name.
function withCode<E extends Error>(err: E, code: string): E & { code: string } {
  const name = err.name;
  err.name = `${name} [${code}]`;
  void err.stack;
  err.name = name;
  Object.defineProperty(err, 'name', { value: name, writable: true, configurable: true, enumerable: false });
  return Object.assign(err, { code });
}

/** Builds the error for a failed syscall from the negative errno the addon returned. */
export function systemError(negErrno: number, syscall: string, path?: string): SystemError {
  systemErrorMap ??= getSystemErrorMap();
  const [code, description] = systemErrorMap.get(negErrno) ?? [`Unknown system error ${negErrno}`, 'unknown error'];
  let message = `${code}: ${description}, ${syscall}`;
  if (path !== undefined) message += ` '${path}'`;
  const err = withCode(new Error(message), code) as SystemError;
  err.errno = negErrno;
  err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}

function describeReceived(value: unknown): string {
  if (value === null || value === undefined) return ` Received ${value}`;
  if (typeof value === 'function') return ` Received function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor?.name;
    return ctor ? ` Received an instance of ${ctor}` : ` Received ${inspect(value, { depth: -1 })}`;
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return ` Received type ${typeof value} (${shown})`;
}

// As Node words it: `options.mode` is a property, `length` an argument.
const kind = (name: string): string => (name.includes('.') ? 'property' : 'argument');

/** `TypeError [ERR_INVALID_ARG_TYPE]: The "name" argument (or "options.x" property) must be of type T. Received ...` */
export function invalidArgType(name: string, expected: string, actual: unknown): TypeError {
  return withCode(
    new TypeError(`The "${name}" ${kind(name)} must be ${expected}.${describeReceived(actual)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

// A buffer or a view is named, never printed: its bytes say nothing, and there may be millions.
function shown(value: unknown): string {
  if (value !== null && typeof value === 'object' && (ArrayBuffer.isView(value) || value instanceof ArrayBuffer)) {
    return `an instance of ${(value as object).constructor?.name ?? 'ArrayBuffer'}`;
  }
  return inspect(value);
}

/** `TypeError [ERR_INVALID_ARG_VALUE]: The argument 'name' (or property 'options.x') is invalid. Received ...` */
export function invalidArgValue(name: string, value: unknown, reason: string): TypeError {
  return withCode(
    new TypeError(`The ${kind(name)} '${name}' ${reason}. Received ${shown(value)}`),
    'ERR_INVALID_ARG_VALUE',
  );
}

/** `ERR_MAPPING_READ_ONLY`: an API that writes was given memory it may only read. */
export function mappingReadOnly(what: string): Error {
  return mmanError('ERR_MAPPING_READ_ONLY', what);
}

/** `ERR_MAPPING_INACCESSIBLE`: protect() took the read permission away from memory a call reads. */
export function mappingInaccessible(): Error {
  return mmanError('ERR_MAPPING_INACCESSIBLE');
}

/** `RangeError [ERR_OUT_OF_RANGE]: The value of "name" is out of range. It must be R. Received V` */
export function outOfRange(name: string, range: string, received: unknown): RangeError {
  const shown =
    typeof received === 'number' && Number.isInteger(received) && Math.abs(received) > 2 ** 32
      ? received.toString().replace(/(\d)(?=(\d{3})+$)/g, '$1_')
      : inspect(received);
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE',
  );
}

/** An error with one of mman's own codes: its class and message from the registry above. */
export function mmanError<C extends keyof Codes>(code: C, ...args: Parameters<Codes[C][1]>): Error & { code: C } {
  const [Ctor, message] = CODES[code];
  return withCode(new Ctor((message as (...a: Parameters<Codes[C][1]>) => string)(...args)), code) as Error & {
    code: C;
  };
}

/** `new Mapping()`, `new SharedMemory()`: a TypeError naming the factories to use instead. */
export function illegalConstructor(use: string): TypeError {
  return mmanError('ERR_ILLEGAL_CONSTRUCTOR', use) as TypeError & { code: 'ERR_ILLEGAL_CONSTRUCTOR' };
}

/** Thrown by every method of a Mapping after `unmap()`. */
export function mappingClosed(): Error {
  return mmanError('ERR_MAPPING_CLOSED');
}

/**
 * Validates an integer argument in [min, max] the way Node's validateInteger does:
 * ERR_INVALID_ARG_TYPE for a non-number, ERR_OUT_OF_RANGE for NaN, fractions and bounds.
 */
export function validateInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

/** Validates an options bag: undefined becomes `{}`, anything but a plain object is refused. */
export function validateOptions<T extends object>(value: unknown, name = 'options'): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value);
  }
  return value as Partial<T>;
}

/** The largest signed 32-bit integer: descriptors, counts and spins the kernel takes as `int`. */
export const INT32_MAX = 2 ** 31 - 1;

/** {@link validateInteger} within the signed 32-bit range (Node's validateInt32). */
export function validateInt32(value: unknown, name: string, min = -(2 ** 31), max = INT32_MAX): number {
  return validateInteger(value, name, min, max);
}

/** {@link validateInteger} within the unsigned 32-bit range (Node's validateUint32). */
export function validateUint32(value: unknown, name: string, min = 0): number {
  return validateInteger(value, name, min, 2 ** 32 - 1);
}

/** An optional boolean option: `undefined` is `defaultValue`. */
export function validateBoolean(value: unknown, name: string, defaultValue = false): boolean {
  if (value === undefined) return defaultValue;
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

/** One of `allowed` (Node's validateOneOf): ERR_INVALID_ARG_VALUE otherwise. */
export function validateOneOf<T>(value: unknown, name: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    const list = allowed.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ');
    throw invalidArgValue(name, value, `must be one of: ${list}`);
  }
  return value as T;
}

/** An optional AbortSignal (Node's validateAbortSignal). */
export function validateAbortSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (
    value === null ||
    typeof value !== 'object' ||
    !('aborted' in value) ||
    typeof (value as AbortSignal).aborted !== 'boolean' ||
    // Listened to while a call waits: an object with `aborted` alone would fail there, uncoded.
    typeof (value as AbortSignal).addEventListener !== 'function' ||
    typeof (value as AbortSignal).removeEventListener !== 'function'
  ) {
    throw invalidArgType(name, 'an instance of AbortSignal', value);
  }
  return value as AbortSignal;
}

/** What Node's promise APIs reject with once their `signal` aborts: an `AbortError`, code `ABORT_ERR`. */
export function abortError(signal: AbortSignal): Error {
  const err = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: string };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}
