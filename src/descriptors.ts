// Handing a mapping's file or a SharedMemory to another thread of this process: share() puts
// a duplicate of the descriptor aside in the addon under a random id and returns a plain
// object to post; from() takes the descriptor out, once, on the receiving thread.
import { native } from './native';
import { invalidArgType, mmanError, systemError, validateInteger, validateOptions } from './errors';

/** Options for `share()`. */
export interface ShareOptions {
  /**
   * How long the descriptor waits for `from()`: after it, one never received is closed, and
   * `from()` throws `ERR_SHARED_DESCRIPTOR_TAKEN`. Default 60,000 ms.
   */
  timeoutMs?: number;
}

/** The fields every descriptor carries. */
export interface SharedDescriptorBase {
  /** Which kind of object `from()` makes of it. */
  readonly type: string;
  /** The addon's id for the descriptor put aside. */
  readonly id: string;
  /** The process it belongs to: the descriptor is in this process's table only. */
  readonly pid: number;
}

const DEFAULT_TTL = 60_000;

// The sharing thread sweeps once a descriptor may have expired, so none waits past its time
// even if no other share() or from() comes; the timer never keeps the process alive.
function sweepLater(ttl: number): void {
  setTimeout(() => native.sweepShared(), ttl + 10).unref();
}

/**
 * How long a shared descriptor waits (`options.timeoutMs`): read before the descriptor is
 * looked up, since reading the options runs the caller's getters, which may close it.
 */
export function shareTimeout(options: unknown): number {
  const opts = validateOptions<ShareOptions>(options);
  return opts.timeoutMs === undefined
    ? DEFAULT_TTL
    : validateInteger(opts.timeoutMs, 'options.timeoutMs', 1, 2 ** 31 - 1);
}

/** Puts a duplicate of `fd` aside for another thread for `ttl` ms ({@link shareTimeout}); returns its id. */
export function putAside(fd: number, ttl: number): string {
  const id = native.shareFd(fd, ttl);
  if (typeof id === 'number') throw systemError(id, 'fcntl');
  sweepLater(ttl);
  return id;
}

/**
 * Checks that `descriptor` is one `share()` of `type` made in this process, and takes its
 * file descriptor out of the addon: the caller owns it from now on.
 */
export function takeAside<T extends SharedDescriptorBase>(descriptor: unknown, type: T['type']): { fd: number; d: T } {
  const d = descriptor as T;
  if (
    d === null ||
    typeof d !== 'object' ||
    d.type !== type ||
    typeof d.id !== 'string' ||
    !/^[0-9a-f]{16}$/.test(d.id) ||
    typeof d.pid !== 'number'
  ) {
    throw invalidArgType('descriptor', `an object made by ${type === 'mman.Mapping' ? 'mapping' : 'shm'}.share()`, d);
  }
  if (d.pid !== process.pid) {
    throw mmanError('ERR_SHARED_DESCRIPTOR_FOREIGN', d.pid);
  }
  const fd = native.takeFd(d.id);
  if (fd < 0) {
    throw mmanError('ERR_SHARED_DESCRIPTOR_TAKEN');
  }
  return { fd, d };
}
