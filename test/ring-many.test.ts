// RingBuffer with many writers and/or many readers: real processes (fork) and worker threads
// (share/from) on one ring, every message checked byte by byte and in each writer's order; a
// writer killed holding a reservation and a reader killed holding a message wedge nobody
// and are counted; end() ends the stream for every reader; every misuse has a code.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { fork, RingBuffer, SharedMemory } from '../src';
import { fixture, runFixture, tempDir } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const messages = require('./fixtures/ring-messages') as {
  lengthOf(id: number, seq: number, max: number): number;
  fill(bytes: Uint8Array, id: number, seq: number): void;
  check(bytes: Uint8Array, max: number): [number, number];
};

interface Peer {
  /** The next message the child (or worker) reported. */
  next(): Promise<Record<string, unknown>>;
  /** Resolves once it has exited: [code, signal] for a process, [code, null] for a worker. */
  exited: Promise<[number | null, string | null]>;
  kill(): void;
}

function queue(on: (listener: (m: unknown) => void) => void): () => Promise<Record<string, unknown>> {
  const queued: unknown[] = [];
  const waiting: Array<(m: unknown) => void> = [];
  on((m) => {
    const w = waiting.shift();
    if (w) w(m);
    else queued.push(m);
  });
  return () =>
    new Promise((resolve) => {
      if (queued.length > 0) resolve(queued.shift() as Record<string, unknown>);
      else waiting.push((m) => resolve(m as Record<string, unknown>));
    });
}

// A process running test/fixtures/ring-many-child.js in `mode`, the ring's memory shared by fork().
function child(ring: RingBuffer, mode: string, ...args: Array<string | number>): Peer {
  const proc = fork(fixture('ring-many-child.js'), [mode, ...args.map(String)], { share: [ring.memory] });
  return {
    next: queue((listener) => proc.on('message', listener)),
    exited: once(proc, 'exit') as Promise<[number | null, string | null]>,
    kill: () => proc.kill('SIGKILL'),
  };
}

// A worker thread running the same fixture, the ring's memory shared by share()/from().
function worker(ring: RingBuffer, mode: string, ...args: Array<string | number>): Peer {
  const w = new Worker(fixture('ring-many-child.js'), {
    workerData: { mode, shm: ring.memory.share(), args: args.map(String) },
  });
  return {
    next: queue((listener) => w.on('message', listener)),
    exited: once(w, 'exit').then(([code]) => [code as number, null]),
    kill: () => void w.terminate(),
  };
}

// Reads `count` messages (each checked byte by byte), failing instead of blocking for ever.
function readSome(ring: RingBuffer, count: number): Array<[number, number]> {
  const got: Array<[number, number]> = [];
  while (got.length < count) {
    const message = ring.read({ timeoutMs: 30_000 });
    if (message === undefined) throw new Error(`nothing to read after ${got.length} of ${count} messages`);
    if (message === null) throw new Error(`the stream ended after ${got.length} of ${count} messages`);
    got.push(messages.check(message, ring.maxMessageLength));
  }
  return got;
}

// The messages of `got` by writer: each writer's sequence numbers, in the order read.
function byWriter(got: Array<[number, number]>): Map<number, number[]> {
  const writers = new Map<number, number[]>();
  for (const [id, seq] of got) {
    if (!writers.has(id)) writers.set(id, []);
    writers.get(id)!.push(seq);
  }
  return writers;
}

// What several readers got between them: each reader claimed each writer's messages in that
// writer's order, and together they read every message of every writer in `ids` exactly once.
function expectReadOnceInOrder(lists: Array<Array<[number, number]>>, ids: number[], count: number): void {
  for (const got of lists)
    for (const seqs of byWriter(got).values()) expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  const all = byWriter(lists.flat());
  for (const id of ids) expect([...all.get(id)!].sort((a, b) => a - b)).toEqual(upTo(count));
  expect(lists.flat()).toHaveLength(ids.length * count); // no message twice
}

const upTo = (n: number, from = 0): number[] => Array.from({ length: n - from }, (_, i) => from + i);

describe('RingBuffer with many writers', () => {
  test('four writer processes, one reader: every message whole, each writer in its order, then end()', async () => {
    // 16 KiB: the writers fill it many times over, wrap, and wait for room.
    const ring = RingBuffer.create(16384, { writers: 'many' });
    const count = 1500;
    const writers = [1, 2, 3, 4].map((id) => child(ring, 'write', id, count));
    const got = readSome(ring, 4 * count);
    for (const w of writers) expect(await w.next()).toEqual({ done: count });
    for (const w of writers) expect(await w.exited).toEqual([0, null]);
    const seen = byWriter(got);
    expect([...seen.keys()].sort()).toEqual([1, 2, 3, 4]);
    for (const id of [1, 2, 3, 4]) expect(seen.get(id)).toEqual(upTo(count));
    expect(ring.end()).toBe(true);
    expect(ring.read()).toBeNull();
    expect([ring.skipped, ring.lost]).toEqual([0, 0]);
    ring.close();
  });

  test('a writer SIGKILLed holding a reservation holds the reader up until it is gone, then is skipped and counted; the other writer runs all along', async () => {
    const ring = RingBuffer.create(8192, { writers: 'many' });
    const dying = child(ring, 'holdReservation', 1, 10);
    expect(await dying.next()).toEqual({ reserved: 10 });
    const count = 600; // many times the ring: this writer waits for room behind the dead record
    const other = child(ring, 'write', 2, count);
    expect(readSome(ring, 10)).toEqual(upTo(10).map((seq) => [1, seq]));
    // Alive, the writer's record holds every reader up, even with the other's messages behind it.
    expect(ring.read({ timeoutMs: 300 })).toBeUndefined();
    expect(ring.skipped).toBe(0);
    dying.kill();
    expect(await dying.exited).toEqual([null, 'SIGKILL']);
    const got = readSome(ring, count);
    expect(got).toEqual(upTo(count).map((seq) => [2, seq]));
    expect(ring.skipped).toBe(1);
    expect(await other.next()).toEqual({ done: count });
    expect(await other.exited).toEqual([0, null]);
    ring.end();
    expect(ring.read()).toBeNull();
    expect(ring.lost).toBe(0);
    ring.close();
  });

  test('an unrelated process that received the ring over a Unix socket (sendTo/receive) writes beside a forked one', async () => {
    const ring = RingBuffer.create(8192, { writers: 'many' });
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'ring.sock');
      const server = net.createServer({ pauseOnConnect: true }).listen(path);
      await once(server, 'listening');
      const sent = once(server, 'connection').then(async ([socket]: net.Socket[]) => {
        await ring.memory.sendTo(socket);
        await once(socket.resume(), 'end');
        socket.destroy();
        server.close();
      });
      const count = 500;
      const stranger = spawn(process.execPath, [fixture('ring-many-child.js'), 'socket', path, '1', String(count)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      stranger.stdout.on('data', (d) => (out += d));
      const strangerClosed = once(stranger, 'close'); // now: it may be gone before the reads are done
      const forked = child(ring, 'write', 2, count);
      const got: Array<[number, number]> = [];
      while (got.length < 2 * count) got.push(messages.check((await ring.readAsync())!, ring.maxMessageLength));
      await strangerClosed;
      await sent;
      expect(JSON.parse(out)).toEqual({ done: count });
      expect(await forked.next()).toEqual({ done: count });
      const seen = byWriter(got);
      for (const id of [1, 2]) expect(seen.get(id)).toEqual(upTo(count));
    } finally {
      cleanup();
      ring.close();
    }
  });

  test('three worker threads as writers, this thread reading with readAsync()', async () => {
    const ring = RingBuffer.create(8192, { writers: 'many' });
    const count = 800;
    const workers = [7, 8, 9].map((id) => worker(ring, 'write', id, count));
    const got: Array<[number, number]> = [];
    while (got.length < 3 * count) got.push(messages.check((await ring.readAsync())!, ring.maxMessageLength));
    for (const w of workers) expect(await w.next()).toEqual({ done: count });
    for (const w of workers) expect((await w.exited)[0]).toBe(0);
    const seen = byWriter(got);
    for (const id of [7, 8, 9]) expect(seen.get(id)).toEqual(upTo(count));
    ring.close();
  });

  test('a worker terminated holding a reservation: the record is skipped and counted', async () => {
    const ring = RingBuffer.create(8192, { writers: 'many' });
    const dying = worker(ring, 'holdReservation', 3, 5);
    expect(await dying.next()).toEqual({ reserved: 5 });
    const other = worker(ring, 'write', 4, 50);
    expect(readSome(ring, 5)).toEqual(upTo(5).map((seq) => [3, seq]));
    dying.kill();
    await dying.exited;
    const got: Array<[number, number]> = [];
    while (got.length < 50) got.push(messages.check((await ring.readAsync())!, ring.maxMessageLength));
    expect(got).toEqual(upTo(50).map((seq) => [4, seq]));
    expect(ring.skipped).toBe(1);
    await other.exited;
    ring.close();
  });
});

describe("a process killed holding one of the ring's locks", () => {
  test.each([
    ['writers', 96],
    ['readers', 112],
  ])(
    "the %s' lock: held, it times calls out; once the holder is gone, the next call takes it over",
    async (_, index) => {
      const ring = RingBuffer.create(4096, { writers: 'many', readers: 'many' });
      ring.write(Buffer.from('before'));
      const holder = child(ring, 'holdLock', index);
      expect(await holder.next()).toEqual({ holding: index });
      if (index === 96) {
        expect(ring.write(Buffer.from('blocked'), { timeoutMs: 100 })).toBe(false);
        await expect(
          ring.writeAsync(Buffer.from('blocked'), { signal: AbortSignal.timeout(100) }),
        ).rejects.toMatchObject({ name: expect.stringMatching(/AbortError|TimeoutError/) });
      } else {
        expect(ring.read({ timeoutMs: 100 })).toBeUndefined();
      }
      const pending = index === 96 ? ring.writeAsync(Buffer.from('after')) : ring.readAsync();
      holder.kill();
      expect(await holder.exited).toEqual([null, 'SIGKILL']);
      const got = await pending;
      if (index === 96) {
        expect(Buffer.from(ring.read()!).toString()).toBe('before');
        expect(Buffer.from(ring.read()!).toString()).toBe('after');
      } else {
        expect(Buffer.from(got!).toString()).toBe('before');
      }
      ring.write(Buffer.from('more')); // both locks work on
      expect(Buffer.from(ring.read()!).toString()).toBe('more');
      ring.close();
    },
  );

  test('killed in end() between its last two stores: the next writer finishes the end, every reader gets null', async () => {
    const ring = RingBuffer.create(4096, { writers: 'many', readers: 'many' });
    ring.write(Buffer.from('before'));
    const holder = child(ring, 'holdLock', 96, 'end');
    expect(await holder.next()).toEqual({ holding: 96 });
    holder.kill();
    await holder.exited;
    expect(() => ring.write(Buffer.from('late'))).toThrow(expect.objectContaining({ code: 'ERR_RING_BUFFER_ENDED' }));
    expect(Buffer.from(ring.read()!).toString()).toBe('before');
    expect(ring.read()).toBeNull();
    expect(ring.end()).toBe(true);
    ring.close();
  });
});

describe('RingBuffer with many readers', () => {
  test('three reader processes, two writer processes and this one: each message read once, the union exactly what was written', async () => {
    const ring = RingBuffer.create(16384, { writers: 'many', readers: 'many' });
    const count = 1000;
    const readers = [0, 1, 2].map(() => child(ring, 'read'));
    for (const r of readers) expect(await r.next()).toEqual({ reading: true });
    const writers = [1, 2].map((id) => child(ring, 'write', id, count));
    for (let seq = 0; seq < count; seq++) {
      const bytes = new Uint8Array(messages.lengthOf(3, seq, ring.maxMessageLength));
      messages.fill(bytes, 3, seq);
      await ring.writeAsync(bytes); // the event loop turns: the children's reports arrive
    }
    for (const w of writers) expect(await w.next()).toEqual({ done: count });
    expect(ring.end()).toBe(true);
    const lists = [];
    for (const r of readers) {
      const { got } = (await r.next()) as { got: Array<[number, number]> };
      lists.push(got);
      expect(await r.exited).toEqual([0, null]);
    }
    expectReadOnceInOrder(lists, [1, 2, 3], count);
    expect(ring.read()).toBeNull(); // this one too, after the end
    ring.close();
  });

  test('three reader threads with the blocking read() on the smallest ring, two writer threads: each message read once, each writer in its order', async () => {
    const ring = RingBuffer.create(4096, { writers: 'many', readers: 'many' });
    const count = 3000;
    const readers = [0, 1, 2].map(() => worker(ring, 'readBlocking'));
    for (const r of readers) expect(await r.next()).toEqual({ reading: true });
    const writers = [1, 2].map((id) => worker(ring, 'write', id, count));
    for (const w of writers) expect(await w.next()).toEqual({ done: count });
    expect(ring.end()).toBe(true);
    const lists = [];
    for (const r of readers) {
      const { got } = (await r.next()) as { got: Array<[number, number]> };
      lists.push(got);
      expect((await r.exited)[0]).toBe(0);
    }
    for (const w of writers) expect((await w.exited)[0]).toBe(0);
    expectReadOnceInOrder(lists, [1, 2], count);
    expect([ring.skipped, ring.lost]).toEqual([0, 0]);
    ring.close();
  });

  test('a reader SIGKILLed between read() and release(): its space comes back to the writers once it is gone, the message counted lost, never read again', async () => {
    const ring = RingBuffer.create(4096, { readers: 'many' });
    const write = (seq: number, timeoutMs?: number): boolean => {
      const bytes = new Uint8Array(messages.lengthOf(5, seq, 200));
      messages.fill(bytes, 5, seq);
      return timeoutMs === undefined ? ring.write(bytes) : ring.write(bytes, { timeoutMs });
    };
    write(0);
    const dying = child(ring, 'holdRead');
    expect(await dying.next()).toEqual({ holding: [5, 0] });
    // This reader reads and releases everything else; the ring fills behind the held message.
    let seq = 1;
    for (;;) {
      if (!write(seq, 0)) break;
      expect(messages.check(ring.read()!, 200)).toEqual([5, seq]);
      ring.release();
      seq++;
    }
    // Alive, the reader holds its record's space: a writer waits (then times out).
    expect(write(seq, 300)).toBe(false);
    expect(ring.lost).toBe(0);
    dying.kill();
    expect(await dying.exited).toEqual([null, 'SIGKILL']);
    expect(write(seq, 30_000)).toBe(true); // freed once the writer saw the reader gone
    expect(ring.lost).toBe(1);
    const after: Array<[number, number]> = [];
    for (let n = seq + 1; n < seq + 200; n++) {
      after.push(messages.check(ring.read()!, 200));
      ring.release();
      write(n);
    }
    expect(after).toEqual(upTo(seq + 199, seq).map((n) => [5, n]));
    ring.close();
  });
});

describe('RingBuffer with many readers under node:cluster', () => {
  test("three cluster workers share the primary's ring (shareWithCluster()): each message read by one of them, all of them read", () => {
    const count = 1200;
    const run = runFixture('ring-many-child.js', 'cluster', ['3', String(count)]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const { got, skipped, lost } = JSON.parse(run.stdout) as {
      got: Array<Array<[number, number]>>;
      skipped: number;
      lost: number;
    };
    expect(got).toHaveLength(3);
    for (const list of got) {
      const seqs = list.map(([, seq]) => seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b)); // each claims them in order
    }
    expect(
      got
        .flat()
        .map(([, seq]) => seq)
        .sort((a, b) => a - b),
    ).toEqual(upTo(count));
    expect([skipped, lost]).toEqual([0, 0]);
  });
});

describe('end() on a ring with many writers and readers', () => {
  test('a message reserved before end() is still read; then null for every reader, for ever; writes after it are refused', async () => {
    const ring = RingBuffer.create(8192, { writers: 'many', readers: 'many' });
    const other = RingBuffer.attach(ring.memory);
    const reader = RingBuffer.attach(ring.memory);
    const second = RingBuffer.attach(ring.memory);
    ring.write(Buffer.from('first'));
    other.reserve(6).set(Buffer.from('second'));
    expect(ring.end()).toBe(true);
    expect(() => ring.write(Buffer.from('late'))).toThrow(expect.objectContaining({ code: 'ERR_RING_BUFFER_ENDED' }));
    expect(() => ring.reserve(1)).toThrow(expect.objectContaining({ code: 'ERR_RING_BUFFER_ENDED' }));
    await expect(ring.writeAsync(Buffer.from('late'))).rejects.toMatchObject({ code: 'ERR_RING_BUFFER_ENDED' });
    await expect(ring.reserveAsync(1)).rejects.toMatchObject({ code: 'ERR_RING_BUFFER_ENDED' });
    expect(ring.end()).toBe(true); // again: already ended
    expect(Buffer.from(reader.read()!).toString()).toBe('first');
    // The reserved message holds the readers up until it is committed, which is still accepted.
    expect(second.read({ timeoutMs: 100 })).toBeUndefined();
    other.commit();
    expect(Buffer.from(second.read({ timeoutMs: 5000 })!).toString()).toBe('second');
    expect(() => other.write(Buffer.from('late'))).toThrow(expect.objectContaining({ code: 'ERR_RING_BUFFER_ENDED' }));
    for (const r of [reader, second, reader, second]) expect(r.read()).toBeNull();
    expect(await reader.readAsync()).toBeNull();
    for (const r of [ring, other, reader, second]) r.close();
  });

  test('readers waiting on an empty ring all get null when end() comes', async () => {
    const ring = RingBuffer.create(4096, { writers: 'many', readers: 'many' });
    const other = RingBuffer.attach(ring.memory);
    const waiting = [ring.readAsync(), other.readAsync()];
    await new Promise((resolve) => setTimeout(resolve, 20)); // both asleep by now, or about to be
    expect(other.end()).toBe(true);
    expect(await Promise.all(waiting)).toEqual([null, null]);
    other.close();
    ring.close();
  });

  test('close() with a message reserved abandons it: readers skip it and count it', () => {
    const ring = RingBuffer.create(4096, { writers: 'many' });
    const writer = RingBuffer.attach(ring.memory);
    writer.reserve(10);
    ring.write(Buffer.from('after'));
    writer.close();
    expect(Buffer.from(ring.read({ timeoutMs: 5000 })!).toString()).toBe('after');
    expect(ring.skipped).toBe(1);
    ring.close();
  });
});

describe('a hostile peer scribbling over a ring with many writers and readers', () => {
  test('close() never waits for ever on READ_LOCK held by a thread that lives (pid 1 written there)', () => {
    // In a child: before, close() of a reader holding a message waited for that lock for ever.
    const code = `
      const { RingBuffer } = require(${JSON.stringify(join(__dirname, '..', 'lib'))});
      const ring = RingBuffer.create(4096, { writers: 'many', readers: 'many' });
      ring.write(new Uint8Array(8));
      ring.read(); // held: close() releases it, which moves HEAD under READ_LOCK
      Atomics.store(new Int32Array(ring.mapping.buffer, 0, 1024), 112, 1); // READ_LOCK: init's id
      const started = performance.now();
      ring.close();
      console.log(JSON.stringify({ closed: ring.closed, ms: Math.round(performance.now() - started) }));
    `;
    const child = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30_000 });
    expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({
      status: 0,
      signal: null,
      stderr: '',
    });
    const out = JSON.parse(child.stdout) as { closed: boolean; ms: number };
    expect(out.closed).toBe(true);
    expect(out.ms).toBeLessThan(10_000); // one liveness period (about 50 ms), generously
  });

  test('every message is a view inside the ring, every error has a code, and every call with a timeout returns', async () => {
    const ring = RingBuffer.create(1 << 16, { writers: 'many', readers: 'many', spin: 0 });
    const data = ring.mapping.bytes;
    // test/fixtures/security-child.js writes random bytes at random places of the whole
    // segment (header, locks and cursors included) for 1.5 s.
    const scribbler = spawn(process.execPath, [
      fixture('security-child.js'),
      'scribble',
      `/proc/${process.pid}/fd/${ring.memory.fd}`,
    ]);
    let stdout = '';
    scribbler.stdout.on('data', (d) => (stdout += d));
    const exited = once(scribbler, 'exit');
    let calls = 0;
    const codes = new Set<string>();
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      try {
        calls++;
        if (calls % 2 === 0) {
          ring.write(new Uint8Array(calls % 100), { timeoutMs: 1 });
        } else {
          const message = ring.read({ timeoutMs: 1 });
          if (message) {
            expect(message.buffer).toBe(data.buffer);
            expect(message.byteOffset + message.byteLength).toBeLessThanOrEqual(data.byteOffset + data.byteLength);
          }
        }
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        expect(typeof code).toBe('string');
        codes.add(code as string);
      }
    }
    await exited;
    expect(stdout).toBe('scribbled\n');
    expect(calls).toBeGreaterThan(10);
    ring.close();
  });
});

describe('every mode: the same calls, the same answers', () => {
  const modes = [
    { writers: 'one', readers: 'one' },
    { writers: 'many', readers: 'one' },
    { writers: 'one', readers: 'many' },
    { writers: 'many', readers: 'many' },
  ] as const;

  test.each(modes)(
    'writers $writers, readers $readers: after end(), read() is null for ever, for this reader and one attached later',
    async ({ writers, readers }) => {
      const ring = RingBuffer.create(4096, { writers, readers });
      const reader = RingBuffer.attach(ring.memory);
      ring.write(Buffer.from('last'));
      expect(ring.end()).toBe(true);
      expect(Buffer.from(reader.read()!).toString()).toBe('last');
      // (The one-writer ring used to move past the end: its next read() without a timeout
      // waited for ever.)
      for (let i = 0; i < 3; i++) expect([i, reader.read({ timeoutMs: 1000 })]).toEqual([i, null]);
      expect(await reader.readAsync()).toBeNull();
      const later = RingBuffer.attach(ring.memory);
      expect(later.read({ timeoutMs: 1000 })).toBeNull();
      expect(reader.read()).toBeNull();
      for (const r of [later, reader, ring]) r.close();
    },
  );

  test.each(modes)(
    'writers $writers, readers $readers: timeouts, sizes and out-of-turn calls',
    ({ writers, readers }) => {
      const ring = RingBuffer.create(4096, { writers, readers });
      expect([ring.writers, ring.readers]).toEqual([writers, readers]);
      const reader = RingBuffer.attach(ring.memory);
      expect([reader.writers, reader.readers]).toEqual([writers, readers]);
      expect(reader.read({ timeoutMs: 10 })).toBeUndefined();
      expect(() => ring.write(new Uint8Array(ring.maxMessageLength + 1))).toThrow(
        expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
      );
      expect(() => ring.commit()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      ring.reserve(1);
      expect(() => ring.reserve(1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      expect(() => ring.end()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
      ring.commit();
      // Full: write() and end() false, reserve() undefined, nothing written.
      const big = new Uint8Array(ring.maxMessageLength).fill(3);
      let written = 0;
      while (ring.write(big, { timeoutMs: 20 })) written++;
      expect(written).toBeGreaterThan(0);
      expect(ring.reserve(ring.maxMessageLength, { timeoutMs: 5 })).toBeUndefined();
      expect(reader.read()).toEqual(new Uint8Array([0]));
      for (let i = 0; i < written; i++) expect(reader.read({ timeoutMs: 1000 })).toEqual(big);
      expect(reader.read({ timeoutMs: 10 })).toBeUndefined();
      expect(ring.end({ timeoutMs: 1000 })).toBe(true);
      expect(reader.read()).toBeNull();
      expect(() => ring.write(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'ERR_RING_BUFFER_ENDED' }));
      expect(ring.end()).toBe(true);
      expect([ring.skipped, ring.lost]).toEqual([0, 0]);
      reader.close();
      ring.close();
      for (const call of [() => ring.skipped, () => ring.lost, () => ring.read(), () => ring.end()])
        expect(call).toThrow(expect.objectContaining({ code: 'ERR_RING_BUFFER_CLOSED' }));
    },
  );

  test.each(modes)(
    'writers $writers, readers $readers: the cursors wrap at 2^32 (a ring whose positions start just before it)',
    ({ writers, readers }) => {
      const ring = RingBuffer.create(4096, { writers, readers });
      // HEAD, TAIL and READ (words 0, 16, 80 of the header, as src/ring.ts lays it out), all
      // equal: an empty ring, 3000 bytes short of the wrap.
      const words = new Int32Array(ring.mapping.buffer, 0, 1024);
      for (const index of [0, 16, 80]) words[index] = (2 ** 32 - 3000) | 0;
      const reader = RingBuffer.attach(ring.memory);
      for (let seq = 0; seq < 400; seq++) {
        const bytes = new Uint8Array(messages.lengthOf(6, seq, ring.maxMessageLength));
        messages.fill(bytes, 6, seq);
        ring.write(bytes);
        expect(messages.check(reader.read({ timeoutMs: 1000 })!, ring.maxMessageLength)).toEqual([6, seq]);
        reader.release();
      }
      expect(words[16] >>> 0).toBeLessThan(2 ** 31); // TAIL went past 2^32 and on
      ring.end();
      expect(reader.read()).toBeNull();
      reader.close();
      ring.close();
    },
  );

  test('a full ring with many writers: end() times out false, and the stream goes on', () => {
    const ring = RingBuffer.create(4096, { writers: 'many' });
    const big = new Uint8Array(ring.maxMessageLength);
    while (ring.write(big, { timeoutMs: 10 }));
    const rest = 4096 - 2 * (8 + ring.maxMessageLength);
    if (rest >= 8) ring.write(new Uint8Array(rest - 8));
    expect(ring.end({ timeoutMs: 20 })).toBe(false);
    expect(ring.read()!.length).toBe(big.length);
    ring.release();
    expect(ring.end({ timeoutMs: 1000 })).toBe(true);
    ring.close();
  });

  test('options: an unknown option or value, or one attach() finds the ring was not made with, is ERR_INVALID_ARG_VALUE', () => {
    for (const options of [
      { writers: 'two' },
      { readers: 2 },
      { writers: 'ONE' },
      { readers: null },
      { writer: 'many' },
      { spin: 0, Readers: 'many' },
    ]) {
      expect(() => RingBuffer.create(4096, options as never)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', name: 'TypeError' }),
      );
    }
    const one = RingBuffer.create(4096);
    const many = RingBuffer.create(4096, { writers: 'many', readers: 'many' });
    expect(() => RingBuffer.attach(one.memory, { writers: 'many' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('options.writers') }),
    );
    expect(() => RingBuffer.attach(many.memory, { readers: 'one' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('options.readers') }),
    );
    expect(() => RingBuffer.attach(many.memory, { writers: 'sometimes' } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => RingBuffer.attach(many.memory, { reader: 'many' } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('options.reader') }),
    );
    expect(RingBuffer.attach(many.memory, { writers: 'many', readers: 'many', spin: 0 }).writers).toBe('many');
    expect(RingBuffer.attach(one.memory, { writers: 'one' }).readers).toBe('one');
    // A mode word no create() writes: no ring.
    using header = many.memory.map();
    new Int32Array(header.buffer, 0, 1024)[66] = 4; // MODE, as src/ring.ts lays out the header
    expect(() => RingBuffer.attach(many.memory)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('does not hold') }),
    );
    one.close();
    many.close();
  });

  test('readAsync()/writeAsync() refuse a timeoutMs they would not honour (their timeout is a signal)', async () => {
    for (const options of [{}, { writers: 'many', readers: 'many' }] as const) {
      const ring = RingBuffer.create(4096, options);
      await expect(ring.readAsync({ timeoutMs: 5 } as never)).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_VALUE',
        message: expect.stringContaining('options.timeoutMs'),
      });
      await expect(ring.writeAsync(new Uint8Array(8), { timeoutMs: 5 } as never)).rejects.toMatchObject({
        code: 'ERR_INVALID_ARG_VALUE',
      });
      await expect(ring.readAsync({ signal: AbortSignal.timeout(20) })).rejects.toMatchObject({ name: 'AbortError' });
      ring.close();
    }
  });

  test.each(modes)(
    'writers $writers, readers $readers: a message is the bytes set() copies, or refused before anything is reserved',
    async ({ writers, readers }) => {
      const ring = RingBuffer.create(4096, { writers, readers });
      const reader = RingBuffer.attach(ring.memory);
      // Unread messages after the free space the next record takes (the ring has wrapped).
      for (const fill of [1, 2, 3]) ring.write(new Uint8Array(1000).fill(fill));
      reader.read();
      reader.read();
      reader.release();
      for (const fill of [4, 5]) ring.write(new Uint8Array(1000).fill(fill));
      // A length property that says less than the array holds: the record is what it holds.
      const liar = new Uint8Array(1500).fill(6);
      Object.defineProperty(liar, 'length', { value: 4 });
      expect(ring.write(liar, { timeoutMs: 20 })).toBe(false); // 1500 bytes do not fit
      for (const fill of [3, 4, 5]) expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array(1000).fill(fill));
      expect(ring.write(liar, { timeoutMs: 1000 })).toBe(true);
      expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array(1500).fill(6));
      // A view of a detached buffer: refused with a code, nothing reserved.
      const gone = new ArrayBuffer(16);
      const views = [new Uint8Array(gone), new DataView(gone, 4), new Float64Array(gone)];
      structuredClone(gone, { transfer: [gone] });
      for (const view of views) {
        expect(() => ring.write(view)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
        await expect(ring.writeAsync(view)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      }
      // A message resized while writeAsync() waited for room: refused, its record given up.
      while (ring.write(new Uint8Array(1000).fill(7), { timeoutMs: 0 }));
      type Resizable = ArrayBuffer & { resize(length: number): void };
      const Resizable = ArrayBuffer as unknown as new (length: number, options: object) => Resizable;
      const resizable = new Resizable(100, { maxByteLength: 2000 });
      const pending = ring.writeAsync(new Uint8Array(resizable).fill(8));
      resizable.resize(1500);
      for (let m; (m = reader.read({ timeoutMs: 20 })) !== undefined;) expect(m![0]).toBe(7);
      await expect(pending).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      // The ring goes on: nothing of the refused messages is read.
      expect(ring.write(new Uint8Array([9]), { timeoutMs: 1000 })).toBe(true);
      expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array([9]));
      expect(reader.read({ timeoutMs: 10 })).toBeUndefined();
      reader.close();
      ring.close();
    },
  );

  test.each(modes)(
    'writers $writers, readers $readers: close() settles the async calls still waiting, with ERR_RING_BUFFER_CLOSED',
    async ({ writers, readers }) => {
      const reader = RingBuffer.create(4096, { writers, readers });
      const writer = RingBuffer.create(4096, { writers, readers });
      while (writer.write(new Uint8Array(1000), { timeoutMs: 0 }));
      const settled = (p: Promise<unknown>) =>
        p.then(
          () => 'resolved',
          (error: { code?: string }) => error.code,
        );
      const pending = [settled(reader.readAsync()), settled(writer.writeAsync(new Uint8Array(1000)))];
      await new Promise((resolve) => setTimeout(resolve, 20)); // both asleep by now
      reader.close();
      writer.close();
      // (Before, they settled neither way on the one-writer ring, and kept the process alive.)
      expect(await Promise.all(pending)).toEqual(['ERR_RING_BUFFER_CLOSED', 'ERR_RING_BUFFER_CLOSED']);
    },
  );

  test.each(modes)(
    'writers $writers, readers $readers: async calls of one writer or one reader side by side',
    async ({ writers, readers }) => {
      const ring = RingBuffer.create(4096, { writers, readers });
      const reader = RingBuffer.attach(ring.memory);
      // writeAsync() calls waiting for room at once are queued, and written in call order. One
      // whose signal aborts while it waits its turn rejects then, and one whose buffer was
      // detached meanwhile is refused; neither is written, and the calls after them go on.
      while (ring.write(new Uint8Array(1000), { timeoutMs: 0 }));
      const outcome = (p: Promise<void>, fill: number) =>
        p.then(
          () => fill,
          (error: { code?: string }) => error.code,
        );
      while (ring.write(new Uint8Array(1), { timeoutMs: 0 })); // to the brim
      const abort = new AbortController();
      const gone = new ArrayBuffer(100);
      const emptyGone = new ArrayBuffer(0);
      type Resizable = ArrayBuffer & { resize(length: number): void };
      const Resizable = ArrayBuffer as unknown as new (length: number, options: object) => Resizable;
      const growing = new Resizable(100, { maxByteLength: 200 });
      new Uint8Array(growing).fill(6);
      const writes = [
        outcome(ring.writeAsync(new Uint8Array(100).fill(1)), 1),
        outcome(ring.writeAsync(new Uint8Array(100).fill(2), { signal: abort.signal }), 2),
        outcome(ring.writeAsync(new Uint8Array(100).fill(3)), 3),
        outcome(ring.writeAsync(new Uint8Array(gone).fill(4)), 4),
        outcome(ring.writeAsync(new Uint8Array(100).fill(5)), 5),
        outcome(ring.writeAsync(new DataView(growing)), 6), // length-tracking
        outcome(ring.writeAsync(new Uint8Array(100).fill(7), { signal: AbortSignal.abort() }), 7),
        outcome(ring.writeAsync(new Uint8Array(emptyGone)), 8), // no bytes, detached below
      ];
      await new Promise((resolve) => setTimeout(resolve, 20));
      abort.abort();
      expect(await writes[1]).toBe('ABORT_ERR'); // at once: the ring is still full
      structuredClone(gone, { transfer: [gone, emptyGone] });
      growing.resize(150);
      for (let m; (m = reader.read({ timeoutMs: 20 })) !== undefined;) expect([1000, 1]).toContain(m!.length);
      expect(await Promise.all(writes)).toEqual([
        1,
        'ABORT_ERR',
        3,
        'ERR_INVALID_ARG_VALUE',
        5,
        'ERR_INVALID_ARG_VALUE',
        'ABORT_ERR',
        'ERR_INVALID_ARG_VALUE',
      ]);
      for (const fill of [1, 3, 5]) expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array(100).fill(fill));
      expect(reader.read({ timeoutMs: 10 })).toBeUndefined();
      // With room and nothing queued, writeAsync() has committed by the time it returns, and
      // a write() after it comes after it; write() calls while one waits for room go in
      // beside it, each message once.
      const now = ring.writeAsync(new Uint8Array([6]));
      ring.write(new Uint8Array([7]));
      expect(reader.read({ timeoutMs: 0 })).toEqual(new Uint8Array([6]));
      expect(reader.read({ timeoutMs: 0 })).toEqual(new Uint8Array([7]));
      await now;
      while (ring.write(new Uint8Array(1000), { timeoutMs: 0 }));
      while (ring.write(new Uint8Array([0]), { timeoutMs: 0 })); // to the brim
      const later = ring.writeAsync(new Uint8Array([8]));
      let between = 0;
      const writing = setInterval(() => {
        if (ring.write(new Uint8Array([9]), { timeoutMs: 0 })) between++;
      }, 0);
      try {
        for (let m; (m = reader.read({ timeoutMs: 20 })) !== undefined;) expect(m![0]).toBe(0);
        await later;
      } finally {
        clearInterval(writing);
      }
      const rest: number[] = [];
      for (let m; (m = reader.read({ timeoutMs: 20 })) !== undefined;) rest.push(m![0]);
      expect(rest.filter((b) => b === 8)).toHaveLength(1);
      expect(rest.filter((b) => b === 9)).toHaveLength(between);
      // Two readAsync() waiting on an empty ring at once: two messages, not one twice.
      const reads = [reader.readAsync(), reader.readAsync()];
      await new Promise((resolve) => setTimeout(resolve, 20));
      ring.write(new Uint8Array([1]));
      ring.write(new Uint8Array([2]));
      const got = await Promise.all(reads);
      expect(got.map((m) => m![0]).sort()).toEqual([1, 2]);
      // Neither side holds a record back: the ring goes round several times.
      for (let i = 0; i < 40; i++) {
        expect(ring.write(new Uint8Array(500).fill(i), { timeoutMs: 1000 })).toBe(true);
        expect(reader.read({ timeoutMs: 1000 })![0]).toBe(i);
      }
      // A burst with room is committed as it is called: end() after it ends after it.
      const burst = [1, 2, 3].map((n) => ring.writeAsync(new Uint8Array([n])));
      ring.end();
      await Promise.all(burst);
      for (const n of [1, 2, 3]) expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array([n]));
      expect(reader.read({ timeoutMs: 1000 })).toBeNull();
      reader.close();
      ring.close();
    },
  );

  test.each(modes)(
    "writers $writers, readers $readers: a message's own getters are not run: the caller's code never comes between reserve and commit",
    ({ writers, readers }) => {
      // In a child: a getter that made the ring read-only in the middle of writeAsync() made
      // its copy a SIGSEGV; one that called commit() published the record before its bytes.
      const code = `
        const { Prot, RingBuffer } = require(${JSON.stringify(join(__dirname, '..', 'lib'))});
        const ring = RingBuffer.create(4096, ${JSON.stringify({ writers, readers })});
        const reader = RingBuffer.attach(ring.memory);
        const bytes = new Uint8Array(100).fill(5);
        let ran = 0;
        class Sly extends DataView {
          get buffer() { ran++; ring.mapping.protect(Prot.Read); return super.buffer; }
          get byteLength() { ran++; ring.commit(); return 4; }
        }
        const message = new Sly(bytes.buffer);
        const read = [];
        (async () => {
          ring.write(message);
          await ring.writeAsync(message);
          while (ring.write(new Uint8Array(1), { timeoutMs: 0 })); // to the brim: the next waits
          const waiting = ring.writeAsync(message);
          for (let m; (m = reader.read({ timeoutMs: 20 })) !== undefined;) if (m.length !== 1) read.push([...m]);
          await waiting;
          read.push([...reader.read({ timeoutMs: 1000 })]);
          console.log(JSON.stringify({ ran, read }));
        })();
      `;
      const child = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30_000 });
      expect({ status: child.status, signal: child.signal, stderr: child.stderr }).toEqual({
        status: 0,
        signal: null,
        stderr: '',
      });
      const out = JSON.parse(child.stdout) as { ran: number; read: number[][] };
      expect(out.ran).toBe(0);
      expect(out.read).toEqual([0, 1, 2].map(() => Array(100).fill(5)));
    },
  );

  test.each(modes)(
    'writers $writers, readers $readers: what the caller can do around a write leaves no record reserved',
    async ({ writers, readers }) => {
      const ring = RingBuffer.create(4096, { writers, readers });
      const reader = RingBuffer.attach(ring.memory);
      type Resizable = ArrayBuffer & { resize(length: number): void };
      const Resizable = ArrayBuffer as unknown as new (length: number, options: object) => Resizable;
      const refused = { code: 'ERR_INVALID_ARG_VALUE' };
      // An options getter that detaches the message runs before the message is read.
      const gone = new ArrayBuffer(16);
      const detaching = {
        get timeoutMs() {
          structuredClone(gone, { transfer: [gone] });
          return 1000;
        },
      };
      expect(() => ring.write(new Float32Array(gone), detaching)).toThrow(expect.objectContaining(refused));
      // A typed array out of its buffer's bounds, of any kind, is refused, not written empty.
      const shrunk = new Resizable(64, { maxByteLength: 64 });
      const views = [new Float32Array(shrunk, 16, 4), new BigInt64Array(shrunk, 32), new Int16Array(shrunk, 8, 2)];
      shrunk.resize(4);
      for (const view of views) {
        expect(() => ring.write(view)).toThrow(expect.objectContaining(refused));
        await expect(ring.writeAsync(view)).rejects.toMatchObject(refused);
      }
      // A look-alike signal whose removeEventListener() throws holds no queued call up.
      const target = new EventTarget();
      const lookAlike = {
        aborted: false,
        addEventListener: target.addEventListener.bind(target),
        removeEventListener() {
          throw new Error('no');
        },
      } as unknown as AbortSignal;
      while (ring.write(new Uint8Array(1000), { timeoutMs: 0 }));
      while (ring.write(new Uint8Array(1), { timeoutMs: 0 }));
      const queued = [1, 2, 3].map((n) => ring.writeAsync(new Uint8Array(100).fill(n), { signal: lookAlike }));
      for (let m; (m = reader.read({ timeoutMs: 20 })) !== undefined;) expect([1000, 1]).toContain(m!.length);
      await Promise.all(queued);
      for (const n of [1, 2, 3]) expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array(100).fill(n));
      // Nothing was left reserved: the ring goes on.
      expect(ring.write(new Uint8Array([9]))).toBe(true);
      expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array([9]));
      // close() and an abort in one turn: the call reports the one that came first.
      const first = async (order: string[]) => {
        const abort = new AbortController();
        const pending = reader.readAsync({ signal: abort.signal }).catch((error: { code?: string }) => error.code);
        await new Promise((resolve) => setTimeout(resolve, 20));
        for (const step of order)
          if (step === 'abort') abort.abort();
          else reader.close();
        return pending;
      };
      expect(await first(['abort', 'close'])).toBe('ABORT_ERR');
      ring.close();
      const again = RingBuffer.create(4096, { writers, readers });
      const readerAgain = RingBuffer.attach(again.memory);
      const abort = new AbortController();
      const pending = readerAgain.readAsync({ signal: abort.signal }).catch((error: { code?: string }) => error.code);
      await new Promise((resolve) => setTimeout(resolve, 20));
      readerAgain.close();
      abort.abort();
      expect(await pending).toBe('ERR_RING_BUFFER_CLOSED');
      again.close();
    },
  );

  test.each(modes)(
    'writers $writers, readers $readers: a writeAsync() that fails unhandled is an unhandled rejection, not lost quietly',
    ({ writers, readers }) => {
      // In a child: Node's default for an unhandled rejection ends the process with its error.
      const code = `
        const { RingBuffer } = require(${JSON.stringify(join(__dirname, '..', 'lib'))});
        const ring = RingBuffer.create(4096, ${JSON.stringify({ writers, readers })});
        while (ring.write(new Uint8Array(1000), { timeoutMs: 0 }));
        while (ring.write(new Uint8Array(1), { timeoutMs: 0 })); // to the brim
        ring.writeAsync(new Uint8Array(8)); // the next is queued behind it; each fails on its own
        ring.writeAsync(new Uint8Array(8));
        setTimeout(() => ring.close(), 20);
        setTimeout(() => console.log('not reported'), 500);
      `;
      const child = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30_000 });
      expect(child.signal).toBeNull();
      expect(child.stdout).toBe('');
      expect(child.status).not.toBe(0);
      expect(child.stderr).toContain('ERR_RING_BUFFER_CLOSED');
    },
  );

  test('SharedMemory of another kind is still refused as before', () => {
    using shm = SharedMemory.create(8192);
    expect(() => RingBuffer.attach(shm, { writers: 'many' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
  });
});
