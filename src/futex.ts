// wait / waitAsync / notify on an Int32Array over a shared mapping: futex(2) without
// FUTEX_PRIVATE_FLAG, so they work between processes (Atomics.wait/notify do not).
import { types } from 'node:util';

import { native, type Handle } from './native';
import { ownerOf } from './buffers';
import { handleOf, type Mapping } from './mapping';
import {
  abortError,
  INT32_MAX,
  invalidArgType,
  invalidArgValue,
  mappingClosed,
  mappingReadOnly,
  mmanError,
  outOfRange,
  systemError,
  validateAbortSignal,
  validateInt32,
  validateInteger,
  validateOptions,
} from './errors';

/** What a wait ended with, as `Atomics.wait` says it. */
export type WaitResult = 'ok' | 'not-equal' | 'timed-out';

// The addon's answers (native/answers.h), read from it: no number is written twice.
const { WAIT_OK, WAIT_NOT_EQUAL, WAIT_TIMED_OUT, WAIT_CANCELLED, MISALIGNED, STOPPING } = native.answers;
const RESULTS = new Map<number, WaitResult>([
  [WAIT_OK, 'ok'],
  [WAIT_NOT_EQUAL, 'not-equal'],
  [WAIT_TIMED_OUT, 'timed-out'],
]);
const FOREVER_MS = 1e12; // ~31 years: longer timeouts are treated as none (no time_t overflow)

/** Options for {@link wait}. */
export interface WaitOptions {
  /**
   * Look at the word up to this many times before sleeping in the kernel, yielding the
   * CPU every 1024 looks so that a peer waiting for this CPU can run. A wake through the
   * kernel costs 40–100 µs on a small VM; a spin catches an answer that comes within
   * microseconds, at the price of one busy CPU meanwhile: 2000 looks cost 2–15 µs of CPU
   * when nothing comes (bench/ipc.js measures it). Default 0.
   */
  spin?: number;
  /**
   * Index (in the same view) of a waiter-count word: incremented while this call sleeps in
   * the kernel, so that {@link notify} given the same index skips the syscall when it is 0.
   */
  waitersIndex?: number;
}

/** Options for {@link waitAsync}. */
export interface WaitAsyncOptions {
  /** Aborting it rejects the promise with an `AbortError` and frees the waiter slot. */
  signal?: AbortSignal;
  /** As in {@link WaitOptions.waitersIndex}. */
  waitersIndex?: number;
}

/** Options for {@link notify}. */
export interface NotifyOptions {
  /**
   * Index of the waiter-count word the waiters pass as {@link WaitOptions.waitersIndex}: no syscall
   * when nobody sleeps.
   */
  waitersIndex?: number;
}

// How many rounds of a wait's spin run here before the addon's (below the addon's first yield).
const JS_SPIN = 1000;

// The Mapping and ArrayBuffer of each view target() has checked (weakly held: a view, its
// buffer and its mapping go when the view goes).
const views = new WeakMap<Int32Array, { mapping: Mapping; buffer: ArrayBuffer; byteOffset: number }>();

interface Target {
  handle: Handle;
  buffer: ArrayBuffer;
  byteOffset: number;
  waitersOffset: number;
  /** The buffer's first byte is 4-byte aligned in memory, so every word of the view is. */
  aligned: boolean;
}

// Every check, in the order the caller would want to hear about them.
/** @internal The checked word `view[index]` (and waiters word) of a MAP_SHARED mapping: for mutex.ts too. */
export function target(input: unknown, index: unknown, waitersIndex: unknown, writer?: string): Target {
  // A view seen before skips the type check, `view.buffer` and `view.byteOffset` (getters that
  // cost more than every other check here together on an external buffer): a view's buffer and
  // offset never change (a detached view's length is 0, which is refused below).
  let seen = views.get(input as Int32Array);
  if (seen === undefined) {
    if (!types.isInt32Array(input)) throw invalidArgType('view', 'an instance of Int32Array', input);
    const owner = ownerOf(input.buffer);
    if (owner === undefined) {
      throw invalidArgValue(
        'view',
        input,
        'must be over memory mapped by mman (SharedMemory.map() or a shared mapping)',
      );
    }
    seen = { mapping: owner, buffer: input.buffer as ArrayBuffer, byteOffset: input.byteOffset };
    views.set(input, seen);
  }
  const view = input as Int32Array;
  const mapping = seen.mapping;
  if (mapping.closed) throw mappingClosed();
  if (!mapping.shared)
    throw invalidArgValue(
      'view',
      view,
      'must be over a MAP_SHARED mapping: a private one is seen by this process only',
    );
  // A waiter count is written by the waiter; a Mutex writes its word.
  if ((writer !== undefined || waitersIndex !== undefined) && !mapping.writable)
    throw mappingReadOnly(writer ?? 'A wait with options.waitersIndex');
  if (view.length === 0) throw outOfRange('view.length', '> 0', 0);
  validateInteger(index, 'index', 0, view.length - 1);
  let waitersOffset = -1;
  if (waitersIndex !== undefined) {
    validateInteger(waitersIndex, 'options.waitersIndex', 0, view.length - 1);
    if (waitersIndex === index) throw invalidArgValue('options.waitersIndex', waitersIndex, 'must differ from index');
    waitersOffset = seen.byteOffset + (waitersIndex as number) * 4;
  }
  let handle = handleOf(mapping);
  // A page of a guarded mapping truncated away is replaced on its first touch, which is the
  // guard's to see: touched here, then asked, so that no wait sleeps on (and no notify wakes)
  // a zero page only this process has.
  if (mapping.guarded && mapping.wordAligned) {
    Atomics.load(view, index as number);
    if (waitersIndex !== undefined) Atomics.load(view, waitersIndex as number);
    handle = handleOf(mapping);
  }
  return {
    handle,
    buffer: seen.buffer,
    byteOffset: seen.byteOffset + (index as number) * 4,
    waitersOffset,
    aligned: mapping.wordAligned,
  };
}

function validateExpected(expected: unknown): number {
  return validateInteger(expected, 'expected', -(2 ** 31), 2 ** 32 - 1) | 0;
}

/** @internal -1 means forever, as the addon takes it. */
export function validateTimeout(timeoutMs: unknown): number {
  if (timeoutMs === undefined || timeoutMs === Infinity) return -1;
  if (typeof timeoutMs !== 'number') throw invalidArgType('timeoutMs', 'of type number', timeoutMs);
  if (Number.isNaN(timeoutMs) || timeoutMs < 0) throw outOfRange('timeoutMs', '>= 0', timeoutMs);
  return timeoutMs > FOREVER_MS ? -1 : timeoutMs;
}

/** @internal */
export function misaligned(index: unknown): RangeError {
  return outOfRange('index', 'an element at a 4-byte aligned address (the mapping starts unaligned)', index);
}

/**
 * Sleeps until another process (or thread) calls {@link notify} on the same word, as
 * `Atomics.wait` does, but across processes: futex(2) `FUTEX_WAIT` without
 * `FUTEX_PRIVATE_FLAG` on `view[index]`. Returns `'not-equal'` at once if `view[index]`
 * is not `expected`; `'ok'` when woken or when the word changed (during the spin, or just
 * before sleeping); `'timed-out'` after `timeoutMs` (default: forever).
 *
 * `view` must be an `Int32Array` over a `MAP_SHARED` mapping made by mman (for example
 * {@link SharedMemory.map}). Blocks the event loop: use {@link waitAsync} in a server.
 * On a worker's thread the sleep looks every 50 ms whether the worker is being terminated,
 * so that `worker.terminate()` ends it (`ERR_WORKER_TERMINATING`, seldom seen: the
 * termination ends the worker's JavaScript); the main thread sleeps in one piece.
 * A notify that comes before the waiter sleeps is not remembered: change the word, then notify.
 *
 * @example
 * while (Atomics.load(flags, 0) === 0) wait(flags, 0, 0);
 */
export function wait(
  view: Int32Array,
  index: number,
  expected: number,
  timeoutMs?: number,
  options?: WaitOptions,
): WaitResult {
  // Each option read once, before the memory is checked: reading one runs the caller's getter.
  const opts = validateOptions<WaitOptions>(options);
  const { waitersIndex, spin: spinOption } = opts;
  const t = target(view, index, waitersIndex);
  const value = validateExpected(expected);
  const timeout = validateTimeout(timeoutMs);
  const spin = spinOption === undefined ? 0 : validateInt32(spinOption, 'options.spin', 0);
  // The addon looks first too; looking here saves the call when the word has moved on.
  if (t.aligned && Atomics.load(view, index) !== value) return 'not-equal';
  // The first rounds of the spin here: an answer that comes within them costs no return from
  // the addon. The addon spins the rest (yielding the CPU now and then) before it sleeps.
  let spun = 0;
  if (t.aligned && spin > 0) {
    const first = spin < JS_SPIN ? spin : JS_SPIN;
    for (; spun < first; spun++) if (Atomics.load(view, index) !== value) return 'ok';
  }
  const rc = native.wait(t.handle, t.buffer, t.byteOffset, value, timeout, spin - spun, t.waitersOffset);
  if (rc === MISALIGNED) throw misaligned(index);
  if (rc === STOPPING) throw mmanError('ERR_WORKER_TERMINATING', 'wait()');
  if (rc < 0) throw systemError(rc, 'futex');
  return RESULTS.get(rc)!;
}

/**
 * {@link wait} without blocking: resolves to `'ok'`, `'not-equal'` or `'timed-out'`. The
 * wait runs on a waiter thread of this process that sleeps in futex_waitv(2) on up to 127
 * words at once, so no libuv threadpool thread is taken. A pending wait keeps the event
 * loop alive, like a timer. Aborting `options.signal` rejects with an `AbortError` and
 * frees the slot at once. The mapping stays mapped (its pages held) until the wait ends.
 * Needs Linux 5.16+ (futex_waitv); on older kernels the promise rejects with `ENOSYS`.
 */
export function waitAsync(
  view: Int32Array,
  index: number,
  expected: number,
  timeoutMs?: number,
  options?: WaitAsyncOptions,
): Promise<WaitResult> {
  // Each option read once, before the memory is checked: reading one runs the caller's getter.
  const opts = validateOptions<WaitAsyncOptions>(options);
  const { waitersIndex, signal: signalOption } = opts;
  const t = target(view, index, waitersIndex);
  const value = validateExpected(expected);
  const timeout = validateTimeout(timeoutMs);
  const signal = validateAbortSignal(signalOption, 'options.signal');
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (Atomics.load(view, index) !== value) return Promise.resolve('not-equal');
  if (timeout === 0) return Promise.resolve('timed-out');
  return new Promise<WaitResult>((resolve, reject) => {
    let onAbort: (() => void) | undefined;
    const id = native.waitAsyncStart(t.handle, t.buffer, t.byteOffset, value, timeout, t.waitersOffset, (rc) => {
      if (onAbort !== undefined) unwatchAbort(signal!, onAbort);
      if (rc === WAIT_CANCELLED) return; // already rejected by the abort
      if (rc < 0) reject(systemError(rc, 'futex_waitv'));
      else resolve(RESULTS.get(rc)!);
    });
    if (id === MISALIGNED) {
      reject(misaligned(index));
      return;
    }
    if (signal !== undefined) {
      onAbort = () => {
        native.waitAsyncCancel(id);
        reject(abortError(signal));
      };
      watchAbort(signal, onAbort);
    }
  });
}

// One 'abort' listener per signal however many waits share it (a service-lifetime signal
// over hundreds of pending waits would otherwise add a listener per wait, and Node warns
// past ten). The listener is removed when the last wait on the signal settles.
interface AbortWatch {
  readonly cancels: Set<() => void>;
  readonly listener: () => void;
}
const abortWatches = new WeakMap<AbortSignal, AbortWatch>();

/** @internal */
export function watchAbort(signal: AbortSignal, cancel: () => void): void {
  let watch = abortWatches.get(signal);
  if (watch === undefined) {
    const cancels = new Set<() => void>();
    const listener = (): void => {
      abortWatches.delete(signal);
      for (const c of cancels) c();
      cancels.clear();
    };
    watch = { cancels, listener };
    signal.addEventListener('abort', listener, { once: true }); // first: a look-alike's may throw
    abortWatches.set(signal, watch);
  }
  watch.cancels.add(cancel);
}

/** @internal */
export function unwatchAbort(signal: AbortSignal, cancel: () => void): void {
  const watch = abortWatches.get(signal);
  if (watch === undefined || !watch.cancels.delete(cancel) || watch.cancels.size > 0) return;
  abortWatches.delete(signal);
  signal.removeEventListener('abort', watch.listener);
}

/**
 * Wakes up to `count` (default: all) processes or threads sleeping in {@link wait} or
 * {@link waitAsync} on `view[index]` (futex(2) `FUTEX_WAKE`, not private). Returns how
 * many were woken. With `waitersIndex`, skips the syscall (and the call into the addon) when
 * that word says nobody sleeps: store the new value with `Atomics.store` (or another `Atomics`
 * write) before, as the examples do, so that it is ordered before that look at the waiter count.
 */
export function notify(view: Int32Array, index: number, count: number = Infinity, options?: NotifyOptions): number {
  const waitersIndex = validateOptions<NotifyOptions>(options).waitersIndex;
  const t = target(view, index, waitersIndex);
  if (count !== Infinity) validateInt32(count, 'count', 0);
  // Nobody sleeps: nothing to call. The caller's store and this load are sequentially
  // consistent, as a sleeper's count and the kernel's look at the word are (native/futex.cc),
  // so either this load sees the sleeper or the kernel sees the new value and does not sleep.
  if (t.waitersOffset >= 0 && t.aligned && Atomics.load(view, waitersIndex as number) === 0) return 0;
  const rc = native.notify(t.handle, t.buffer, t.byteOffset, count === Infinity ? INT32_MAX : count, t.waitersOffset);
  if (rc === MISALIGNED) throw misaligned(index);
  if (rc < 0) throw systemError(rc, 'futex');
  return rc;
}
