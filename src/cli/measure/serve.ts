// One file served over HTTP by a Node server in a child process, three ways (a mapping, a
// Buffer read once, fs.createReadStream), and by a C server with sendfile(2)
// (native/loops/sendfile_server.c, compiled here with cc) as the floor; the load comes from a
// client in another process. For each size and way: requests per second, the server's CPU
// time per request (utime + stime from /proc/<pid>/stat, before and after) and its memory.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once, type EventEmitter } from 'node:events';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

import { machineInfo, type MachineInfo } from './machine';
import type { ClientResult, ClientSpec } from './serve-client';
import { NODE_WAYS, type ServerSpec } from './serve-server';

/** Every way the file is served, in the order they run: Node's three, then the C floor. */
export const SERVE_WAYS = [...NODE_WAYS, 'c-sendfile'] as const;
/** One of {@link SERVE_WAYS}. */
export type ServeWay = (typeof SERVE_WAYS)[number];

/** What one way did with one size, over the measured seconds. */
export interface ServeResult {
  /** The file's size, bytes. */
  size: number;
  /** How it was served. */
  way: ServeWay;
  /** Whole responses the client received over the measured seconds. */
  requests: number;
  /** The measured seconds, as the client timed them. */
  seconds: number;
  /** requests / seconds. */
  requestsPerSecond: number;
  /** The server process's CPU time (user + system, all threads) over those seconds. */
  cpuSeconds: number;
  /** cpuSeconds per request, in microseconds. */
  cpuMicrosPerRequest: number;
  /** cpuSeconds / seconds: near 1 (or above, with threads) the server was the bottleneck. */
  busy: number;
  /** The client's CPU time / seconds: near 1, the client was the bottleneck, not the server. */
  clientBusy: number;
  /** The server's resident memory at the end (VmRSS), and the anonymous part of it (RssAnon), bytes. */
  rss: number;
  rssAnon: number;
  /**
   * Over the whole run, warm-up included: bodies whose checksum the client checked, and
   * responses that were wrong (status, length, checksum, a connection the server closed).
   */
  verified: number;
  bad: number;
  /** What was wrong with the first few bad responses. */
  failures: string[];
}

/** The whole run. */
export interface ServeReport {
  /** The file sizes, bytes, in the order they ran. */
  sizes: number[];
  /** Measured seconds per size and way, and the client's connections and requests in flight on each. */
  seconds: number;
  connections: number;
  pipeline: number;
  machine: MachineInfo;
  /** One per size and way, in the order they ran. */
  results: ServeResult[];
  /** A way that could not run here (no C compiler), and why. */
  skipped: Array<{ way: ServeWay; reason: string }>;
}

/** Options for {@link runServeBench}. */
export interface ServeBenchOptions {
  /** File sizes, bytes. Default 4 KiB, 1 MiB, 64 MiB. */
  sizes?: readonly number[];
  /** Measured seconds per size and way, after `warmup` seconds of the same load. Default 3 and 1. */
  seconds?: number;
  warmup?: number;
  /** The client's concurrent keep-alive connections. Default 4. */
  connections?: number;
  /** Requests in flight on each connection (HTTP/1.1 pipelining above 1). Default 1. */
  pipeline?: number;
  /** Directory for the files. Default `os.tmpdir()`. */
  dir?: string;
  onProgress?: (done: number, total: number, label: string) => void;
}

const SERVER = join(__dirname, 'serve-server.js');
const CLIENT = join(__dirname, 'serve-client.js');
const C_SOURCE = join(__dirname, '..', '..', '..', 'native', 'loops', 'sendfile_server.c');
/** USER_HZ: the unit of utime and stime in /proc/<pid>/stat, 100 on every Linux ABI Node runs on. */
const USER_HZ = 100;

/** The CPU time a process has used, user + system, all its threads, in seconds. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name may hold spaces and parentheses: the fields start after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ; // fields 14 and 15: utime, stime
}

/** A process's resident memory, all of it and the anonymous part, in bytes (/proc/<pid>/status). */
export function processMemory(pid: number): { rss: number; rssAnon: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), rssAnon: kib('RssAnon') };
}

// A file of `size` random bytes (no two of its pages alike, so a body with a page out of
// place fails its checksum), fsynced, in the page cache; its SHA-1.
function writeFile(path: string, size: number): string {
  const hash = createHash('sha1');
  const fd = openSync(path, 'w');
  try {
    const chunk = Buffer.allocUnsafe(Math.min(size, 4 * 2 ** 20));
    for (let written = 0; written < size;) {
      const part = chunk.subarray(0, Math.min(chunk.length, size - written));
      randomFillSync(part);
      hash.update(part);
      written += writeSync(fd, part);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

// The next `event` of `emitter` (a child's 'message', its output's 'line'), or an error if
// `child` exits first: a child that dies never leaves the run waiting.
async function next<T>(
  child: ChildProcess,
  name: string,
  emitter: EventEmitter = child,
  event = 'message',
): Promise<T> {
  const ended = new AbortController();
  try {
    const [value] = await Promise.race([
      once(emitter, event, { signal: ended.signal }),
      once(child, 'exit', { signal: ended.signal }).then(([code, signal]) => {
        throw new Error(`${name} exited (${signal ?? code}) before it answered`);
      }),
    ]);
    return value as T;
  } finally {
    ended.abort();
  }
}

// Starts the server for `way` and resolves with it and its port once it listens.
async function startServer(way: ServeWay, path: string, binary: string | null): Promise<[ChildProcess, number]> {
  if (way === 'c-sendfile') {
    const server = spawn(binary!, [path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: server.stdout! });
    const line = await next<string>(server, 'sendfile_server', lines, 'line');
    lines.close();
    return [server, Number(line)];
  }
  const spec: ServerSpec = { path, way };
  const server = fork(SERVER, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const { port } = await next<{ port: number }>(server, `the ${way} server`);
  return [server, port];
}

// Loads `port` from a client process for `warmup` then `seconds` seconds; the server's CPU
// time is read when the client starts counting and when it stops.
async function measure(
  server: ChildProcess,
  spec: ClientSpec,
  warmup: number,
  seconds: number,
): Promise<{ client: ClientResult; cpuSeconds: number }> {
  const client = fork(CLIENT, [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(client, 'exit');
  try {
    await next(client, 'the client'); // started
    await sleep(warmup * 1000);
    client.send('mark');
    await next(client, 'the client'); // marked
    const before = processCpuSeconds(server.pid!);
    await sleep(seconds * 1000);
    const stopped = next<ClientResult>(client, 'the client');
    client.send('stop');
    const after = processCpuSeconds(server.pid!);
    return { client: await stopped, cpuSeconds: after - before };
  } finally {
    if (client.exitCode === null && client.signalCode === null) client.kill();
    await exited;
  }
}

/**
 * Serves a file of each size each way, one server at a time, and loads it from a client
 * process. The C way is skipped, with the reason, when `cc` cannot build the server. The
 * files are removed before returning.
 */
export async function runServeBench(options: ServeBenchOptions = {}): Promise<ServeReport> {
  const sizes = [...(options.sizes ?? [4096, 2 ** 20, 64 * 2 ** 20])];
  const seconds = options.seconds ?? 3;
  const warmup = options.warmup ?? 1;
  const connections = options.connections ?? 4;
  const pipeline = options.pipeline ?? 1;
  const machine = machineInfo();
  const report: ServeReport = { sizes, seconds, connections, pipeline, machine, results: [], skipped: [] };
  const dir = mkdtempSync(join(options.dir ?? tmpdir(), 'mman-serve-'));
  let binary: string | null = join(dir, 'sendfile_server');
  try {
    try {
      execFileSync('cc', ['-O2', '-o', binary, C_SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      report.skipped.push({ way: 'c-sendfile', reason: `no C compiler: ${(err as Error).message.split('\n')[0]}` });
      binary = null;
    }
    const ways = SERVE_WAYS.filter((way) => way !== 'c-sendfile' || binary !== null);
    const total = sizes.length * ways.length;
    let done = 0;
    for (const size of sizes) {
      const path = join(dir, `file-${size}.bin`);
      const sha1 = writeFile(path, size);
      // Hash about 64 KiB of bodies per response on average: every one of 4 KiB, one in 16 of 1 MiB.
      const verifyEvery = Math.max(1, Math.round(size / 65536));
      for (const way of ways) {
        options.onProgress?.(done++, total, `${way}, ${size} bytes`);
        const [server, port] = await startServer(way, path, binary);
        try {
          const { client, cpuSeconds } = await measure(
            server,
            { port, connections, pipeline, size, sha1, verifyEvery },
            warmup,
            seconds,
          );
          const memory = processMemory(server.pid!);
          report.results.push({
            size,
            way,
            requests: client.requests,
            seconds: client.seconds,
            requestsPerSecond: client.requests / client.seconds,
            cpuSeconds,
            cpuMicrosPerRequest: (cpuSeconds / client.requests) * 1e6,
            busy: cpuSeconds / client.seconds,
            clientBusy: client.cpuSeconds / client.seconds,
            rss: memory.rss,
            rssAnon: memory.rssAnon,
            verified: client.verified,
            bad: client.bad,
            failures: client.failures,
          });
        } finally {
          if (server.exitCode === null && server.signalCode === null) {
            const exited = once(server, 'exit');
            server.kill();
            await exited;
          }
        }
      }
      rmSync(path, { force: true });
    }
    options.onProgress?.(done, total, 'done');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return report;
}
