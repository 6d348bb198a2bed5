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

/** Error codes of their own that mman throws, beside Node's `ERR_*` argument codes. */
export type MmanErrorCode =
  | 'ERR_MAPPING_CLOSED'
  | 'ERR_MAPPING_EMPTY_FILE'
  | 'ERR_MAPPING_EXTERNAL_BUFFERS_FORBIDDEN'
  | 'ERR_MAPPING_TRUNCATED'
  | 'ERR_MAPPING_PAGE_LOST'
  | 'ERR_MAPPING_LIMIT'
  | 'ERR_MAPPING_READ_ONLY'
  | 'ERR_MAPPING_INACCESSIBLE'
  | 'ERR_SHARED_MEMORY_BAD_ENVIRONMENT'
  | 'ERR_RING_BUFFER_CLOSED'
  | 'ERR_SHARED_MEMORY_CLOSED'
  | 'ERR_SHARED_DESCRIPTOR_FOREIGN'
  | 'ERR_SHARED_DESCRIPTOR_TAKEN'
  | 'ERR_MAPPING_NOT_SHAREABLE'
  | 'ERR_SHARED_MEMORY_NO_DESCRIPTOR'
  | 'ERR_SHARED_MEMORY_BAD_DESCRIPTOR'
  | 'ERR_SOCKET_ALREADY_READ'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_MUTEX_DEADLOCK'
  | 'ERR_MUTEX_NOT_OWNER'
  | 'ERR_INVALID_STATE'
  | 'ERR_ILLEGAL_CONSTRUCTOR'
  | 'ABORT_ERR';

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
  return mmanError(
    'ERR_MAPPING_READ_ONLY',
    `${what} writes to the memory, and this mapping is read-only: a write would kill the process with SIGSEGV. Map it read-write`,
  );
}

/** `ERR_MAPPING_INACCESSIBLE`: protect() took the read permission away from memory a call reads. */
export function mappingInaccessible(): Error {
  return mmanError(
    'ERR_MAPPING_INACCESSIBLE',
    'This mapping is not readable (protect() took Prot.Read away): a read would kill the process with SIGSEGV. Make it readable first',
  );
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

/** An error with one of mman's own codes. */
export function mmanError(
  code: MmanErrorCode,
  message: string,
  Ctor: ErrorConstructor = Error,
): Error & { code: string } {
  return withCode(new Ctor(message), code);
}

/** `new Mapping()`, `new SharedMemory()`: a TypeError naming the factories to use instead. */
export function illegalConstructor(use: string): TypeError {
  return mmanError('ERR_ILLEGAL_CONSTRUCTOR', `Illegal constructor: use ${use}`, TypeError);
}

/** Thrown by every method of a Mapping after `unmap()`. */
export function mappingClosed(): Error {
  return mmanError('ERR_MAPPING_CLOSED', 'The mapping has been unmapped');
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
    typeof (value as AbortSignal).aborted !== 'boolean'
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
