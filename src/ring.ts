// A single-producer, single-consumer message queue in shared memory: length-prefixed
// records in a power-of-two ring, futexes on the head and tail words for "space free" and
// "data ready", waiter counts so that neither side makes a syscall while the other is awake.
import { availableParallelism } from 'node:os';

import { SharedMemory } from './shared';
import { dispose, handleOf, type Mapping } from './mapping';
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- named by {@link} in the doc comments
import { notify, validateTimeout, wait, waitAsync, type WaitOptions } from './futex';
import {
  invalidArgType,
  invalidArgValue,
  mappingReadOnly,
  mmanError,
  outOfRange,
  validateInt32,
  validateAbortSignal,
  validateInteger,
  validateOptions,
} from './errors';

// Header words, each on its own cache line so the two sides do not slow each other down.
const HEAD = 0; // bytes released by the reader (u32, wraps)
const TAIL = 16; // bytes published by the writer (u32, wraps)
const READERS_ASLEEP = 32; // the reader sleeping on TAIL
const WRITERS_ASLEEP = 48; // the writer sleeping on HEAD
const MAGIC = 64;
const CAPACITY = 65;
// The header takes the first 4096 bytes, whatever the page size: a layout both sides share, so
// it is fixed (the data starts page-aligned on 4 KiB pages, 4096 bytes in on larger ones).
const HEADER_BYTES = 4096;
const MAGIC_VALUE = 0x6d6d7262; // 'mmrb'
const SKIP = -1; // record: the rest of the ring is padding, go to offset 0
const END = -2; // record: the writer has ended the stream
const RECORD_HEADER = 4;

const align8 = (n: number): number => (n + 7) & ~7;

/** Options for {@link RingBuffer.create} and {@link RingBuffer.attach}. */
export interface RingBufferOptions {
  /**
   * Iterations to spin on the word before sleeping in the kernel (see
   * {@link WaitOptions.spin}). Default 20000 (10–40 µs of one CPU when nothing comes; a peer that
   * is running answers within 1 µs and is caught, see bench/RESULTS.md) when this machine has more
   * than one CPU, else 0.
   */
  spin?: number;
}

// The options of a blocking call, checked before it blocks: its timeout, for wait().
function waitTimeout(options: unknown): number | undefined {
  const { timeoutMs } = validateOptions<RingWaitOptions>(options);
  validateTimeout(timeoutMs);
  return timeoutMs;
}

// The options of an async call, checked before it waits: its signal, for waitAsync().
function waitSignal(options: unknown): AbortSignal | undefined {
  return validateAbortSignal(validateOptions<{ signal?: AbortSignal }>(options).signal, 'options.signal');
}

/** Options for the blocking calls of {@link RingBuffer}. */
export interface RingWaitOptions {
  /**
   * Give up after this many milliseconds, the same way on both sides: an empty ring's `read`
   * returns `undefined`, a full ring's `reserve` returns `undefined` and its `write` and `end`
   * return `false` (nothing was written). Default: forever.
   */
  timeoutMs?: number;
}

/**
 * A one-writer, one-reader queue of messages (byte strings) in shared memory, for two
 * processes (or threads). The writer copies each message into the ring once (or builds it
 * in place with {@link RingBuffer.reserve}); the reader gets a view of the ring's own bytes
 * ({@link RingBuffer.read}), valid until its next read: no other copy is made.
 *
 * Both sides block on futexes when the ring is empty or full, after a short spin; each
 * side notifies only when the other sleeps. A message may be up to half the capacity,
 * less 8 bytes.
 *
 * @example
 * // parent
 * const ring = RingBuffer.create(1 << 20);
 * const child = fork('reader.js', [], { share: [ring.memory] });
 * ring.write(Buffer.from('hello'));
 * ring.end();
 * // reader.js
 * const ring = RingBuffer.attach(SharedMemory.inherited()[0]);
 * for (let m; (m = ring.read()) !== null;) console.log(Buffer.from(m).toString());
 */
export class RingBuffer implements Disposable {
  /** The shared memory the ring lives in: pass it to {@link fork} in `share`. */
  readonly memory: SharedMemory;
  /** The ring's mapping (the 4096-byte header, then the data). */
  readonly mapping: Mapping;
  /** Bytes of message data the ring holds (a power of two). */
  readonly capacity: number;
  /** The longest message {@link RingBuffer.write} accepts. */
  readonly maxMessageLength: number;
  #words: Int32Array;
  #data: Uint8Array;
  #lengths: Int32Array;
  #spin: number;
  #writeAt = -1; // writer: where the reserved record starts (absolute, u32)
  #reserved = 0; // writer: payload bytes of the reserved record
  #readNext = -1; // reader: head after the message last returned, not yet released
  #closed = false;

  private constructor(memory: SharedMemory, mapping: Mapping, capacity: number, spin: number) {
    this.#spin = spin;
    this.memory = memory;
    this.mapping = mapping;
    this.capacity = capacity;
    this.maxMessageLength = capacity / 2 - 8;
    this.#words = new Int32Array(mapping.buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(mapping.buffer, HEADER_BYTES, capacity);
    this.#lengths = new Int32Array(mapping.buffer, HEADER_BYTES, capacity / 4);
  }

  /** Makes a ring of `capacity` bytes (a power of two from 4096 to 2^30) in a new memfd. */
  static create(capacity: number, options?: RingBufferOptions): RingBuffer {
    validateInteger(capacity, 'capacity', 4096, 2 ** 30);
    if ((capacity & (capacity - 1)) !== 0) throw outOfRange('capacity', 'a power of two', capacity);
    const spin = validateSpin(options); // before anything is made
    const memory = SharedMemory.create(HEADER_BYTES + capacity, { fixedSize: true });
    const mapping = memory.map();
    const ring = new RingBuffer(memory, mapping, capacity, spin);
    ring.#words[CAPACITY] = capacity;
    Atomics.store(ring.#words, MAGIC, MAGIC_VALUE);
    return ring;
  }

  /** Opens the ring another process made, from its SharedMemory (e.g. `SharedMemory.inherited()[0]`). */
  static attach(memory: SharedMemory, options?: RingBufferOptions): RingBuffer {
    if (!(memory instanceof SharedMemory)) throw invalidArgType('memory', 'an instance of SharedMemory', memory);
    // Both ends store their position in the header: a read-only ring cannot be read either.
    if (memory.readOnly) throw mappingReadOnly('A RingBuffer (its reader stores how far it read)');
    const spin = validateSpin(options);
    const mapping = memory.map();
    // Too small for a header and the smallest ring: no ring (and no header to read).
    const words = mapping.length >= HEADER_BYTES + 4096 ? new Int32Array(mapping.buffer, 0, HEADER_BYTES / 4) : null;
    const capacity = words === null ? 0 : words[CAPACITY];
    // The header is whatever the other side wrote: a capacity that is not one create() makes
    // would put records outside the ring.
    if (
      words === null ||
      Atomics.load(words, MAGIC) !== MAGIC_VALUE ||
      capacity < 4096 ||
      capacity > 2 ** 30 ||
      (capacity & (capacity - 1)) !== 0 ||
      HEADER_BYTES + capacity !== mapping.length
    ) {
      mapping.unmap();
      throw invalidArgValue('memory', memory.name ?? `fd ${memory.fd}`, 'does not hold a RingBuffer');
    }
    return new RingBuffer(memory, mapping, capacity, spin);
  }

  // ---- writer ----

  /**
   * Reserves room for a message of `length` bytes and returns the ring's bytes to fill in
   * place; {@link RingBuffer.commit} publishes it. Blocks while the ring is full; with
   * `options.timeoutMs`, returns `undefined` if the ring stayed full that long.
   */
  reserve(length: number, options?: { timeoutMs?: undefined }): Uint8Array;
  reserve(length: number, options: RingWaitOptions): Uint8Array | undefined;
  reserve(length: number, options?: RingWaitOptions): Uint8Array | undefined {
    const timeoutMs = waitTimeout(options); // first: reading it runs the caller's getter
    this.#live();
    const need = this.#need(length);
    for (;;) {
      const at = this.#room(need);
      if (at >= 0) return this.#seen(this.#place(at, length));
      const head = Atomics.load(this.#words, HEAD);
      if (this.#room(need) >= 0) continue;
      if (
        wait(this.#words, HEAD, head, timeoutMs, { spin: this.#spin, waitersIndex: WRITERS_ASLEEP }) === 'timed-out'
      ) {
        return undefined;
      }
    }
  }

  /** {@link RingBuffer.reserve} without blocking the event loop while the ring is full. */
  async reserveAsync(length: number, options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    const signal = waitSignal(options); // first: reading it runs the caller's getter
    this.#live();
    const need = this.#need(length);
    for (let waited = false; ; waited = true) {
      if (waited) this.#live(); // the ring may have been closed (or its memory changed) meanwhile
      const at = this.#room(need);
      if (at >= 0) return this.#seen(this.#place(at, length));
      const head = Atomics.load(this.#words, HEAD);
      if (this.#room(need) >= 0) continue;
      await waitAsync(this.#words, HEAD, head, undefined, { signal, waitersIndex: WRITERS_ASLEEP });
    }
  }

  /** Publishes the message reserved last, and wakes the reader if it sleeps. */
  commit(): void {
    this.#live();
    if (this.#writeAt < 0) throw mmanError('ERR_INVALID_STATE', 'nothing-reserved');
    const next = (this.#writeAt + align8(RECORD_HEADER + this.#reserved)) >>> 0;
    this.#writeAt = -1;
    Atomics.store(this.#words, TAIL, next | 0);
    notify(this.#words, TAIL, 1, { waitersIndex: READERS_ASLEEP });
  }

  /**
   * Copies `message` into the ring and publishes it: `true`. Blocks while the ring is full;
   * with `options.timeoutMs`, returns `false` if it stayed full that long (nothing written).
   */
  write(message: ArrayBufferView, options?: { timeoutMs?: undefined }): true;
  write(message: ArrayBufferView, options: RingWaitOptions): boolean;
  write(message: ArrayBufferView, options?: RingWaitOptions): boolean {
    this.#live();
    const bytes = asBytes(message);
    const room = this.reserve(bytes.length, options as RingWaitOptions);
    if (room === undefined) return false;
    room.set(bytes);
    this.commit();
    return true;
  }

  /** {@link RingBuffer.write} without blocking the event loop while the ring is full. */
  async writeAsync(message: ArrayBufferView, options?: { signal?: AbortSignal }): Promise<void> {
    this.#live();
    const bytes = asBytes(message);
    (await this.reserveAsync(bytes.length, options)).set(bytes);
    this.commit();
  }

  /**
   * Ends the stream: the reader's {@link RingBuffer.read} returns `null` once it has read
   * every message before: `true`. Blocks while the ring is full; with `options.timeoutMs`,
   * returns `false` if it stayed full that long (the stream goes on).
   */
  end(options?: { timeoutMs?: undefined }): true;
  end(options: RingWaitOptions): boolean;
  end(options?: RingWaitOptions): boolean {
    this.#live();
    if (this.reserve(0, options as RingWaitOptions) === undefined) return false;
    this.#lengths[(this.#writeAt & (this.capacity - 1)) >> 2] = END;
    this.commit();
    return true;
  }

  #need(length: number): number {
    validateInteger(length, 'length', 0, this.maxMessageLength);
    if (this.#writeAt >= 0) throw mmanError('ERR_INVALID_STATE', 'uncommitted');
    return align8(RECORD_HEADER + length);
  }

  // Where a record of `need` bytes can start now (absolute), or -1 while the ring is too full.
  #room(need: number): number {
    const tail = Atomics.load(this.#words, TAIL) >>> 0;
    const head = Atomics.load(this.#words, HEAD) >>> 0;
    const free = this.capacity - ((tail - head) >>> 0);
    const toEnd = this.capacity - (tail & (this.capacity - 1));
    return free >= (need <= toEnd ? need : toEnd + need) ? tail : -1;
  }

  #place(at: number, length: number): Uint8Array {
    let offset = at & (this.capacity - 1);
    if (align8(RECORD_HEADER + length) > this.capacity - offset) {
      this.#lengths[offset >> 2] = SKIP; // published with the record by commit()
      at = (at + this.capacity - offset) >>> 0;
      offset = 0;
    }
    this.#lengths[offset >> 2] = length;
    this.#writeAt = at;
    this.#reserved = length;
    return this.#data.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length);
  }

  // ---- reader ----

  /**
   * The next message: a view of the ring's bytes, valid until the next `read` (which
   * releases it to the writer) or {@link RingBuffer.release}. Blocks while the ring is
   * empty. Returns `null` once the writer has called {@link RingBuffer.end}, and, with
   * `options.timeoutMs`, `undefined` if it stayed empty that long.
   */
  read(options?: { timeoutMs?: undefined }): Uint8Array | null;
  read(options: RingWaitOptions): Uint8Array | null | undefined;
  read(options?: RingWaitOptions): Uint8Array | null | undefined {
    const timeoutMs = waitTimeout(options); // first: reading it runs the caller's getter
    this.#live();
    this.release();
    for (;;) {
      const message = this.#take();
      if (message !== undefined) return this.#seen(message);
      const tail = Atomics.load(this.#words, TAIL);
      if (tail >>> 0 !== Atomics.load(this.#words, HEAD) >>> 0) continue;
      if (
        wait(this.#words, TAIL, tail, timeoutMs, { spin: this.#spin, waitersIndex: READERS_ASLEEP }) === 'timed-out'
      ) {
        return undefined;
      }
    }
  }

  /** {@link RingBuffer.read} without blocking the event loop while the ring is empty. */
  async readAsync(options?: { signal?: AbortSignal }): Promise<Uint8Array | null> {
    const signal = waitSignal(options); // first: reading it runs the caller's getter
    this.#live();
    this.release();
    for (let waited = false; ; waited = true) {
      if (waited) this.#live(); // the ring may have been closed (or its memory changed) meanwhile
      const message = this.#take();
      if (message !== undefined) return this.#seen(message);
      const tail = Atomics.load(this.#words, TAIL);
      if (tail >>> 0 !== Atomics.load(this.#words, HEAD) >>> 0) continue;
      await waitAsync(this.#words, TAIL, tail, undefined, { signal, waitersIndex: READERS_ASLEEP });
    }
  }

  /** Gives the space of the message last read back to the writer (the next `read` does it anyway). */
  release(): void {
    this.#live();
    if (this.#readNext < 0) return;
    Atomics.store(this.#words, HEAD, this.#readNext | 0);
    this.#readNext = -1;
    notify(this.#words, HEAD, 1, { waitersIndex: WRITERS_ASLEEP });
  }

  // The message at the head, null at the end of the stream, undefined while empty.
  #take(): Uint8Array | null | undefined {
    let head = Atomics.load(this.#words, HEAD) >>> 0;
    const tail = Atomics.load(this.#words, TAIL) >>> 0;
    if (head === tail) return undefined;
    let offset = head & (this.capacity - 1);
    let length = this.#lengths[offset >> 2];
    if (length === SKIP) {
      head = (head + this.capacity - offset) >>> 0;
      offset = 0;
      length = this.#lengths[0];
    }
    if (length === END) {
      this.#readNext = (head + align8(RECORD_HEADER)) >>> 0;
      this.release();
      return null;
    }
    this.#readNext = (head + align8(RECORD_HEADER + length)) >>> 0;
    return this.#data.subarray(offset + RECORD_HEADER, offset + RECORD_HEADER + length);
  }

  /** Unmaps the ring and closes its SharedMemory in this process. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.mapping.unmap();
    this.memory.close();
  }

  /** True once {@link RingBuffer.close} has run. */
  get closed(): boolean {
    return this.#closed;
  }

  // Every method starts here: after close() the pages may still be mapped for an old view,
  // but the ring is done with them; and a ring whose mapping was unmapped, truncated under a
  // guard (a ring over zero pages talks to no one) or made read-only since is no ring either.
  #live(): void {
    if (this.#closed) throw mmanError('ERR_RING_BUFFER_CLOSED');
    handleOf(this.mapping, 'A RingBuffer');
  }

  // What a call read from a guarded ring's pages, once the guard has been asked whether they
  // were still there (the first touch of a truncated page is what the guard sees).
  #seen<T>(result: T): T {
    if (this.mapping.guarded) handleOf(this.mapping, 'A RingBuffer');
    return result;
  }

  /** Same as {@link RingBuffer.close}, for `using`. */
  [dispose](): void {
    this.close();
  }
}

// options.spin, or the default: spin only where another CPU can make progress meanwhile.
function validateSpin(options: unknown): number {
  const opts = validateOptions<RingBufferOptions>(options);
  return opts.spin === undefined
    ? availableParallelism() > 1
      ? 20000
      : 0
    : validateInt32(opts.spin, 'options.spin', 0);
}

function asBytes(message: unknown): Uint8Array {
  if (!ArrayBuffer.isView(message))
    throw invalidArgType('message', 'an instance of Buffer, TypedArray or DataView', message);
  return new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
}
