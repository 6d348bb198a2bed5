// The load client of `mman bench serve`, in a child process of its own so that its work is not
// the server's: a few keep-alive connections (raw sockets, `pipeline` requests in flight on
// each, a response parsed no further than its status, Content-Length and body length). Every body's
// length is checked, and the SHA-1 of a sample of them (the first on each connection, then one
// in `verifyEvery`). Started by serve.ts with its spec as argv[2]; sends 'started' once it
// sends requests, then answers 'mark' (the count of responses and the clock start again; the
// checks go on counting from the start) with 'marked' and 'stop' with its ClientResult.
import { createHash, type Hash } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** What the client is told. */
export interface ClientSpec {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** Keep-alive connections, each with `pipeline` requests in flight. */
  connections: number;
  /** The file's size: every body must be exactly the file. */
  size: number;
  /** The file's SHA-1, in hex. */
  sha1: string;
  /** Hash one body in this many (and the first on each connection). */
  verifyEvery: number;
  /** Requests in flight on each connection (HTTP/1.1 pipelining when above 1). */
  pipeline: number;
}

/** What the client counted: responses and time since the last 'mark', checks since it started. */
export interface ClientResult {
  /** Whole responses received since the mark. */
  requests: number;
  /** Seconds since the mark. */
  seconds: number;
  /** Since the start, warm-up included: bodies whose SHA-1 was checked (each matched unless counted in `bad`). */
  verified: number;
  /** Responses that were wrong: status, length, checksum, or a connection that failed. */
  bad: number;
  /** What went wrong, for the first few. */
  failures: string[];
  /** The client's own CPU time over `seconds` (user + system): near `seconds`, the client was the limit. */
  cpuSeconds: number;
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const READ_BUFFER = 1 << 20;

/** Opens the connections, keeps requests in flight on each until `stop()`; `mark()` zeroes the count and clock. */
export function runClient(spec: ClientSpec): { mark(): void; stop(): ClientResult } {
  let requests = 0;
  let verified = 0;
  let bad = 0;
  const failures: string[] = [];
  let since = performance.now();
  let cpu = process.cpuUsage();
  let stopped = false;
  let serial = 0;
  const fail = (why: string) => {
    bad += 1;
    if (failures.length < 5) failures.push(why);
  };

  const open = (): Socket => {
    // Each read lands in one buffer of the connection's own, reused: no allocation per chunk.
    const reads = Buffer.allocUnsafe(READ_BUFFER);
    const socket = connect({
      port: spec.port,
      host: '127.0.0.1',
      noDelay: true,
      onread: { buffer: reads, callback: (n: number) => received(reads.subarray(0, n)) },
    });
    let header: Buffer | null = null; // the start of a header that a read cut off
    let body = -1; // body bytes still to come, or -1 while reading a header
    let hash: Hash | null = null;
    let first = true;
    // Sends `count` requests in one write.
    const send = (count: number) => {
      if (!stopped && count > 0) socket.write(count === 1 ? REQUEST : Buffer.concat(Array(count).fill(REQUEST)));
    };
    socket.on('connect', () => send(spec.pipeline));
    // Takes in what a read brought; true: read on.
    const received = (chunk: Buffer): boolean => {
      let rest = chunk;
      let completed = 0;
      while (rest.length > 0) {
        if (body < 0) {
          const all = header === null ? rest : Buffer.concat([header, rest]);
          const end = all.indexOf(HEADER_END);
          if (end < 0) {
            header = Buffer.from(all); // a copy: the next read overwrites `reads`
            break;
          }
          const head = all.subarray(0, end).toString('latin1');
          rest = all.subarray(end + 4);
          header = null;
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
          if (!head.startsWith('HTTP/1.1 200 ')) fail(`status ${head.split('\r\n')[0]}`);
          if (length !== spec.size) fail(`Content-Length ${length}, the file has ${spec.size} bytes`);
          if (!(length >= 0)) {
            socket.destroy();
            return false;
          }
          body = length;
          hash = first || ++serial % spec.verifyEvery === 0 ? createHash('sha1') : null;
          first = false;
        }
        const take = Math.min(body, rest.length);
        hash?.update(rest.subarray(0, take));
        body -= take;
        rest = rest.subarray(take);
        if (body === 0) {
          body = -1;
          completed += 1;
          if (stopped) continue;
          requests += 1;
          if (hash !== null) {
            verified += 1;
            const digest = hash.digest('hex');
            if (digest !== spec.sha1) fail(`body's SHA-1 ${digest}, the file's ${spec.sha1}`);
          }
        }
      }
      send(completed);
      return true;
    };
    socket.on('error', (err) => {
      if (!stopped) fail(`connection: ${err.message}`);
    });
    socket.on('close', () => {
      if (!stopped) {
        fail('the server closed a connection');
        sockets[sockets.indexOf(socket)] = open();
      }
    });
    return socket;
  };
  const sockets = Array.from({ length: spec.connections }, open);

  return {
    mark() {
      requests = 0;
      since = performance.now();
      cpu = process.cpuUsage();
    },
    stop() {
      stopped = true;
      const { user, system } = process.cpuUsage(cpu);
      const seconds = (performance.now() - since) / 1000;
      const result = { requests, seconds, verified, bad, failures, cpuSeconds: (user + system) / 1e6 };
      for (const socket of sockets) socket.destroy();
      return result;
    },
  };
}

if (process.send !== undefined && process.argv[2]?.startsWith('{')) {
  const client = runClient(JSON.parse(process.argv[2]) as ClientSpec);
  process.on('message', (message) => {
    if (message === 'mark') {
      client.mark();
      process.send!('marked');
    } else if (message === 'stop') {
      process.send!(client.stop(), () => process.disconnect());
    }
  });
  process.send('started');
}
