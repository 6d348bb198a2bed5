// RingBuffer: one writer, one reader, in shared memory between two processes. The example
// (examples/ring-buffer.js) runs in examples.test.ts; a hostile peer is in security.test.ts.
import { fstatSync, openSync, readFileSync } from 'node:fs';
import { PAGE_SIZE, RingBuffer, SharedMemory } from '../src';
import { collectedStats, startChild, turns } from './helpers';

// How many lines of /proc/self/maps map the memory file with inode `ino` ('/memfd:' paths).
function memfdLines(ino: number): number {
  return readFileSync('/proc/self/maps', 'latin1')
    .split('\n')
    .filter((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[4] === String(ino) && (fields[5] ?? '').startsWith('/memfd:');
    }).length;
}

// memfdLines(ino) once it is down to `atMost`, or after 40 rounds of collecting (a range an
// unmapped buffer still reaches goes back to the kernel when the buffer is collected).
async function settledLines(ino: number, atMost: number): Promise<number> {
  let lines = memfdLines(ino);
  for (let i = 0; i < 40 && lines > atMost; i++) {
    collectedStats();
    await turns();
    lines = memfdLines(ino);
  }
  return lines;
}

describe('RingBuffer between two processes', () => {
  test('every message of every size arrives once, in order, across many wrap-arounds', async () => {
    const input = RingBuffer.create(PAGE_SIZE);
    const output = RingBuffer.create(PAGE_SIZE);
    const child = startChild('ring', [], [input.memory, output.memory]);
    let sum = 0;
    const count = 3000;
    for (let n = 0; n < count; n++) {
      const length = (n * 37) % (input.maxMessageLength + 1);
      const slot = input.reserve(length);
      sum = (sum * 31 + length) % 1000000007;
      for (let i = 0; i < length; i++) {
        slot[i] = (n + i) & 0xff;
        sum = (sum * 31 + slot[i]) % 1000000007;
      }
      input.commit();
    }
    input.end();
    const reply = JSON.parse(Buffer.from(output.read()!).toString());
    expect(reply).toEqual({ count, sum });
    expect(output.read()).toBeNull();
    expect(await child.exited).toEqual([0, null]);
  });

  test('read() times out with undefined on an empty ring; wrong sizes, a ring-less segment and out-of-turn commits are refused', () => {
    const ring = RingBuffer.create(PAGE_SIZE);
    expect(ring.read({ timeoutMs: 10 })).toBeUndefined();
    expect(() => ring.write(new Uint8Array(ring.maxMessageLength + 1))).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }),
    );
    expect(() => RingBuffer.create(5000)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => RingBuffer.attach(SharedMemory.create(8192))).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
    );
    expect(() => ring.commit()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
    ring.reserve(1);
    expect(() => ring.reserve(1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE' }));
  });

  test('a full ring times out as an empty one does: write() and end() return false, reserve() undefined, nothing written', () => {
    const ring = RingBuffer.create(4096);
    const reader = RingBuffer.attach(ring.memory);
    const message = new Uint8Array(1000).fill(7);
    let written = 0;
    while (ring.write(message, { timeoutMs: 20 })) written++;
    expect(written).toBe(4); // records of 8 + 1000 bytes: four fill 4032 of 4096, a fifth does not fit
    expect(ring.write(new Uint8Array(56).fill(9), { timeoutMs: 20 })).toBe(true); // 8 + 56: now full
    expect(ring.reserve(0, { timeoutMs: 5 })).toBeUndefined();
    expect(ring.end({ timeoutMs: 5 })).toBe(false);
    expect(reader.read()).toEqual(message);
    reader.release();
    expect(ring.write(message)).toBe(true); // room for one again
    for (let i = 0; i < 3; i++) expect(reader.read({ timeoutMs: 1000 })).toEqual(message);
    expect(reader.read({ timeoutMs: 1000 })).toEqual(new Uint8Array(56).fill(9));
    expect(reader.read({ timeoutMs: 1000 })).toEqual(message);
    expect(ring.end({ timeoutMs: 1000 })).toBe(true);
    expect(reader.read({ timeoutMs: 1000 })).toBeNull();
  });

  test('readAsync/writeAsync keep the event loop free while they wait', async () => {
    const ring = RingBuffer.create(PAGE_SIZE);
    const reader = RingBuffer.attach(ring.memory);
    const pending = <T>(promise: Promise<T>): (() => boolean) => {
      let settled = false;
      void promise.then(() => (settled = true));
      return () => !settled;
    };
    const got = reader.readAsync(); // the ring is empty: it waits, and the event loop turns meanwhile
    const reading = pending(got);
    await turns(3);
    expect(reading()).toBe(true);
    await ring.writeAsync(Buffer.from('hi'));
    expect(Buffer.from((await got)!).toString()).toBe('hi');
    // A full ring: writeAsync waits until the reader makes room, the event loop turning.
    const big = new Uint8Array(ring.maxMessageLength);
    await ring.writeAsync(big);
    const blocked = ring.writeAsync(big);
    const writing = pending(blocked);
    await turns(3);
    expect(writing()).toBe(true);
    expect((await reader.readAsync())!.length).toBe(big.length);
    reader.release();
    await blocked;
    reader.close();
    ring.close();
  });

  test('after close() every method throws ERR_RING_BUFFER_CLOSED', async () => {
    const ring = RingBuffer.create(PAGE_SIZE);
    ring.write(Buffer.from('x'));
    ring.close();
    expect(ring.closed).toBe(true);
    for (const call of [
      () => ring.read(),
      () => ring.write(Buffer.from('y')),
      () => ring.reserve(1),
      () => ring.commit(),
      () => ring.end(),
      () => ring.release(),
    ]) {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_RING_BUFFER_CLOSED' }));
    }
    await expect(ring.readAsync()).rejects.toMatchObject({ code: 'ERR_RING_BUFFER_CLOSED' });
    expect(() => ring.close()).not.toThrow();
  });
});

describe('RingBuffer.attach() reads a header another process wrote', () => {
  test.each([1, PAGE_SIZE, 2 * PAGE_SIZE - 1])(
    'a segment too small for any ring (%d bytes): ERR_INVALID_ARG_VALUE, nothing kept mapped',
    async (size) => {
      const attachTo = (): number => {
        using shm = SharedMemory.create(size);
        expect(() => RingBuffer.attach(shm)).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('does not hold') }),
        );
        return fstatSync(shm.fd).ino;
      };
      expect(await settledLines(attachTo(), 0)).toBe(0);
    },
  );

  test.each([5000, 2048, 2 ** 31, -4096])(
    'a capacity create() never makes (%d): ERR_INVALID_ARG_VALUE, nothing kept mapped',
    async (capacity) => {
      // The ring and the header's mapping live in here: once it returns, only the collector
      // stands between their ranges and the kernel.
      const attachTo = async (): Promise<number> => {
        const ring = RingBuffer.create(8192);
        const { ino } = fstatSync(ring.memory.fd);
        using header = ring.memory.map();
        new Int32Array(header.buffer, 0, 1024)[65] = capacity; // CAPACITY, as src/ring.ts lays out the header
        expect(memfdLines(ino)).toBe(2); // the ring's own mapping and this one
        expect(() => RingBuffer.attach(ring.memory)).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
        );
        expect(await settledLines(ino, 2)).toBe(2); // attach() let go of the mapping it made
        ring.close();
        return ino;
      };
      const ino = await attachTo();
      expect(await settledLines(ino, 0)).toBe(0); // the kernel maps nothing of the ring's file now
    },
  );

  test('a read-only segment: ERR_MAPPING_READ_ONLY (the reader stores how far it read)', () => {
    const ring = RingBuffer.create(8192);
    using readOnly = SharedMemory.fromFd(openSync(`/proc/self/fd/${ring.memory.fd}`, 'r'));
    expect(() => RingBuffer.attach(readOnly)).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_READ_ONLY' }));
    ring.close();
  });
});
