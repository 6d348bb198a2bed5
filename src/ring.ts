// A message queue in shared memory: length-prefixed records in a power-of-two ring, futexes
// on header words for "space free" and "data ready", waiter counts so that neither side makes
// a syscall while the other is awake. Two protocols share the header and the API:
//
// ONE WRITER, ONE READER (the default): HEAD (released by the reader) and TAIL (published by
// the writer) are free-running u32 byte positions; a record is a 4-byte length (SKIP: padding
// to the end of the ring; END: the stream's end) and its bytes, 8-aligned. Each side stores
// only its own word: no lock, no compare-and-swap; and loads its own word plainly (the other
// side's with Atomics, whose seq-cst store publishes the record or the space).
//
// MANY WRITERS AND/OR MANY READERS (options.writers or options.readers 'many'; the MODE word
// says which, so attach() learns it). Three cursors, u32 byte positions that wrap at 2^32
// (capacity <= 2^30, so every distance below is exact as (a - b) >>> 0):
//
//   HEAD <= READ <= TAIL <= HEAD + capacity
//   [HEAD, READ)  records readers have claimed: READING (a reader's view) or FREE (released)
//   [READ, TAIL)  records writers have placed: RESERVED (being filled), COMMITTED, FREE (a
//                 wrap's padding, or a record its writer abandoned), or END
//   [TAIL, HEAD + capacity)  free space
//
// A record is an 8-byte header, [state, length], then its bytes, 8-aligned. The state word is
// the only one that changes after the record is published: a phase in its top two bits and,
// while someone owns it, that thread's id (gettid, as a Mutex word holds it) in the low 30:
//
//   RESERVED|writer tid --commit--> COMMITTED --read--> READING|reader tid --release--> FREE
//   RESERVED, writer gone --a reader, after the liveness period--> FREE   (ring.skipped + 1)
//   READING, reader gone  --a writer waiting for room, same--> FREE        (ring.lost + 1)
//
// Who moves what:
// - TAIL, only under WRITE_LOCK (a robust Mutex word): the writer checks room against HEAD,
//   writes the header(s) (a FREE SKIP record to the end of the ring if the record does not
//   fit before it, then its own at offset 0), and only then stores TAIL. So every header
//   below TAIL is complete when a reader sees TAIL (the store publishes it), whatever a
//   previous lap left in those bytes, and a writer that dies anywhere in here leaves either
//   nothing (TAIL not stored) or a record that names it. The lock is held for a few loads
//   and stores, never while a message is filled in: writers fill their records in parallel.
// - READ and HEAD, only under READ_LOCK (another robust Mutex word). A reader claims the
//   record at READ if it is COMMITTED (state := READING|tid, then READ := past it), passes
//   over FREE ones, stops at END without passing it (so every reader gets null, for ever),
//   and waits at a RESERVED one: records are claimed in TAIL order, which for each writer is
//   the order it committed them in (a writer holds one reservation at a time). A RESERVED
//   record at READ whose writer is gone (checked once the reader has been held up there for
//   the liveness period) is made FREE and counted in SKIPPED. release() stores FREE, and if
//   the record is at HEAD advances HEAD over consecutive FREE records (never past READ; in
//   read(), whose claim takes READ_LOCK next anyway, that claim stores FREE and does it, under
//   its lock); a FREE record behind another reader's READING one is passed over by that
//   reader's release (it stores FREE before it looks at HEAD, and the one advancing looks at
//   the state after storing HEAD: seq-cst Atomics, so one of the two sees the other). A FREE
//   record a reader passes at READ (padding, skipped, abandoned) has no reader to release
//   it: that reader advances HEAD the same way before it lets go of READ_LOCK. A writer
//   held up by a full ring for the liveness period takes READ_LOCK and frees a READING
//   record at HEAD whose reader is gone (counted in LOST), then advances HEAD.
// - Lock holders that die: Mutex hands the lock to the next locker ('owner-died'); every
//   step under either lock is a single store that leaves the ring consistent (a READING or
//   FREE record found at READ is passed over), except end(), which stores ENDED (the END
//   record's position | 1) before TAIL: a WRITE_LOCK taken over finishes that TAIL store.
// - Plain loads and stores: a word stored only under a lock is loaded without Atomics by
//   that lock's holder (TAIL and ENDED under WRITE_LOCK, READ and HEAD under READ_LOCK);
//   READ, a record's READING state (looked at only under READ_LOCK), and the FREE that read()
//   stores over the record it read before (once READING, a state is looked at only under
//   READ_LOCK), are stored plainly under READ_LOCK; a record's header is written plainly and
//   published by the TAIL store.
//   Every other access to a word that another thread stores is an Atomics one (seq-cst).
// - No ABA: no cursor is ever compare-and-swapped (each moves under its lock); the only
//   compare-and-swaps are on a record's state, from a value naming a thread that is gone.
//   A cursor read without the other side's lock is stale only in the safe direction (HEAD
//   and TAIL only grow): a writer sees less room, a reader fewer records.
// - Waiting: readers sleep on COMMITS (bumped by every commit and end) with READERS_ASLEEP
//   as its waiter count, writers on HEAD with WRITERS_ASLEEP; a commit wakes one reader,
//   and a reader that claims a record with more behind it wakes one more (so a wake taken
//   by a reader that found a RESERVED record is passed on); end() wakes them all. A reader
//   held up at a RESERVED record, and a writer held up by a full ring, sleep at most the
//   liveness period (MUTEX_LIVENESS_MS, as a Mutex's sleepers) between looks. A busy lock is
//   waited for in the Mutex (until the call's deadline, if it has one); an async call first
//   waits for it on a waiter thread (waitAsync on the lock word, sleepers bit set), so the
//   event loop is not held while another process holds it.
import { availableParallelism } from 'node:os';
import { types } from 'node:util';

import { native } from './native';
import { Mutex } from './mutex';
import { SharedMemory } from './shared';
import { dispose, handleOf, type Mapping } from './mapping';
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- named by {@link} in the doc comments
import { notify, unwatchAbort, validateTimeout, wait, waitAsync, watchAbort, type WaitOptions } from './futex';
import {
  abortError,
  illegalConstructor,
  INT32_MAX,
  invalidArgType,
  invalidArgValue,
  mappingReadOnly,
  mmanError,
  outOfRange,
  validateInt32,
  validateAbortSignal,
  validateInteger,
  validateOneOf,
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

// The many-writer / many-reader protocol (above): its header words, each on a cache line.
const MODE = 66; // bit 0: many writers, bit 1: many readers (0: the one-to-one protocol)
const MANY_WRITERS = 1;
const MANY_READERS = 2;
const READ = 80; // bytes claimed by readers (u32, wraps)
const WRITE_LOCK = 96; // a Mutex word: placing records, moving TAIL
const READ_LOCK = 112; // a Mutex word: claiming records, moving READ and HEAD
const COMMITS = 128; // bumped by every commit and end: the word readers sleep on
const SKIPPED = 144; // records whose writer died holding them
const LOST = 160; // records whose reader died holding them
const ENDED = 176; // 0, or the END record's position | 1
// A record's state word: a phase in the top two bits, an owner's thread id in the low 30.
const PHASE = 0xc0000000 | 0;
const TID = 0x3fffffff;
const LOCK_WAITERS = native.constants.FUTEX_WAITERS | 0; // a lock word's sleepers bit, as a Mutex's
const COMMITTED = 0x40000000;
const READING = 0x80000000 | 0;
const FREE = 0xc0000000 | 0;
const MANY_HEADER = 8; // [state, length]
// How many looks of a wait's spin the ring makes before it calls wait() (as wait() makes its
// first ones in JavaScript before it calls the addon).
const SPIN_HERE = 1000;
// What #placeMany() answers instead of an offset.
const NO_ROOM = -1; // the ring is too full
const LOCK_BUSY = -2; // WRITE_LOCK stayed busy until the deadline
// This thread's id, as a record or a lock word names it (each worker loads this module anew).
const SELF = native.threadId();
// How long a writer or reader held up by one record waits before asking whether its owner lives.
const LIVENESS_MS: number = native.constants.MUTEX_LIVENESS_MS;

const align8 = (n: number): number => (n + 7) & ~7;

/** Options for {@link RingBuffer.create} and {@link RingBuffer.attach}; any other key is `ERR_INVALID_ARG_VALUE`. */
export interface RingBufferOptions {
  /**
   * Iterations to spin on the word before sleeping in the kernel (see
   * {@link WaitOptions.spin}). Default 20000 (10–40 µs of one CPU when nothing comes; a peer that
   * is running answers within 1 µs and is caught, see bench/RESULTS.md) when this machine has more
   * than one CPU, else 0.
   */
  spin?: number;
  /**
   * `'one'` (the default) or `'many'`: how many writers may use the ring at once. Only
   * {@link RingBuffer.create} decides it; {@link RingBuffer.attach} reads it from the ring,
   * and refuses a value the ring was not made with (`ERR_INVALID_ARG_VALUE`).
   */
  writers?: 'one' | 'many';
  /** `'one'` (the default) or `'many'`: how many readers may use the ring at once (as `writers`). */
  readers?: 'one' | 'many';
}

// The options of a blocking call, checked before it blocks: its timeout, for wait().
function waitTimeout(options: unknown): number | undefined {
  const { timeoutMs } = validateOptions<RingWaitOptions>(options);
  validateTimeout(timeoutMs);
  return timeoutMs;
}

// The options of an async call, checked before it waits: its signal, for waitAsync(). It has no
// timeout (an AbortSignal.timeout() does that): a `timeoutMs` passed here is refused, not ignored.
function waitSignal(options: unknown): AbortSignal | undefined {
  const opts = validateOptions<{ signal?: AbortSignal }>(options);
  if (options !== undefined) {
    for (const key of Object.keys(opts)) {
      if (key !== 'signal')
        throw invalidArgValue(
          `options.${key}`,
          (opts as Record<string, unknown>)[key],
          'is not an option of readAsync(), reserveAsync() or writeAsync() (signal; for a timeout, AbortSignal.timeout())',
        );
    }
  }
  return validateAbortSignal(opts.signal, 'options.signal');
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

const CONSTRUCT = Symbol('RingBuffer.construct');

/**
 * A queue of messages (byte strings) in shared memory, for processes and threads. The writer
 * copies each message into the ring once (or builds it in place with
 * {@link RingBuffer.reserve}); the reader gets a view of the ring's own bytes
 * ({@link RingBuffer.read}), valid until it releases it: no other copy is made.
 *
 * By default the ring is for one writer and one reader at a time. Made with
 * `{ writers: 'many' }` and/or `{ readers: 'many' }`, any number of processes and threads may
 * write and read it at once, with the same methods:
 * - each committed message is read by exactly one reader;
 * - the messages of one writer are read in the order it committed them; with one reader,
 *   that reader gets them in that order (with several, each claims them in that order, and
 *   what they do with them then runs side by side);
 * - {@link RingBuffer.end} from any writer ends the stream: every message reserved before it
 *   is still read (its commit is still accepted), then every reader's `read()` returns
 *   `null`, for ever; a `reserve()` or `write()` (or their async forms) after it throws
 *   `ERR_RING_BUFFER_ENDED` (another `end()` returns `true`);
 * - a writer that dies (killed, or a worker terminated) between `reserve()` and `commit()`
 *   holds the readers up at its record for at most about 50 ms (the {@link Mutex}'s liveness
 *   period): the record is skipped and counted in {@link RingBuffer.skipped}. A reader that
 *   dies between `read()` and `release()` holds its record's space for as long: it is freed,
 *   not handed to another reader (the reader may have acted on it before it died: the ring
 *   delivers at most once), and counted in {@link RingBuffer.lost}. A writer or reader that
 *   is alive but holds a record (stopped, or just slow) holds the others up for as long.
 *
 * Either side blocks on futexes when the ring is empty or full, after a short spin; each
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
  /** How many writers the ring was made for (`options.writers` of {@link RingBuffer.create}). */
  readonly writers: 'one' | 'many';
  /** How many readers the ring was made for (`options.readers` of {@link RingBuffer.create}). */
  readonly readers: 'one' | 'many';
  #words: Int32Array;
  #data: Uint8Array;
  #lengths: Int32Array;
  #buffer: ArrayBuffer; // the mapping's, whose bytes from HEADER_BYTES on are #data's
  #mask: number; // capacity - 1
  #guarded: boolean; // mapping.guarded: #seen() asks the guard
  #spin: number;
  #spinHere: number; // the looks of a wait's spin made in the ring (the rest in wait())
  #writeAt = -1; // writer: where the reserved record starts (absolute, u32)
  #reserved = 0; // writer: payload bytes of the reserved record
  #readNext = -1; // reader: head after the message last returned, not yet released
  #closed = false;
  #ended = false; // one writer: end() has run
  // The many-writer / many-reader protocol:
  #many: boolean;
  #header: number; // a record's header bytes: RECORD_HEADER, or MANY_HEADER with many writers or readers
  #writeLock: Mutex | undefined;
  #readLock: Mutex | undefined;
  #readAt = -1; // reader: the record it holds (absolute, u32), until release()
  #readerBlocked = false; // reader: its last look found a RESERVED record at READ
  // The times below are performance.now() values: NaN until then, a double from the start
  // (0 would start the field as a small integer, and the object's shape would change at the
  // first wait, throwing the optimized code of every method away).
  #readerHeldAt = -1; // reader: the RESERVED record it found at READ last, and since when
  #readerHeldSince = NaN;
  #writerHeldAt = -1; // writer: the HEAD a full ring showed it last, and since when
  #writerHeldSince = NaN;
  #contended = false; // #untilFree() slept: take the next lock marked
  #freedAt = -1; // reader: the record read() freed, for its #claim() to move HEAD over (absolute, u32)
  #seenHead = 0; // writer: the HEAD #placeMany() found too little room before
  #waitEnds: Set<() => void> | undefined; // close() calls each: ends the async calls' waits
  #writesQueued = 0; // writer: writeAsync() calls not committed (or failed) yet, in call order
  #lastWrite: Promise<void> | undefined; // resolves once every one of them committed or failed

  private constructor(
    token: typeof CONSTRUCT,
    memory: SharedMemory,
    mapping: Mapping,
    capacity: number,
    spin: number,
    mode: number,
  ) {
    if (token !== CONSTRUCT) throw illegalConstructor('RingBuffer.create() or attach()');
    this.#spin = spin;
    this.#spinHere = Math.min(spin, SPIN_HERE);
    this.memory = memory;
    this.mapping = mapping;
    this.capacity = capacity;
    this.maxMessageLength = capacity / 2 - 8;
    this.writers = (mode & MANY_WRITERS) !== 0 ? 'many' : 'one';
    this.readers = (mode & MANY_READERS) !== 0 ? 'many' : 'one';
    const buffer = mapping.buffer;
    this.#buffer = buffer;
    this.#mask = capacity - 1;
    this.#guarded = mapping.guarded;
    this.#words = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES, capacity);
    this.#lengths = new Int32Array(buffer, HEADER_BYTES, capacity / 4);
    this.#many = mode !== 0;
    this.#header = this.#many ? MANY_HEADER : RECORD_HEADER;
    if (this.#many) {
      this.#writeLock = new Mutex(this.#words, WRITE_LOCK);
      this.#readLock = new Mutex(this.#words, READ_LOCK);
    }
  }

  /**
   * Makes a ring of `capacity` bytes (a power of two from 4096 to 2^30) in a new memfd, for
   * one writer and one reader, or, with `options.writers` / `options.readers` `'many'`, for
   * as many as use it (see {@link RingBuffer}).
   */
  static create(capacity: number, options?: RingBufferOptions): RingBuffer {
    validateInteger(capacity, 'capacity', 4096, 2 ** 30);
    if ((capacity & (capacity - 1)) !== 0) throw outOfRange('capacity', 'a power of two', capacity);
    const { spin, mode } = validateRingOptions(options); // before anything is made
    const memory = SharedMemory.create(HEADER_BYTES + capacity, { fixedSize: true });
    const mapping = memory.map();
    const ring = new RingBuffer(CONSTRUCT, memory, mapping, capacity, spin, mode);
    ring.#words[CAPACITY] = capacity;
    ring.#words[MODE] = mode;
    Atomics.store(ring.#words, MAGIC, MAGIC_VALUE);
    return ring;
  }

  /**
   * Opens the ring another process made, from its SharedMemory (e.g.
   * `SharedMemory.inherited()[0]`). The number of writers and readers is the ring's own (read
   * from its header); `options.writers` / `options.readers`, if given, must be what it was
   * made with (`ERR_INVALID_ARG_VALUE` otherwise).
   */
  static attach(memory: SharedMemory, options?: RingBufferOptions): RingBuffer {
    if (!(memory instanceof SharedMemory)) throw invalidArgType('memory', 'an instance of SharedMemory', memory);
    // Both ends store their position in the header: a read-only ring cannot be read either.
    if (memory.readOnly) throw mappingReadOnly('A RingBuffer (its reader stores how far it read)');
    const { spin, mode: asked, given } = validateRingOptions(options);
    const mapping = memory.map();
    // Too small for a header and the smallest ring: no ring (and no header to read).
    const words = mapping.length >= HEADER_BYTES + 4096 ? new Int32Array(mapping.buffer, 0, HEADER_BYTES / 4) : null;
    const capacity = words === null ? 0 : words[CAPACITY];
    const mode = words === null ? 0 : words[MODE];
    // The header is whatever the other side wrote: a capacity that is not one create() makes
    // would put records outside the ring.
    if (
      words === null ||
      Atomics.load(words, MAGIC) !== MAGIC_VALUE ||
      capacity < 4096 ||
      capacity > 2 ** 30 ||
      (capacity & (capacity - 1)) !== 0 ||
      HEADER_BYTES + capacity !== mapping.length ||
      (mode & ~(MANY_WRITERS | MANY_READERS)) !== 0
    ) {
      mapping.unmap();
      throw invalidArgValue('memory', memory.name ?? `fd ${memory.fd}`, 'does not hold a RingBuffer');
    }
    const differ = (asked ^ mode) & given;
    if (differ !== 0) {
      mapping.unmap();
      const bit = (differ & MANY_WRITERS) !== 0 ? MANY_WRITERS : MANY_READERS;
      throw invalidArgValue(
        `options.${bit === MANY_WRITERS ? 'writers' : 'readers'}`,
        (asked & bit) !== 0 ? 'many' : 'one',
        `is not what the ring was made for ('${(mode & bit) !== 0 ? 'many' : 'one'}')`,
      );
    }
    return new RingBuffer(CONSTRUCT, memory, mapping, capacity, spin, mode);
  }

  // ---- writer ----

  /**
   * Reserves room for a message of `length` bytes and returns the ring's bytes to fill in
   * place; {@link RingBuffer.commit} publishes it. Blocks while the ring is full; with
   * `options.timeoutMs`, returns `undefined` if the ring stayed full that long. Throws
   * `ERR_RING_BUFFER_ENDED` once the stream was ended.
   */
  reserve(length: number, options?: { timeoutMs?: undefined }): Uint8Array;
  reserve(length: number, options: RingWaitOptions): Uint8Array | undefined;
  reserve(length: number, options?: RingWaitOptions): Uint8Array | undefined {
    const timeoutMs = options === undefined ? undefined : waitTimeout(options); // first: it runs the caller's getter
    this.#live();
    const offset = this.#reserve(length, timeoutMs);
    return offset < 0 ? undefined : this.#seen(this.#view(offset + this.#header, length));
  }

  // reserve() for either protocol: the reserved record's offset in the ring, or -1 if there was
  // no room by the end of `timeoutMs`.
  #reserve(length: number, timeoutMs: number | undefined): number {
    const need = this.#need(length);
    return this.#many
      ? this.#reserveMany(need, length, deadlineOf(timeoutMs))
      : this.#reserveOne(need, length, timeoutMs);
  }

  // The one-writer reserve(): the reserved record's offset in the ring, waiting for room
  // (`timeoutMs`); -1 if there was none by then.
  #reserveOne(need: number, length: number, timeoutMs: number | undefined): number {
    for (;;) {
      const at = this.#room(need);
      if (at >= 0) return this.#place(at, length);
      const head = Atomics.load(this.#words, HEAD);
      if (this.#room(need) >= 0) continue;
      if (
        wait(this.#words, HEAD, head, timeoutMs, { spin: this.#spin, waitersIndex: WRITERS_ASLEEP }) === 'timed-out'
      ) {
        return -1;
      }
    }
  }

  // A view of `length` bytes at `offset` in the ring's data (a third of subarray()'s cost). A
  // length read from the ring that a peer scribbled is cut at the ring's end (0 if negative),
  // as subarray() would cut it: a view never leaves the ring's bytes.
  #view(offset: number, length: number): Uint8Array {
    const room = this.capacity - offset;
    if (length >>> 0 <= room) return new Uint8Array(this.#buffer, HEADER_BYTES + offset, length);
    // (A scribbled cursor can also put `offset` a few bytes past the end: a view of nothing.)
    return new Uint8Array(
      this.#buffer,
      HEADER_BYTES + Math.min(offset, this.capacity),
      length < 0 || room < 0 ? 0 : room,
    );
  }

  /** {@link RingBuffer.reserve} without blocking the event loop while the ring is full. */
  async reserveAsync(length: number, options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    const signal = waitSignal(options); // first: reading it runs the caller's getter
    this.#live();
    if (signal?.aborted) throw abortError(signal);
    return this.#whenRoom(length, signal, reserved);
  }

  // Waits without blocking for room for a message of `length` bytes, reserves it and, in the
  // same turn of the event loop, hands its view to `then` (so that nothing else this thread
  // runs comes between the reservation and what `then` does with it).
  async #whenRoom<T>(length: number, signal: AbortSignal | undefined, then: (room: Uint8Array) => T): Promise<T> {
    const need = this.#need(length);
    for (let waited = false; ; waited = true) {
      // The ring may have been closed (or its memory changed) meanwhile, and another call of
      // this writer may have reserved a message, or ended the stream: checked again.
      if (waited) this.#need(length, true);
      if (this.#many) {
        if (Atomics.load(this.#words, WRITE_LOCK) !== 0) {
          await this.#untilFree(WRITE_LOCK, signal);
          this.#need(length, true);
        }
        const offset = this.#placeMany(need, length);
        if (offset >= 0) return then(this.#seen(this.#view(offset + MANY_HEADER, length)));
        const head = this.#seenHead;
        this.#writerHeldUp(head);
        await this.#waitAsync(HEAD, head, LIVENESS_MS, signal, WRITERS_ASLEEP);
        continue;
      }
      const at = this.#room(need);
      if (at >= 0) return then(this.#seen(this.#view(this.#place(at, length) + RECORD_HEADER, length)));
      const head = Atomics.load(this.#words, HEAD);
      if (this.#room(need) >= 0) continue;
      await this.#waitAsync(HEAD, head, undefined, signal, WRITERS_ASLEEP);
    }
  }

  /** Publishes the message reserved last, and wakes a reader if one sleeps. */
  commit(): void {
    this.#live();
    if (this.#writeAt < 0) throw mmanError('ERR_INVALID_STATE', 'nothing-reserved');
    if (this.#many) {
      this.#commitMany();
      return;
    }
    this.#commitOne();
  }

  #commitOne(): void {
    const next = (this.#writeAt + align8(RECORD_HEADER + this.#reserved)) >>> 0;
    this.#writeAt = -1;
    Atomics.store(this.#words, TAIL, next | 0);
    if (Atomics.load(this.#words, READERS_ASLEEP) !== 0) notify(this.#words, TAIL, 1, { waitersIndex: READERS_ASLEEP });
  }

  /**
   * Copies `message` into the ring and publishes it: `true`. Blocks while the ring is full;
   * with `options.timeoutMs`, returns `false` if it stayed full that long (nothing written).
   * Throws `ERR_RING_BUFFER_ENDED` once the stream was ended.
   */
  write(message: ArrayBufferView, options?: { timeoutMs?: undefined }): true;
  write(message: ArrayBufferView, options: RingWaitOptions): boolean;
  write(message: ArrayBufferView, options?: RingWaitOptions): boolean {
    // The options first: their getters are the caller's code, which may detach or resize the
    // message, or close the ring; nothing of the caller's runs after the message is read.
    const timeoutMs = options === undefined ? undefined : waitTimeout(options);
    this.#live();
    const bytes = asBytes(message);
    // reserve() + set() + commit(), without a view of the record: copied in at its offset.
    const length = lengthOf(bytes);
    const offset = this.#reserve(length, timeoutMs);
    if (offset < 0) return false;
    this.#copy(this.#data, offset + this.#header, bytes, message, length);
    this.#seen(offset); // a guarded ring: the header and the bytes reached its pages
    if (this.#many) this.#commitMany();
    else this.#commitOne();
    return true;
  }

  // Copies the message reserved last into `into` (the ring's data, or the record's view) at
  // `at`. A length-tracking view of a growable
  // SharedArrayBuffer that another thread grew since its length was read can make set() throw:
  // the record is given up then, with a coded error, not left reserved.
  #copy(into: Uint8Array, at: number, bytes: Uint8Array, message: ArrayBufferView, length: number): void {
    try {
      into.set(bytes, at);
    } catch {
      this.#abandon();
      throw changedLength(message, length);
    }
  }

  /**
   * {@link RingBuffer.write} without blocking the event loop while the ring is full. With
   * room, and no call of this object's still waiting, the message is committed by the time
   * it returns. Calls of one object that overlap are queued: each waits until the ones before
   * it committed (or failed), so their messages are committed in call order; a `write()`,
   * `end()` or `close()` meanwhile does not wait for them. A call whose `options.signal` has
   * aborted, or aborts while it waits, rejects with an `AbortError`; nothing is written.
   */
  async writeAsync(message: ArrayBufferView, options?: { signal?: AbortSignal }): Promise<void> {
    const signal = waitSignal(options); // first: reading it runs the caller's getter
    this.#live();
    const bytes = asBytes(message);
    const length = lengthOf(bytes);
    if (signal?.aborted) throw abortError(signal);
    // The queue: `before` resolves once every call before this one committed or failed, and
    // this call's own `turnDone` once it has too (after `before`, whatever happened here).
    const before = this.#writesQueued === 0 ? undefined : this.#lastWrite;
    let passTurn!: () => void;
    this.#lastWrite = new Promise<void>((resolve) => (passTurn = resolve));
    this.#writesQueued++;
    let passed = false;
    const turnDone = (): void => {
      if (passed) return;
      passed = true;
      const next = (): void => {
        if (--this.#writesQueued === 0) this.#lastWrite = undefined;
        passTurn();
      };
      if (before === undefined) next();
      else void before.then(next);
    };
    try {
      if (before !== undefined) {
        await turn(before, signal, (this.#waitEnds ??= new Set()));
        this.#live();
      }
      await this.#whenRoom(length, signal, (room) => {
        // A wait ran other code: a message whose buffer was resized or detached meanwhile is
        // not the `length` bytes reserved. Nothing is written then (the record is given up).
        // (asBytes() runs none of the caller's code: nothing else comes between the
        // reservation and the commit.)
        let now: Uint8Array;
        try {
          now = asBytes(message);
        } catch (err) {
          this.#abandon();
          throw err;
        }
        if (lengthOf(now) !== length) {
          this.#abandon();
          throw changedLength(message, length);
        }
        // (room is `length` bytes: a message grown since by another thread throws, never
        // runs past the record.)
        if (length !== 0) this.#copy(room, 0, now, message, length);
        this.commit();
        turnDone(); // the next call may reserve now, in this same turn
      });
    } finally {
      turnDone();
    }
  }

  /**
   * Ends the stream: once every message before it has been read, {@link RingBuffer.read}
   * returns `null` (to every reader, for ever, on a ring with many readers): `true`. After
   * it, this writer's (and on a ring with many writers, every writer's) `reserve()` and
   * `write()` throw `ERR_RING_BUFFER_ENDED`. Blocks while the ring is full; with
   * `options.timeoutMs`, returns `false` if it stayed full that long (the stream goes on).
   * `end()` again returns `true`. On a ring with many writers, a message another writer
   * reserved before it is still read (its `commit()` is accepted).
   */
  end(options?: { timeoutMs?: undefined }): true;
  end(options: RingWaitOptions): boolean;
  end(options?: RingWaitOptions): boolean {
    this.#live();
    if (this.#many) {
      const deadline = deadlineOf(waitTimeout(options));
      if (this.#writeAt >= 0) throw mmanError('ERR_INVALID_STATE', 'uncommitted');
      return this.#endMany(deadline);
    }
    if (this.#ended) return true;
    if (this.reserve(0, options as RingWaitOptions) === undefined) return false;
    this.#lengths[(this.#writeAt & (this.capacity - 1)) >> 2] = END;
    this.commit();
    this.#ended = true;
    return true;
  }

  // The bytes a record of `length` bytes takes; `live`: the ring is checked to be open first.
  #need(length: number, live = false): number {
    if (live) this.#live();
    validateInteger(length, 'length', 0, this.maxMessageLength);
    if (this.#writeAt >= 0) throw mmanError('ERR_INVALID_STATE', 'uncommitted');
    if (this.#ended) throw mmanError('ERR_RING_BUFFER_ENDED');
    return align8(this.#header + length);
  }

  // Gives up the message reserved last, unwritten: on the one-writer ring nothing of it was
  // published (TAIL did not move); on the other, readers pass over it (counted in SKIPPED).
  #abandon(): void {
    if (this.#writeAt < 0) return;
    if (this.#many) {
      Atomics.store(this.#lengths, (this.#writeAt & this.#mask) >> 2, FREE);
      Atomics.add(this.#words, SKIPPED, 1);
      this.#published(1);
    }
    this.#writeAt = -1;
  }

  // Where a record of `need` bytes can start now (absolute), or -1 while the ring is too full.
  #room(need: number): number {
    // TAIL is stored by the one writer alone, which this is: a plain load.
    const tail = this.#words[TAIL] >>> 0;
    const head = Atomics.load(this.#words, HEAD) >>> 0;
    const free = this.capacity - ((tail - head) >>> 0);
    const toEnd = this.capacity - (tail & (this.capacity - 1));
    return free >= (need <= toEnd ? need : toEnd + need) ? tail : -1;
  }

  // Reserves the record at `at` (absolute; a SKIP record first if it does not fit before the
  // end of the ring): its offset in the ring.
  #place(at: number, length: number): number {
    let offset = at & (this.capacity - 1);
    if (align8(RECORD_HEADER + length) > this.capacity - offset) {
      this.#lengths[offset >> 2] = SKIP; // published with the record by commit()
      at = (at + this.capacity - offset) >>> 0;
      offset = 0;
    }
    this.#lengths[offset >> 2] = length;
    this.#writeAt = at;
    this.#reserved = length;
    return offset;
  }

  // ---- reader ----

  /**
   * The next message: a view of the ring's bytes, valid until this reader's next `read`
   * (which releases it) or {@link RingBuffer.release}. Blocks while the ring is empty.
   * Returns `null` once a writer has called {@link RingBuffer.end} and every message before
   * it has been read (and again at every later call, on every kind of ring), and, with
   * `options.timeoutMs`, `undefined` if it stayed empty that long.
   */
  read(options?: { timeoutMs?: undefined }): Uint8Array | null;
  read(options: RingWaitOptions): Uint8Array | null | undefined;
  read(options?: RingWaitOptions): Uint8Array | null | undefined {
    const timeoutMs = options === undefined ? undefined : waitTimeout(options); // first: it runs the caller's getter
    this.#live();
    if (this.#many) {
      this.#releaseMany(true); // HEAD moves in the #claim() that follows, under the lock it takes
      return this.#readMany(deadlineOf(timeoutMs));
    }
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
      // The ring may have been closed (or its memory changed) meanwhile, and another call of
      // this reader may have read a message: this read releases it, as a read does.
      if (waited) this.#resume();
      if (this.#many) {
        if (Atomics.load(this.#words, READ_LOCK) !== 0) {
          await this.#untilFree(READ_LOCK, signal);
          this.#resume();
        }
        const commits = Atomics.load(this.#words, COMMITS);
        const message = this.#claim();
        if (message !== undefined) return this.#seen(message);
        const timeout = this.#readerLooks() ? LIVENESS_MS : undefined;
        await this.#waitAsync(COMMITS, commits, timeout, signal, READERS_ASLEEP);
        continue;
      }
      const message = this.#take();
      if (message !== undefined) return this.#seen(message);
      const tail = Atomics.load(this.#words, TAIL);
      if (tail >>> 0 !== Atomics.load(this.#words, HEAD) >>> 0) continue;
      await this.#waitAsync(TAIL, tail, undefined, signal, READERS_ASLEEP);
    }
  }

  #resume(): void {
    this.#live();
    this.release();
  }

  /**
   * Gives the space of the message this reader read last back to the writers (its next
   * `read` does it anyway); the view `read` returned may be overwritten from then on.
   */
  release(): void {
    this.#live();
    if (this.#many) {
      this.#releaseMany(false);
      return;
    }
    if (this.#readNext < 0) return;
    Atomics.store(this.#words, HEAD, this.#readNext | 0);
    this.#readNext = -1;
    if (Atomics.load(this.#words, WRITERS_ASLEEP) !== 0) notify(this.#words, HEAD, 1, { waitersIndex: WRITERS_ASLEEP });
  }

  // The message at the head, null at the end of the stream, undefined while empty.
  #take(): Uint8Array | null | undefined {
    // HEAD is stored by the one reader alone, which this is: a plain load.
    let head = this.#words[HEAD] >>> 0;
    const tail = Atomics.load(this.#words, TAIL) >>> 0;
    if (head === tail) return undefined;
    let offset = head & (this.capacity - 1);
    let length = this.#lengths[offset >> 2];
    if (length === SKIP) {
      head = (head + this.capacity - offset) >>> 0;
      offset = 0;
      length = this.#lengths[0];
    }
    // The end: HEAD stays before it, so that every later read() (of this reader or another
    // attached later) finds it too and returns null, as a ring with many readers does.
    if (length === END) return null;
    this.#readNext = (head + align8(RECORD_HEADER + length)) >>> 0;
    return this.#view(offset + RECORD_HEADER, length);
  }

  // ---- many writers, many readers (the protocol at the top of this file) ----

  // The lock words are Mutex words: the uncontended take and give are one compare-and-swap
  // here; a busy one sleeps in the Mutex (which takes it over from a holder that died) until
  // `deadline`: false if it is still busy then. After #untilFree() slept, it is taken marked
  // (the sleepers after this one need waking at its unlock, as the Mutex does it).
  #lock(index: number, deadline = Infinity): boolean {
    const mine = this.#contended ? SELF | LOCK_WAITERS : SELF;
    this.#contended = false;
    if (Atomics.compareExchange(this.#words, index, 0, mine) === 0) return true;
    const mutex = index === WRITE_LOCK ? this.#writeLock! : this.#readLock!;
    const state = mutex.lock(deadline === Infinity ? undefined : Math.max(0, deadline - performance.now()));
    if (state === 'timed-out') return false;
    if (state === 'owner-died' && index === WRITE_LOCK) this.#finishEnd();
    return true;
  }

  // For the async calls: waits without blocking the event loop while lock `index` is held by
  // a thread that lives (a sleeper is woken by the holder's unlock, and looks at the holder
  // every liveness period), so that the #lock() that follows rarely waits.
  async #untilFree(index: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      let word = Atomics.load(this.#words, index);
      if (word === 0 || native.threadGone(word & TID)) return;
      if ((word & LOCK_WAITERS) === 0) {
        if (Atomics.compareExchange(this.#words, index, word, word | LOCK_WAITERS) !== word) continue;
        word |= LOCK_WAITERS;
      }
      await this.#waitAsync(index, word, LIVENESS_MS, signal);
      this.#live();
      this.#contended = true;
    }
  }

  // waitAsync() on word `index` for the async calls, which close() ends too: then it resolves,
  // and the call's next look at the ring throws ERR_RING_BUFFER_CLOSED (a pending call on a
  // closed ring settled neither way, and kept the process alive for ever). The caller's
  // signal is watched as waitAsync() watches one (one listener however many calls share it),
  // not combined by AbortSignal.any(): Node keeps what each of those made for as long as its
  // sources live, and a signal per call (AbortSignal.timeout()) grew the heap without end.
  async #waitAsync(
    index: number,
    value: number,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    waitersIndex?: number,
  ): Promise<void> {
    if (signal?.aborted) throw abortError(signal);
    const controller = new AbortController();
    const ends = (this.#waitEnds ??= new Set());
    // What ended the wait first, close() or the caller's signal, is what the call reports.
    let cause: 'closed' | 'aborted' | undefined;
    const closing = (): void => {
      cause ??= 'closed';
      controller.abort();
    };
    const abort = (): void => {
      cause ??= 'aborted';
      controller.abort();
    };
    ends.add(closing);
    try {
      if (signal !== undefined) watchAbort(signal, abort);
      await waitAsync(this.#words, index, value, timeoutMs, { signal: controller.signal, waitersIndex });
    } catch (err) {
      if (cause === 'closed') return;
      throw cause === 'aborted' ? abortError(signal!) : err;
    } finally {
      ends.delete(closing);
      if (signal !== undefined) unwatchAbort(signal, abort);
    }
  }

  #unlock(index: number): void {
    if (Atomics.compareExchange(this.#words, index, SELF, 0) === SELF) return;
    (index === WRITE_LOCK ? this.#writeLock! : this.#readLock!).unlock();
  }

  // A writer that died in end() between storing ENDED and TAIL: its END record is written.
  #finishEnd(): void {
    const ended = Atomics.load(this.#words, ENDED);
    if (ended === 0) return;
    const at = (ended & ~7) >>> 0;
    if (Atomics.load(this.#words, TAIL) >>> 0 !== at) return;
    Atomics.store(this.#words, TAIL, (at + MANY_HEADER) | 0);
    this.#published(INT32_MAX);
  }

  // A record's bytes, header included, from its length word (SKIP: the rest of the ring; END,
  // or a length no writer writes, which only a peer scribbling over the ring leaves: the
  // header alone, so that every pass over records moves on).
  #size(length: number, offset: number): number {
    if (length === SKIP) return this.capacity - offset;
    return length >>> 0 > this.maxMessageLength ? MANY_HEADER : align8(MANY_HEADER + length);
  }

  // Tells the readers: COMMITS moved; wake `count` of them if any sleep.
  #published(count: number): void {
    Atomics.add(this.#words, COMMITS, 1);
    if (Atomics.load(this.#words, READERS_ASLEEP) !== 0)
      notify(this.#words, COMMITS, count, { waitersIndex: READERS_ASLEEP });
  }

  // Places a RESERVED record of `length` bytes, waiting for room until `deadline`: its offset
  // in the ring, or -1 if there was none by then.
  #reserveMany(need: number, length: number, deadline: number): number {
    for (;;) {
      const offset = this.#placeMany(need, length, deadline);
      if (offset >= 0) return offset;
      if (offset === LOCK_BUSY || !this.#writerWait(this.#seenHead, deadline)) return -1;
    }
  }

  // Places a RESERVED record of `length` bytes under WRITE_LOCK: its offset in the ring;
  // NO_ROOM while the ring is too full (#seenHead: the HEAD that showed it, for the wait for
  // room), LOCK_BUSY if the lock stayed busy until `deadline`. ERR_RING_BUFFER_ENDED once an
  // END record is placed.
  #placeMany(need: number, length: number, deadline = Infinity): number {
    const words = this.#words;
    const lengths = this.#lengths;
    const capacity = this.capacity;
    const mask = this.#mask;
    if (!this.#lock(WRITE_LOCK, deadline)) return LOCK_BUSY;
    // ENDED and TAIL are stored only under WRITE_LOCK, which this writer holds: plain loads.
    if (words[ENDED] !== 0) {
      this.#unlock(WRITE_LOCK);
      throw mmanError('ERR_RING_BUFFER_ENDED');
    }
    const tail = words[TAIL] >>> 0;
    const head = Atomics.load(words, HEAD);
    const free = capacity - ((tail - (head >>> 0)) >>> 0);
    const toEnd = capacity - (tail & mask);
    let at = tail;
    if (need > toEnd ? free < toEnd + need : free < need) {
      this.#unlock(WRITE_LOCK);
      this.#seenHead = head;
      return NO_ROOM;
    }
    if (need > toEnd) {
      // The rest of the ring is padding, FREE from the start: readers and HEAD pass over it.
      lengths[((tail & mask) >> 2) + 1] = SKIP;
      lengths[(tail & mask) >> 2] = FREE;
      at = (tail + toEnd) >>> 0;
    }
    const offset = at & mask;
    lengths[(offset >> 2) + 1] = length;
    lengths[offset >> 2] = SELF; // RESERVED by this thread
    // Publishes the header(s) (plain stores before it): every look at a record's header
    // follows a load of TAIL that saw this store, or a later one.
    Atomics.store(words, TAIL, (at + need) | 0);
    this.#unlock(WRITE_LOCK);
    this.#writeAt = at;
    return offset;
  }

  // commit() on a ring with many writers: the reserved record becomes COMMITTED (the store
  // that publishes its bytes), and a reader is woken if one sleeps.
  #commitMany(): void {
    Atomics.store(this.#lengths, (this.#writeAt & this.#mask) >> 2, COMMITTED);
    this.#writeAt = -1;
    this.#published(1);
  }

  #endMany(deadline: number): boolean {
    for (;;) {
      const head = Atomics.load(this.#words, HEAD);
      if (!this.#lock(WRITE_LOCK, deadline)) return false;
      if (Atomics.load(this.#words, ENDED) !== 0) {
        this.#unlock(WRITE_LOCK);
        return true;
      }
      const tail = Atomics.load(this.#words, TAIL) >>> 0;
      const placed = this.capacity - ((tail - (Atomics.load(this.#words, HEAD) >>> 0)) >>> 0) >= MANY_HEADER;
      if (placed) {
        // 8 bytes always fit before the end of the ring (records are 8-aligned): no padding.
        const offset = tail & (this.capacity - 1);
        this.#lengths[(offset >> 2) + 1] = END;
        Atomics.store(this.#lengths, offset >> 2, COMMITTED);
        Atomics.store(this.#words, ENDED, tail | 1);
        Atomics.store(this.#words, TAIL, (tail + MANY_HEADER) | 0);
      }
      this.#unlock(WRITE_LOCK);
      if (placed) {
        this.#published(INT32_MAX);
        return true;
      }
      if (!this.#writerWait(head, deadline)) return false;
    }
  }

  // A writer waits for room (HEAD to move from `head`) until `deadline`: false once it passed.
  // It looks again every liveness period, freeing the record of a reader that died holding it.
  #writerWait(head: number, deadline: number): boolean {
    const left = deadline === Infinity ? Infinity : deadline - performance.now();
    if (left <= 0) return false;
    if (this.#movedSoon(HEAD, head)) return true;
    this.#writerHeldUp(head);
    wait(this.#words, HEAD, head, Math.min(left, LIVENESS_MS), {
      spin: this.#spin - this.#spinHere,
      waitersIndex: WRITERS_ASLEEP,
    });
    return true;
  }

  // Whether a reader with nothing to claim sleeps one liveness period at most: when a writer's
  // record holds it up, and on a ring with many readers always. A commit wakes one reader;
  // one that dies (or whose worker is terminated) before it claims the message takes that
  // wake with it, and the others would sleep until the next commit.
  #readerLooks(): boolean {
    return this.#readerBlocked || this.readers === 'many';
  }

  // The first looks of a wait's spin, here: true once header word `index` no longer holds
  // `value`. A peer that is running answers within them (a reader frees a record, a writer
  // commits one), and the wait() they spare checks more than a look costs.
  #movedSoon(index: number, value: number): boolean {
    const words = this.#words;
    for (let n = this.#spinHere; n > 0; n--) if (Atomics.load(words, index) !== value) return true;
    return false;
  }

  // A full ring whose HEAD stayed at `head` for the liveness period: is the reader of the
  // record there gone?
  #writerHeldUp(head: number): void {
    const now = performance.now();
    if (this.#writerHeldAt !== head >>> 0) {
      this.#writerHeldAt = head >>> 0;
      this.#writerHeldSince = now;
    } else if (now - this.#writerHeldSince >= LIVENESS_MS) {
      this.#writerHeldSince = now;
      this.#advanceHead(true);
    }
  }

  #readMany(deadline: number): Uint8Array | null | undefined {
    let message = this.#claim(deadline); // most often there is one: no need of COMMITS then
    while (message === undefined) {
      // COMMITS before a look: a commit after the look moves it, and the wait sees that.
      const commits = Atomics.load(this.#words, COMMITS);
      message = this.#claim(deadline);
      if (message !== undefined) break;
      const left = deadline === Infinity ? Infinity : deadline - performance.now();
      if (left <= 0) return undefined;
      if (this.#movedSoon(COMMITS, commits)) continue;
      // Held up by a writer's record, or beside other readers: look again within the liveness
      // period (#readerLooks()).
      const timeout = this.#readerLooks() ? Math.min(left, LIVENESS_MS) : left;
      wait(this.#words, COMMITS, commits, timeout === Infinity ? undefined : timeout, {
        spin: this.#spin - this.#spinHere,
        waitersIndex: READERS_ASLEEP,
      });
    }
    return this.#seen(message);
  }

  // Under READ_LOCK: the next committed message, claimed for this reader; null at the END
  // record; undefined while there is none (#readerBlocked when a RESERVED record holds the
  // readers up), or when the lock stayed busy until `deadline`. HEAD moves over the record
  // read() freed (#freedAt), if it is at HEAD, here too.
  #claim(deadline = Infinity): Uint8Array | null | undefined {
    const words = this.#words;
    const lengths = this.#lengths;
    const capacity = this.capacity;
    const mask = this.#mask;
    const freed = this.#freedAt >= 0;
    const freedAt = this.#freedAt;
    this.#freedAt = -1;
    let result: Uint8Array | null | undefined;
    let more = false;
    let passed = false;
    this.#readerBlocked = false;
    if (!this.#lock(READ_LOCK, deadline)) {
      if (freed) this.#free(freedAt); // the release read() put off, done as release() does it
      return undefined;
    }
    // The record read() freed: a record's state is looked at only under READ_LOCK once it is
    // READING (by #claim and #advanceLocked), which this reader holds: a plain store, published
    // by the unlock, and HEAD moves over it below without a look at it.
    if (freed) lengths[(freedAt & mask) >> 2] = FREE;
    // READ is stored only under READ_LOCK, which this reader holds: a plain load, plain stores.
    let read = words[READ] >>> 0;
    // The ring holds at most capacity / 8 records: more steps than that is a peer scribbling.
    for (let steps = capacity >> 3; steps > 0; steps--) {
      const tail = Atomics.load(words, TAIL) >>> 0;
      if (read === tail || (tail - read) >>> 0 > capacity) break; // empty (or scribbled over)
      const offset = read & mask;
      const state = Atomics.load(lengths, offset >> 2);
      const length = lengths[(offset >> 2) + 1];
      if (length === END) {
        result = null; // not passed: every reader stops here
        break;
      }
      const next = (read + this.#size(length, offset)) >>> 0;
      if (state === COMMITTED) {
        // READING is looked at only under READ_LOCK (and by this reader): a plain store.
        lengths[offset >> 2] = READING | SELF;
        words[READ] = next | 0;
        this.#readAt = read;
        result = this.#view(offset + MANY_HEADER, length);
        more = next !== tail;
        break;
      }
      if ((state & PHASE) === 0) {
        // RESERVED: its writer is filling it in. Wait, unless the writer is gone.
        if (!this.#readerHeldUp(read) || !native.threadGone(state & TID)) {
          this.#readerBlocked = true;
          break;
        }
        if (Atomics.compareExchange(lengths, offset >> 2, state, FREE) !== state) continue;
        Atomics.add(words, SKIPPED, 1);
      }
      // FREE (padding, a record abandoned or skipped) or READING (its reader died claiming it).
      words[READ] = next | 0;
      read = next;
      passed = true;
    }
    // A FREE record passed here has no reader to release it: HEAD goes over it now if it can
    // (else the release of the READING record before it takes HEAD over both); so does the
    // one read() freed. Not past `read`: READ, or the record claimed here (this reader's).
    const moved = (passed || freed) && this.#advanceLocked(false, read, freedAt);
    this.#unlock(READ_LOCK);
    if (moved) this.#roomMade();
    // A wake this reader took may have been meant for the record behind: pass it on.
    if (more && Atomics.load(words, READERS_ASLEEP) !== 0) notify(words, COMMITS, 1, { waitersIndex: READERS_ASLEEP });
    return result;
  }

  // True once this reader has been held up at the record at `read` for the liveness period
  // (then again each period after).
  #readerHeldUp(read: number): boolean {
    const now = performance.now();
    if (this.#readerHeldAt !== read) {
      this.#readerHeldAt = read;
      this.#readerHeldSince = now;
      return false;
    }
    if (now - this.#readerHeldSince < LIVENESS_MS) return false;
    this.#readerHeldSince = now;
    return true;
  }

  // Frees the record this reader holds, and moves HEAD over it if it is at HEAD: now, or with
  // `deferred` (read(), whose #claim() takes READ_LOCK next anyway) in that #claim(), which
  // looks at HEAD under the lock (so needs no look at it here).
  #releaseMany(deferred: boolean, deadline = Infinity): void {
    const at = this.#readAt;
    if (at < 0) return;
    this.#readAt = -1;
    if (deferred) {
      this.#freedAt = at; // FREE is stored there too, under the lock
      return;
    }
    this.#free(at, deadline);
  }

  // Stores FREE over the record at `at` (absolute), outside READ_LOCK, and moves HEAD over it if
  // it is at HEAD. Only the record at HEAD moves it; one behind another reader's is passed by
  // that reader (the Dekker pair in the protocol comment: this FREE store, then the HEAD load).
  #free(at: number, deadline = Infinity): void {
    Atomics.store(this.#lengths, (at & this.#mask) >> 2, FREE);
    if (Atomics.load(this.#words, HEAD) >>> 0 === at) this.#advanceHead(false, deadline);
  }

  // HEAD over the FREE records after it (below); wakes the writers if it moved. With a
  // `deadline` (close()), a lock still busy then is left alone: the record is FREE already, and
  // a writer held up by a full ring moves HEAD over it after the liveness period.
  #advanceHead(reclaim: boolean, deadline = Infinity): void {
    if (!this.#lock(READ_LOCK, deadline)) return;
    const moved = this.#advanceLocked(reclaim);
    this.#unlock(READ_LOCK);
    if (moved) this.#roomMade();
  }

  // Under READ_LOCK: HEAD over the FREE records after it, never past READ (nor past `stop`,
  // a record at or before READ); with `reclaim`, a READING record at HEAD whose reader is gone
  // is freed first (and counted in LOST). True if HEAD moved. Each HEAD store comes before the
  // look at the next record's state (a release that stores FREE there and then finds HEAD
  // short of it relies on that). `freed`: a record this thread made FREE under the lock (read()'s
  // release), not looked at again.
  #advanceLocked(reclaim: boolean, stop = -1, freed = -1): boolean {
    const words = this.#words;
    const lengths = this.#lengths;
    const capacity = this.capacity;
    const mask = this.#mask;
    // HEAD and READ are stored only under READ_LOCK, which this thread holds: plain loads.
    let head = words[HEAD] >>> 0;
    const read = stop >= 0 ? stop : words[READ] >>> 0;
    let moved = false;
    for (let steps = capacity >> 3; steps > 0; steps--) {
      if (head === read || (read - head) >>> 0 > capacity) break;
      const offset = head & mask;
      const state = head === freed ? FREE : Atomics.load(lengths, offset >> 2); // `freed`: this thread's own store
      if (
        reclaim &&
        (state & PHASE) === READING &&
        (state & TID) !== SELF &&
        native.threadGone(state & TID) &&
        Atomics.compareExchange(lengths, offset >> 2, state, FREE) === state
      ) {
        Atomics.add(words, LOST, 1);
      } else if ((state & PHASE) !== FREE) break;
      head = (head + this.#size(lengths[(offset >> 2) + 1], offset)) >>> 0;
      Atomics.store(words, HEAD, head | 0);
      moved = true;
    }
    return moved;
  }

  // HEAD moved: wake the writers waiting for room, if any sleep.
  #roomMade(): void {
    if (Atomics.load(this.#words, WRITERS_ASLEEP) !== 0)
      notify(this.#words, HEAD, INT32_MAX, { waitersIndex: WRITERS_ASLEEP });
  }

  /**
   * How many messages were skipped because their writer died between `reserve()` and
   * `commit()` (or closed the ring in between), over the ring's life, as every process sees
   * it. Always 0 on a ring for one writer and one reader.
   */
  get skipped(): number {
    this.#live();
    return Atomics.load(this.#words, SKIPPED) >>> 0;
  }

  /**
   * How many messages were lost because their reader died between `read()` and `release()`:
   * freed, not read again (see {@link RingBuffer}). Always 0 on a ring for one writer and
   * one reader.
   */
  get lost(): number {
    this.#live();
    return Atomics.load(this.#words, LOST) >>> 0;
  }

  /**
   * Unmaps the ring and closes its SharedMemory in this process. Idempotent. On a ring with
   * many writers or readers, a message this object read is released first, and one it
   * reserved and did not commit is abandoned (readers skip it; counted in
   * {@link RingBuffer.skipped}). An async call of this object still waiting rejects with
   * `ERR_RING_BUFFER_CLOSED`.
   */
  close(): void {
    if (this.#closed) return;
    try {
      if (this.#many && usable(this.mapping)) {
        // Never waits for ever: READ_LOCK held by a thread that lives on (stopped, or named there
        // by a peer) is waited for one liveness period at most.
        try {
          this.#releaseMany(false, performance.now() + LIVENESS_MS);
        } finally {
          this.#abandon();
        }
      }
    } finally {
      this.#closed = true;
      if (this.#waitEnds !== undefined) for (const end of this.#waitEnds) end();
      this.mapping.unmap();
      this.memory.close();
    }
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
    if (this.#guarded) handleOf(this.mapping, 'A RingBuffer');
    return result;
  }

  /** Same as {@link RingBuffer.close}, for `using`. */
  [dispose](): void {
    this.close();
  }
}

// options.spin (or the default: spin only where another CPU can make progress meanwhile), and
// the MODE bits options.writers and options.readers ask for (`given`: the bits they name).
const RING_OPTIONS: readonly string[] = ['spin', 'writers', 'readers'];

function validateRingOptions(options: unknown): { spin: number; mode: number; given: number } {
  const opts = validateOptions<RingBufferOptions>(options);
  // A misspelt option ({ writer: 'many' }) would make a ring of another kind without a word.
  for (const key of Object.keys(opts)) {
    if (!RING_OPTIONS.includes(key))
      throw invalidArgValue(
        `options.${key}`,
        (opts as Record<string, unknown>)[key],
        `is not an option of a RingBuffer (${RING_OPTIONS.join(', ')})`,
      );
  }
  const spin =
    opts.spin === undefined ? (availableParallelism() > 1 ? 20000 : 0) : validateInt32(opts.spin, 'options.spin', 0);
  const { writers, readers } = opts;
  const many = (value: unknown, name: string): boolean =>
    value !== undefined && validateOneOf(value, name, ['one', 'many'] as const) === 'many';
  const mode =
    (many(writers, 'options.writers') ? MANY_WRITERS : 0) | (many(readers, 'options.readers') ? MANY_READERS : 0);
  const given = (writers !== undefined ? MANY_WRITERS : 0) | (readers !== undefined ? MANY_READERS : 0);
  return { spin, mode, given };
}

// The time (performance.now()) a wait of `timeoutMs` gives up at: Infinity for none.
function deadlineOf(timeoutMs: number | undefined): number {
  return timeoutMs === undefined || timeoutMs > 1e12 ? Infinity : performance.now() + timeoutMs;
}

// Whether the ring's pages may still be touched (close() on a ring whose mapping was unmapped,
// truncated or protected since touches nothing).
function usable(mapping: Mapping): boolean {
  try {
    handleOf(mapping, 'A RingBuffer');
    return true;
  } catch {
    return false;
  }
}

// The length of a typed array as the engine knows it, which set() copies: not a `length`
// property of the array's own or its class's, which may say anything.
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'length')!
  .get! as (this: Uint8Array) => number;
const lengthOf = (bytes: Uint8Array): number => typedArrayLength.call(bytes);

// A view's buffer, byteOffset and byteLength as the engine knows them, for the same reason,
// and so that reading them runs none of the caller's code (a getter of a subclass could
// protect() the ring, or commit() its record, in the middle of a write).
const engineGetter = <T>(proto: object, name: string): ((this: ArrayBufferView) => T) =>
  Object.getOwnPropertyDescriptor(proto, name)!.get! as (this: ArrayBufferView) => T;
const TYPED_ARRAY = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayBuffer = engineGetter<ArrayBufferLike>(TYPED_ARRAY, 'buffer');
const typedArrayByteOffset = engineGetter<number>(TYPED_ARRAY, 'byteOffset');
const typedArrayByteLength = engineGetter<number>(TYPED_ARRAY, 'byteLength');
const typedArrayKeys = Object.getOwnPropertyDescriptor(TYPED_ARRAY, 'keys')!.value as (
  this: ArrayBufferView,
) => unknown;
const dataViewBuffer = engineGetter<ArrayBufferLike>(DataView.prototype, 'buffer');
const dataViewByteOffset = engineGetter<number>(DataView.prototype, 'byteOffset');
const dataViewByteLength = engineGetter<number>(DataView.prototype, 'byteLength');

const NOTHING = new Uint8Array(0);
const UNREADABLE = 'is a view of a detached ArrayBuffer, or out of its bounds';

// The bytes of a message that write() copies (lengthOf() of them). A message whose bytes cannot
// be read (its buffer detached, or resized to leave it out of bounds: set() throws at it) is
// refused here, before a record is reserved for it.
function reserved(room: Uint8Array): Uint8Array {
  return room;
}

// A message whose buffer was resized or detached while the call waited, or grown by another
// thread while it was copied.
function changedLength(message: ArrayBufferView, length: number): TypeError {
  return invalidArgValue(
    'message',
    message,
    `changed length during the write (${length} bytes reserved, nothing written)`,
  );
}

// Resolves once `before` (the writeAsync() calls queued ahead committed or failed); rejects
// with an AbortError as soon as `signal` aborts (watched as waitAsync() watches one), unless
// `ends` (the ring's close()) came first: then it resolves, and the call finds the ring closed.
function turn(before: Promise<void>, signal: AbortSignal | undefined, ends: Set<() => void>): Promise<void> {
  if (signal === undefined) return before;
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (aborted: boolean): void => {
      if (settled) return;
      settled = true;
      ends.delete(closing);
      try {
        unwatchAbort(signal, abort);
      } catch {
        // A look-alike signal's removeEventListener() threw: its listener stays; the call goes on.
      }
      if (aborted) reject(abortError(signal));
      else resolve();
    };
    const abort = (): void => settle(true);
    const closing = (): void => settle(false);
    ends.add(closing);
    try {
      watchAbort(signal, abort);
    } catch (err) {
      ends.delete(closing);
      settled = true;
      reject(err);
      return;
    }
    void before.then(() => settle(false));
  });
}

function asBytes(message: unknown): Uint8Array {
  let bytes: Uint8Array;
  // A Buffer or Uint8Array is its own bytes: no new view (whose buffer and byteOffset getters
  // cost more than the copy of a small message).
  if (types.isUint8Array(message)) bytes = message;
  else if (!ArrayBuffer.isView(message))
    throw invalidArgType('message', 'an instance of Buffer, TypedArray or DataView', message);
  else {
    try {
      bytes = types.isDataView(message)
        ? new Uint8Array(
            dataViewBuffer.call(message),
            dataViewByteOffset.call(message),
            dataViewByteLength.call(message),
          )
        : new Uint8Array(
            typedArrayBuffer.call(message),
            typedArrayByteOffset.call(message),
            typedArrayByteLength.call(message),
          );
    } catch {
      throw invalidArgValue('message', message, UNREADABLE);
    }
  }
  if (lengthOf(bytes) === 0) {
    // No bytes: is the message readable at all? The engine's getters answer 0 for a typed
    // array out of its buffer's bounds (or detached) instead of throwing; keys() checks it.
    try {
      if (bytes === message || types.isDataView(message)) NOTHING.set(bytes);
      else typedArrayKeys.call(message);
    } catch {
      throw invalidArgValue('message', message, UNREADABLE);
    }
  }
  return bytes;
}
