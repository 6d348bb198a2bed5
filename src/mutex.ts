// Mutex: a lock in one word of shared memory for threads and processes, robust against its
// holder's death. The protocol is native/mutex.cc's; the uncontended lock and unlock are one
// compare-and-swap here, with no call into the addon.
import { AsyncLocalStorage } from 'node:async_hooks';
import { constants as osConstants } from 'node:os';

import { native } from './native';
import { misaligned, target, validateTimeout, waitAsync } from './futex';
import { ownerOf } from './buffers';
import { handleOf, type Mapping } from './mapping';
import {
  abortError,
  invalidArgType,
  mmanError,
  systemError,
  validateAbortSignal,
  validateInt32,
  validateOptions,
} from './errors';

/** What a lock call answers. `'owner-died'`: acquired, and the holder before died holding it. */
export type LockResult = 'acquired' | 'owner-died' | 'busy' | 'timed-out';

/** Options for {@link Mutex}. */
export interface MutexOptions {
  /** Compare-and-swap rounds {@link Mutex.lock} spins before it sleeps. Default 200. */
  spin?: number;
}

/** Options for {@link Mutex.withLock}. */
export interface WithLockOptions {
  /** Give up after this many milliseconds: throws `ERR_MUTEX_TIMED_OUT`, `fn` not run. Default: forever. */
  timeoutMs?: number;
}

/** Options for {@link Mutex.lockAsync} and {@link Mutex.withLockAsync}. */
export interface LockAsyncOptions {
  /** Aborting it rejects with an `AbortError` (the lock is not taken). */
  signal?: AbortSignal;
  /** Give up after this many milliseconds: resolves `'timed-out'`. Default: forever. */
  timeoutMs?: number;
}

const { LOCK_ACQUIRED, LOCK_OWNER_DIED, LOCK_BUSY, LOCK_TIMED_OUT, MISALIGNED, STOPPING } = native.answers;
const RESULTS = new Map<number, LockResult>([
  [LOCK_ACQUIRED, 'acquired'],
  [LOCK_OWNER_DIED, 'owner-died'],
  [LOCK_BUSY, 'busy'],
  [LOCK_TIMED_OUT, 'timed-out'],
]);
const EDEADLK = -osConstants.errno.EDEADLK;
const EPERM = -osConstants.errno.EPERM;
// The word's layout (the kernel's futex word: holder's thread id, a sleepers bit) and how
// often a sleeper looks at the holder, as native/mutex.cc has them.
const { FUTEX_TID_MASK: TID_MASK, MUTEX_LIVENESS_MS: LIVENESS_MS } = native.constants;
const WAITERS = native.constants.FUTEX_WAITERS | 0; // the sign bit, as an Int32Array element shows it

// This thread's id: what the word holds while this thread holds the lock. Each worker thread
// loads this module anew, so each has its own.
const SELF = native.threadId();

/**
 * A mutual-exclusion lock in one 32-bit word of an `Int32Array` over a `MAP_SHARED` mapping
 * made by mman (as {@link wait} and {@link notify} take it), shared by threads and
 * processes alike: every `Mutex` over the same word of the same memory is the same lock. A
 * zeroed word is an unlocked mutex; there is nothing to initialise or destroy.
 *
 * **Robust.** The word holds the holder's thread id. When the holder dies holding it
 * (killed, crashed, a worker terminated, a process that exited without unlocking), the next
 * locker takes it over and is answered `'owner-died'`, so that it can repair what the lock
 * protects. A sleeping locker looks at the holder every 50 ms: a death is noticed within
 * that, a normal unlock at once. Every locker must be in the same PID namespace (thread ids
 * are compared), and a holder's id must not be reused by another thread before the death is
 * noticed (Linux cycles through `pid_max` ids, 4,194,304 by default, before reusing one).
 *
 * **Not fair and not recursive**: an unlocking thread that locks again may take it before
 * a woken sleeper; no priority inheritance; a thread locking what it holds gets
 * `ERR_MUTEX_DEADLOCK`, unlocking what it does not hold `ERR_MUTEX_NOT_OWNER`.
 *
 * @example
 * const words = new Int32Array(shm.map().buffer);
 * const mutex = new Mutex(words, 0);
 * mutex.withLock((state) => {
 *   if (state === 'owner-died') repair();
 *   update();
 * });
 * // in a server: the event loop runs on while it waits
 * await mutex.withLockAsync(async () => { await update(); });
 */
export class Mutex {
  readonly #view: Int32Array;
  readonly #index: number;
  readonly #mapping: Mapping;
  readonly #buffer: ArrayBuffer;
  readonly #byteOffset: number;
  readonly #spin: number;
  #turn: Promise<void> = Promise.resolve(); // withLockAsync() callers of this object, in order

  constructor(view: Int32Array, index: number, options?: MutexOptions) {
    const t = target(view, index, undefined, 'A Mutex');
    if (!t.aligned) throw misaligned(index); // the lock-free paths below are Atomics on this word
    const opts = validateOptions<MutexOptions>(options);
    this.#spin = opts.spin === undefined ? 200 : validateInt32(opts.spin, 'options.spin', 0);
    this.#view = view;
    this.#index = index;
    this.#mapping = ownerOf(view.buffer)!;
    this.#buffer = t.buffer;
    this.#byteOffset = t.byteOffset;
  }

  // The mapping's handle, checked on every call (the word itself was checked once, by the
  // constructor): unmapped, truncated under a guard or made read-only since, it holds no lock.
  #handle() {
    return handleOf(this.#mapping, 'A Mutex');
  }

  // A lock taken in a guarded mapping is checked once more: the compare-and-swap was the first
  // touch of its page, and a page truncated away is a zero page only this process sees.
  #taken<T extends LockResult>(result: T): T {
    if (this.#mapping.guarded) this.#handle();
    return result;
  }

  #answer(rc: number): LockResult {
    if (rc === MISALIGNED) throw misaligned(this.#index);
    if (rc === STOPPING) throw mmanError('ERR_WORKER_TERMINATING', 'Mutex.lock()');
    if (rc === EDEADLK) throw mmanError('ERR_MUTEX_DEADLOCK');
    if (rc < 0) throw systemError(rc, 'futex');
    return RESULTS.get(rc)!;
  }

  /**
   * Takes the lock, blocking this thread until it is free (after a short spin), or until
   * `timeoutMs`. `'acquired'`, `'owner-died'` or `'timed-out'`. Blocks the event loop: use
   * {@link Mutex.lockAsync} in a server.
   */
  lock(timeoutMs?: number): 'acquired' | 'owner-died' | 'timed-out' {
    const handle = this.#handle();
    if (timeoutMs === undefined && Atomics.compareExchange(this.#view, this.#index, 0, SELF) === 0)
      return this.#taken('acquired');
    const timeout = validateTimeout(timeoutMs);
    const rc = native.mutexLock(handle, this.#buffer, this.#byteOffset, timeout, this.#spin);
    return this.#taken(this.#answer(rc) as 'acquired' | 'owner-died' | 'timed-out');
  }

  /** Takes the lock if it is free (or its holder is dead) without waiting: `'busy'` otherwise. */
  tryLock(): 'acquired' | 'owner-died' | 'busy' {
    const handle = this.#handle();
    if (Atomics.compareExchange(this.#view, this.#index, 0, SELF) === 0) return this.#taken('acquired');
    return this.#taken(
      this.#answer(native.mutexTryLock(handle, this.#buffer, this.#byteOffset, false)) as
        'acquired' | 'owner-died' | 'busy',
    );
  }

  /**
   * Takes the lock without blocking the event loop: sleeps on the word through
   * {@link waitAsync} (a waiter thread, not the threadpool) and takes the lock on this
   * thread when it is released, so this thread holds it. `'acquired'`, `'owner-died'` or
   * `'timed-out'`; rejects with an `AbortError` once `options.signal` aborts. Needs Linux
   * 5.16+ (futex_waitv), as waitAsync does.
   */
  async lockAsync(options?: LockAsyncOptions): Promise<'acquired' | 'owner-died' | 'timed-out'> {
    const opts = validateOptions<LockAsyncOptions>(options);
    const timeout = validateTimeout(opts.timeoutMs);
    const signal = validateAbortSignal(opts.signal, 'options.signal');
    const deadline = timeout < 0 ? Infinity : performance.now() + timeout;
    let contended = false; // after a sleep, take it marked: the sleepers after us need waking
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const rc = native.mutexTryLock(this.#handle(), this.#buffer, this.#byteOffset, contended);
      if (rc !== LOCK_BUSY) return this.#taken(this.#answer(rc) as 'acquired' | 'owner-died');
      let c = Atomics.load(this.#view, this.#index);
      if (c === 0) continue;
      if ((c & WAITERS) === 0) {
        if (Atomics.compareExchange(this.#view, this.#index, c, c | WAITERS) !== c) continue;
        c |= WAITERS;
      }
      const left = deadline - performance.now();
      if (left <= 0) return 'timed-out';
      await waitAsync(this.#view, this.#index, c, Math.min(left, LIVENESS_MS), { signal });
      contended = true;
    }
  }

  /**
   * Runs `fn` holding the lock, and releases it when `fn` returns or throws; returns what
   * `fn` returns. `fn` is told how the lock was taken: `'owner-died'` when the holder before
   * died holding it (repair what it protects). With `options.timeoutMs`, throws
   * `ERR_MUTEX_TIMED_OUT` without running `fn` if the lock stayed busy that long. Blocks
   * the event loop while it waits: in a server use {@link Mutex.withLockAsync}. `fn` must
   * not be async (the lock would be released before its promise settles): a `fn` that returns
   * a promise is a `TypeError` (`ERR_INVALID_RETURN_VALUE`), once the lock is released.
   */
  withLock<T>(fn: (state: 'acquired' | 'owner-died') => T, options?: WithLockOptions): T {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    const timeoutMs = validateOptions<WithLockOptions>(options).timeoutMs;
    const state = this.lock(timeoutMs);
    if (state === 'timed-out') throw mmanError('ERR_MUTEX_TIMED_OUT', timeoutMs!, this.holder);
    let result: T;
    try {
      result = fn(state);
    } finally {
      this.unlock();
    }
    if (isThenable(result)) {
      void Promise.resolve(result).catch(() => {}); // its rejection is the caller's mistake, reported here
      throw mmanError('ERR_INVALID_RETURN_VALUE');
    }
    return result;
  }

  /**
   * Runs `fn` (which may be async) holding the lock, taken as {@link Mutex.lockAsync} takes
   * it (the event loop runs on while it waits), and releases it once `fn`'s promise settles;
   * resolves to what `fn` resolves to, or rejects with what it throws. Calls through this
   * one `Mutex` object from this thread take turns (a thread holds the lock for one call at
   * a time; another `Mutex` object over the same word in the same thread is refused with
   * `ERR_MUTEX_DEADLOCK` while this one holds it). `options.timeoutMs` (the turn included)
   * rejects with `ERR_MUTEX_TIMED_OUT`, `options.signal` with an `AbortError`; `fn` is then
   * not run.
   */
  async withLockAsync<T>(
    fn: (state: 'acquired' | 'owner-died') => T | PromiseLike<T>,
    options?: LockAsyncOptions,
  ): Promise<T> {
    if (typeof fn !== 'function') throw invalidArgType('fn', 'of type function', fn);
    const opts = validateOptions<LockAsyncOptions>(options);
    const timeout = validateTimeout(opts.timeoutMs);
    const signal = validateAbortSignal(opts.signal, 'options.signal');
    // Called from inside a withLockAsync() of this Mutex (its fn, or what fn awaits): waiting
    // for the turn of the very call that holds the lock would never end.
    if (holding.getStore()?.some((held) => held.mutex === this && held.live)) throw mmanError('ERR_MUTEX_DEADLOCK');
    const deadline = timeout < 0 ? Infinity : performance.now() + timeout;
    const before = this.#turn;
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    this.#turn = Promise.all([before, mine]).then(() => {}); // the next waits for both, even if this one gives up
    try {
      if (!(await turnOrGiveUp(before, deadline, signal))) {
        if (signal?.aborted) throw abortError(signal);
        throw mmanError('ERR_MUTEX_TIMED_OUT', timeout, this.holder);
      }
      const left = deadline - performance.now();
      const state = await this.lockAsync({ signal, timeoutMs: deadline === Infinity ? undefined : Math.max(0, left) });
      if (state === 'timed-out') throw mmanError('ERR_MUTEX_TIMED_OUT', timeout, this.holder);
      const held = { mutex: this as Mutex, live: true }; // not live once released: a timer fn set may lock then
      try {
        return await holding.run([...(holding.getStore() ?? []), held], () => fn(state));
      } finally {
        held.live = false;
        this.unlock();
      }
    } finally {
      done();
    }
  }

  /** Releases the lock, waking one sleeper. `ERR_MUTEX_NOT_OWNER` unless this thread holds it. */
  unlock(): void {
    const handle = this.#handle();
    if (Atomics.compareExchange(this.#view, this.#index, SELF, 0) === SELF) return;
    const rc = native.mutexUnlock(handle, this.#buffer, this.#byteOffset);
    if (this.#mapping.guarded) this.#handle(); // the word read 0 because its page was truncated away?
    if (rc === EPERM) throw mmanError('ERR_MUTEX_NOT_OWNER', SELF, this.holder);
    this.#answer(rc);
  }

  /** The thread id of the holder (its process id for a process's main thread), or 0 when free. */
  get holder(): number {
    handleOf(this.#mapping); // unmapped, unreadable or (seen below) truncated: no holder to tell
    const word = Atomics.load(this.#view, this.#index);
    if (this.#mapping.guarded) handleOf(this.#mapping);
    return word & TID_MASK;
  }

  /** True when this thread holds it. */
  get held(): boolean {
    return this.holder === SELF;
  }
}

// The Mutex objects whose withLockAsync() the running code is inside (its fn and everything
// that fn starts), to refuse a nested call on the same Mutex instead of waiting for ever.
const holding = new AsyncLocalStorage<ReadonlyArray<{ mutex: Mutex; live: boolean }>>();

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

// Waits for `turn` (the caller before in this thread) until `deadline` or `signal`: true once
// it is this caller's turn, false if it gave up first.
function turnOrGiveUp(turn: Promise<void>, deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  if (deadline === Infinity && signal === undefined) return turn.then(() => true);
  return new Promise<boolean>((resolve) => {
    const onAbort = () => finish(false);
    const timer =
      deadline === Infinity ? undefined : setTimeout(() => finish(false), Math.max(0, deadline - performance.now()));
    function finish(ok: boolean) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(ok);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    void turn.then(() => finish(true));
  });
}
