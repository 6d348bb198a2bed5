// Reading a file through a mapping against reading it with fs: a sequential scan (sum of
// every 32-bit word) and random 4-byte reads, on a file already in the page cache; and what
// each costs the event loop when the file is not in the page cache.
import { closeSync, createReadStream, openSync, readFileSync, readSync } from 'node:fs';
import { open as openAsync } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { Advice, mapFile, mappingStats, PAGE_SIZE } from '../..';
import { machineInfo, type MachineInfo } from './machine';
import { evictFile, touchFile } from '../util/page-cache';
import { median } from './stats';
import { createScratchFile } from './scratch-file';

/** One timed read of a file: elapsed ms, the checksum it computed, anonymous memory held at the end. */
export interface ReadTiming {
  ms: number;
  checksum: number;
  /** `RssAnon` of this process, in bytes, while the data read was still held. */
  rssAnon: number;
}

/** `RssAnon` from /proc/self/status, in bytes: the process's anonymous resident memory. */
export function rssAnon(): number {
  const match = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'latin1'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** Sums 32-bit words, wrapping like C's uint32_t: the scan every variant runs. */
export function sumWords(words: Uint32Array): number {
  let sum = 0;
  const length = words.length;
  for (let i = 0; i < length; i++) sum = (sum + words[i]) | 0;
  return sum >>> 0;
}

/** Runs the scan on a small array until V8 has compiled it, as it would be in a long-lived service. */
export function warmUpScan(): void {
  const words = new Uint32Array(1 << 16).fill(0xfffffff0);
  for (let i = 0; i < 2000; i++) sumWords(words);
}

const now = (): bigint => process.hrtime.bigint();
const msSince = (start: bigint): number => Number(now() - start) / 1e6;
const CHUNK = 2 ** 20;

/** Maps the file read-only (`MADV_SEQUENTIAL`) and sums it in place: no copy. */
export function scanMapped(path: string): ReadTiming {
  const start = now();
  const mapping = mapFile(path, { advice: Advice.Sequential });
  try {
    const checksum = sumWords(new Uint32Array(mapping.buffer, 0, mapping.length >>> 2));
    const ms = msSince(start);
    return { ms, checksum, rssAnon: rssAnon() };
  } finally {
    mapping.unmap();
  }
}

/** `fs.readFileSync` (one copy of the whole file into a Buffer), then the same sum. */
export function scanReadFile(path: string): ReadTiming {
  const start = now();
  const data = readFileSync(path);
  const checksum = sumWords(new Uint32Array(data.buffer, data.byteOffset, data.length >>> 2));
  const ms = msSince(start);
  return { ms, checksum, rssAnon: rssAnon() };
}

/** `fs.readSync` into one reused 1 MiB buffer, summing each chunk. */
export function scanReadSync(path: string): ReadTiming {
  const start = now();
  const fd = openSync(path, 'r');
  const chunk = Buffer.allocUnsafeSlow(CHUNK);
  const words = new Uint32Array(chunk.buffer, chunk.byteOffset, CHUNK >>> 2);
  let checksum = 0;
  try {
    for (let read; (read = readSync(fd, chunk, 0, CHUNK, null)) > 0;) {
      checksum = (checksum + sumWords(read === CHUNK ? words : words.subarray(0, read >>> 2))) | 0;
    }
  } finally {
    closeSync(fd);
  }
  return { ms: msSince(start), checksum: checksum >>> 0, rssAnon: rssAnon() };
}

/** `fs.createReadStream` with 1 MiB chunks, summing each chunk as it arrives. */
export async function scanStream(path: string): Promise<ReadTiming> {
  const start = now();
  let checksum = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>) {
    // Chunks of a 1 MiB stream are 4-byte aligned; copy the rare one that is not.
    const aligned = chunk.byteOffset % 4 === 0 ? chunk : Buffer.from(chunk);
    checksum = (checksum + sumWords(new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.length >>> 2))) | 0;
  }
  return { ms: msSince(start), checksum: checksum >>> 0, rssAnon: rssAnon() };
}

/** Word indexes for random reads: xorshift32 from a fixed seed, so every variant reads the same words. */
export function randomWordIndexes(count: number, words: number, seed = 0x9e3779b9): Uint32Array {
  const out = new Uint32Array(count);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x % words;
  }
  return out;
}

/** Maps the file (`MADV_RANDOM`) and reads `indexes` as 32-bit words; the map is timed too. */
export function randomMapped(path: string, indexes: Uint32Array): ReadTiming {
  const start = now();
  const mapping = mapFile(path, { advice: Advice.Random });
  try {
    const words = new Uint32Array(mapping.buffer, 0, mapping.length >>> 2);
    let checksum = 0;
    for (let i = 0; i < indexes.length; i++) checksum = (checksum + words[indexes[i]]) | 0;
    return { ms: msSince(start), checksum: checksum >>> 0, rssAnon: rssAnon() };
  } finally {
    mapping.unmap();
  }
}

/** One `fs.readSync` of 4 bytes per index, at `index * 4`. */
export function randomReadSync(path: string, indexes: Uint32Array): ReadTiming {
  const start = now();
  const fd = openSync(path, 'r');
  const word = Buffer.allocUnsafeSlow(4);
  let checksum = 0;
  try {
    for (let i = 0; i < indexes.length; i++) {
      readSync(fd, word, 0, 4, indexes[i] * 4);
      checksum = (checksum + word.readUInt32LE(0)) | 0;
    }
  } finally {
    closeSync(fd);
  }
  return { ms: msSince(start), checksum: checksum >>> 0, rssAnon: rssAnon() };
}

/** `fs.readFileSync` of the whole file, then the same random reads from the Buffer. */
export function randomReadFile(path: string, indexes: Uint32Array): ReadTiming {
  const start = now();
  const data = readFileSync(path);
  const words = new Uint32Array(data.buffer, data.byteOffset, data.length >>> 2);
  let checksum = 0;
  for (let i = 0; i < indexes.length; i++) checksum = (checksum + words[indexes[i]]) | 0;
  return { ms: msSince(start), checksum: checksum >>> 0, rssAnon: rssAnon() };
}

/** What one way of reading a cold file did to the event loop. */
export interface LoopTiming {
  method: 'mmap, cold' | 'mmap after await populate()' | 'fs.promises.read' | 'mmap, warm (reference)';
  /** From the start (the file evicted from the page cache) to the last read. */
  totalMs: number;
  /** The reads alone (for populate(): after it resolved). */
  readsMs: number;
  /** Event-loop delay while it ran, from perf_hooks.monitorEventLoopDelay (1 ms resolution), ms. */
  delayP50: number;
  delayP99: number;
  delayMax: number;
  checksum: number;
}

// Reads per event-loop turn in the mapped variants: a service answering requests reads a
// few values per callback, then yields.
const READS_PER_TURN = 100;
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function readMappedInTurns(words: Uint32Array, indexes: Uint32Array): Promise<number> {
  let checksum = 0;
  for (let i = 0; i < indexes.length; i++) {
    checksum = (checksum + words[indexes[i]]) | 0;
    if (i % READS_PER_TURN === READS_PER_TURN - 1) await yieldTurn();
  }
  return checksum >>> 0;
}

// fs.promises.read of 4 bytes per index, 16 in flight: what a service without mmap does.
async function readWithPromises(path: string, indexes: Uint32Array): Promise<number> {
  const handle = await openAsync(path, 'r');
  try {
    let checksum = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      const word = Buffer.allocUnsafe(4);
      while (next < indexes.length) {
        const index = indexes[next++];
        await handle.read(word, 0, 4, index * 4);
        checksum = (checksum + word.readUInt32LE(0)) | 0;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    return checksum >>> 0;
  } finally {
    await handle.close();
  }
}

// A full collection, with or without --expose-gc.
function collectGarbage(): void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed();
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

// Earlier variants unmapped the file, but their pages stay mapped until the collector finds
// the buffers unreachable, and mapped pages cannot be evicted: collect until they are gone.
export async function releaseUnmapped(): Promise<void> {
  for (let i = 0; i < 50 && mappingStats().retiredRegions + mappingStats().regions > 0; i++) {
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** {@link releaseUnmapped} without yielding: full collections only (for the synchronous benchmarks). */
export function releaseUnmappedSync(): void {
  for (let i = 0; i < 50 && mappingStats().retiredRegions + mappingStats().regions > 0; i++) collectGarbage();
}

/**
 * Reads `indexes` from `path` one of four ways while a 1 ms interval timer runs, and measures
 * the event loop's delay meanwhile. The file is evicted from the page cache first (except for
 * the warm reference, which populates it before the clock starts).
 */
export async function loopDelayWhileReading(
  path: string,
  indexes: Uint32Array,
  method: LoopTiming['method'],
): Promise<LoopTiming> {
  await releaseUnmapped();
  evictFile(path);
  const mapping = method === 'fs.promises.read' ? null : mapFile(path, { advice: Advice.Random });
  try {
    if (method === 'mmap, warm (reference)') await mapping!.populate();
    const histogram = monitorEventLoopDelay({ resolution: 1 });
    const timer = setInterval(() => {}, 1);
    histogram.enable();
    const start = now();
    let readsStart = start;
    let checksum: number;
    try {
      if (mapping === null) {
        checksum = await readWithPromises(path, indexes);
      } else {
        if (method === 'mmap after await populate()') {
          await mapping.populate();
          readsStart = now();
        }
        checksum = await readMappedInTurns(new Uint32Array(mapping.buffer, 0, mapping.length >>> 2), indexes);
      }
    } finally {
      histogram.disable();
      clearInterval(timer);
    }
    const end = now();
    // A run shorter than the 1 ms resolution has no samples: no delay was seen.
    const sampled = histogram.count > 0;
    const ms = (ns: number): number => (sampled ? ns / 1e6 : 0);
    return {
      method,
      totalMs: Number(end - start) / 1e6,
      readsMs: Number(end - readsStart) / 1e6,
      delayP50: ms(histogram.percentile(50)),
      delayP99: ms(histogram.percentile(99)),
      delayMax: ms(histogram.max),
      checksum,
    };
  } finally {
    mapping?.unmap();
  }
}

/** One measured way of reading the file. */
export interface IoResult {
  operation: 'sequential scan' | 'random reads';
  method: 'mmap' | 'fs.readFileSync' | 'fs.readSync' | 'fs.createReadStream';
  /** Median ms over the repetitions. */
  ms: number;
  /** `ms / (ms of mmap for the same operation)`: how many times slower than the mapping. */
  ratio: number;
  checksum: number;
}

/** The whole run of {@link runIoBench}. */
export interface IoReport {
  size: number;
  randomReads: number;
  repeat: number;
  machine: MachineInfo;
  results: IoResult[];
  /** Random reads of the file evicted from the page cache, with the event loop's delay. */
  eventLoop: LoopTiming[];
  /** Reads in each event-loop variant. */
  eventLoopReads: number;
}

/** Options for {@link runIoBench}. */
export interface IoBenchOptions {
  /** File size in bytes. Default 1 GiB. */
  size?: number;
  /** Random 4-byte reads per variant. Default 1,000,000. */
  randomReads?: number;
  /** Repetitions per variant (the median is kept). Default 3. */
  repeat?: number;
  /** Random reads of the cold file in each event-loop variant. Default 100,000. */
  eventLoopReads?: number;
  /** Directory for the scratch file. Default `os.tmpdir()`. */
  dir?: string;
  onProgress?: (done: number, total: number, label: string) => void;
}

/**
 * Writes a scratch file of `size` bytes, reads it once so it is in the page cache, and
 * times a sequential scan and random 4-byte reads through a mapping and through fs.
 * Every variant must compute the same checksum, or the run throws. The file is removed.
 */
export async function runIoBench(options: IoBenchOptions = {}): Promise<IoReport> {
  const size = Math.ceil((options.size ?? 2 ** 30) / PAGE_SIZE) * PAGE_SIZE;
  const randomReads = options.randomReads ?? 1_000_000;
  const repeat = options.repeat ?? 3;
  const eventLoopReads = options.eventLoopReads ?? 100_000;
  const loopMethods: Array<LoopTiming['method']> = [
    'mmap, cold',
    'mmap after await populate()',
    'fs.promises.read',
    'mmap, warm (reference)',
  ];
  const file = createScratchFile(size, options.dir);
  const variants: Array<[IoResult['operation'], IoResult['method'], () => ReadTiming | Promise<ReadTiming>]> = [];
  const indexes = randomWordIndexes(randomReads, size >>> 2);
  variants.push(
    ['sequential scan', 'mmap', () => scanMapped(file.path)],
    ['sequential scan', 'fs.readFileSync', () => scanReadFile(file.path)],
    ['sequential scan', 'fs.readSync', () => scanReadSync(file.path)],
    ['sequential scan', 'fs.createReadStream', () => scanStream(file.path)],
    ['random reads', 'mmap', () => randomMapped(file.path, indexes)],
    ['random reads', 'fs.readFileSync', () => randomReadFile(file.path, indexes)],
    ['random reads', 'fs.readSync', () => randomReadSync(file.path, indexes)],
  );
  const total = variants.length * repeat + loopMethods.length + 1;
  let done = 0;
  try {
    options.onProgress?.(done++, total, 'warming the page cache');
    touchFile(file.path);
    warmUpScan();
    const results: IoResult[] = [];
    for (const [operation, method, run] of variants) {
      const times: number[] = [];
      let checksum = 0;
      for (let rep = 0; rep < repeat; rep++) {
        options.onProgress?.(done++, total, `${operation}: ${method}`);
        const timing = await run();
        times.push(timing.ms);
        checksum = timing.checksum;
      }
      const baseline = results.find((r) => r.operation === operation && r.method === 'mmap');
      if (baseline !== undefined && baseline.checksum !== checksum) {
        throw new Error(
          `${operation} through ${method} computed checksum ${checksum}, the mapping ${baseline.checksum}`,
        );
      }
      const ms = median(times);
      results.push({ operation, method, ms, ratio: baseline === undefined ? 1 : ms / baseline.ms, checksum });
      (globalThis as { gc?: () => void }).gc?.();
    }
    // The event loop while a cold file is read: one run each (the eviction makes them slow).
    const loopIndexes = randomWordIndexes(eventLoopReads, size >>> 2, 0x2545f491);
    const eventLoop: LoopTiming[] = [];
    for (const method of loopMethods) {
      options.onProgress?.(done++, total, `event loop: ${method}`);
      const timing = await loopDelayWhileReading(file.path, loopIndexes, method);
      if (eventLoop.length > 0 && timing.checksum !== eventLoop[0].checksum)
        throw new Error(`event loop: ${method} computed checksum ${timing.checksum}, ${eventLoop[0].checksum} before`);
      eventLoop.push(timing);
    }
    options.onProgress?.(done++, total, 'done');
    return { size, randomReads, repeat, machine: machineInfo(), results, eventLoop, eventLoopReads };
  } finally {
    file.remove();
  }
}
