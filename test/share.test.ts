// Sharing with worker threads: share() in one thread, from() in another, the same pages in
// both, as the other thread (and the file on disk) sees them; every descriptor accounted for.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { mapAnonymous, mapFile, Mapping, PAGE_SIZE, RingBuffer, SharedMemory, notify } from '../src';
import { descriptorsOf, descriptorsTo, fileWith, fixture, tempDir } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

// Runs test/fixtures/share-worker.js in `mode` with `data`; resolves with what it posted.
function inWorker<T = Record<string, unknown>>(mode: string, data: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(fixture('share-worker.js'), { workerData: { mode, ...data } });
    worker.once('message', (message: T & { error?: { message: string } }) => {
      if (message.error) reject(Object.assign(new Error(message.error.message), message.error));
      else resolve(message);
    });
    worker.once('error', reject);
  });
}

// Memory files (and pipes) this process holds: what a leak here would leave.
const openFds = () => descriptorsTo(/copy\.bin/);

describe('SharedMemory.share() / SharedMemory.from()', () => {
  test('four workers add to one counter on the same pages: the exact total, here', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const counters = new Int32Array(m.buffer);
    await Promise.all(Array.from({ length: 4 }, () => inWorker('count', { shm: shm.share(), times: 100_000 })));
    expect(Atomics.load(counters, 0)).toBe(400_000);
    m.unmap();
  });

  test('wait() in a worker sleeps until this thread notifies', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    const words = new Int32Array(m.buffer);
    const result = inWorker<{ result: string }>('wait', { shm: shm.share() });
    let woken = 0;
    for (let i = 0; i < 2000 && woken === 0; i++) {
      woken = notify(words, 0);
      if (woken === 0) await new Promise((r) => setTimeout(r, 5));
    }
    expect(woken).toBe(1);
    expect(await result).toEqual({ result: 'ok' });
    m.unmap();
  });

  test('a RingBuffer between threads: every message answered with its length', async () => {
    using requests = RingBuffer.create(1 << 16);
    using replies = RingBuffer.create(1 << 16);
    const done = inWorker<{ count: number }>('ring', {
      requests: requests.memory.share(),
      replies: replies.memory.share(),
    });
    const lengths = Array.from({ length: 500 }, (_, i) => (i * 37) % 1000);
    const answers: number[] = [];
    for (const length of lengths) {
      requests.write(new Uint8Array(length).fill(7));
      const reply = replies.read({ timeoutMs: 10_000 })!;
      answers.push(new DataView(reply.buffer, reply.byteOffset, 4).getUint32(0));
    }
    requests.end();
    expect(replies.read({ timeoutMs: 10_000 })).toBeNull();
    expect(answers).toEqual(lengths);
    expect(await done).toEqual({ count: 500 });
  });

  test('a descriptor is received once; one never received is closed when it expires', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const before = descriptorsOf(shm.fd); // descriptors of this segment only: other tests' close meanwhile
    const d = shm.share();
    expect(structuredClone(d)).toEqual(d); // posts as it is
    expect(descriptorsOf(shm.fd)).toBe(before + 1); // the duplicate put aside
    const received = SharedMemory.from(d);
    expect(() => SharedMemory.from(d)).toThrow(expect.objectContaining({ code: 'ERR_SHARED_DESCRIPTOR_TAKEN' }));
    received.close();
    expect(descriptorsOf(shm.fd)).toBe(before);
    const lost = shm.share({ timeoutMs: 20 });
    expect(descriptorsOf(shm.fd)).toBe(before + 1);
    await new Promise((r) => setTimeout(r, 60)); // the sharing thread's sweep closes it
    expect(descriptorsOf(shm.fd)).toBe(before);
    expect(() => SharedMemory.from(lost)).toThrow(expect.objectContaining({ code: 'ERR_SHARED_DESCRIPTOR_TAKEN' }));
  });

  test('bad descriptors: a clear error, no descriptor taken or leaked', () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const d = shm.share();
    const before = descriptorsOf(shm.fd); // descriptors of this segment only: other tests' close meanwhile
    expect(() => SharedMemory.from({ ...d, pid: d.pid + 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_SHARED_DESCRIPTOR_FOREIGN' }),
    );
    for (const bad of [null, 42, {}, { ...d, type: 'mman.Mapping' }, { ...d, id: 'zz' }])
      expect(() => SharedMemory.from(bad as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => Mapping.from(d as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(descriptorsOf(shm.fd)).toBe(before);
    SharedMemory.from(d).close(); // still there after every refusal
    expect(descriptorsOf(shm.fd)).toBe(before - 1);
    expect(() => shm.share({ timeoutMs: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    shm.close();
    expect(() => shm.share()).toThrow(expect.objectContaining({ code: 'ERR_SHARED_MEMORY_CLOSED' }));
  });

  test('a segment opened read-only stays read-only in the worker', () => {
    const name = `mman-test-${process.pid}-share-ro`;
    const shm = SharedMemory.create(PAGE_SIZE, { name });
    try {
      using ro = SharedMemory.open(name, { readOnly: true });
      using there = SharedMemory.from(ro.share());
      expect(there.readOnly).toBe(true);
      expect(there.map().shared).toBe(true);
      expect(() => there.map({ readOnly: false })).toThrow(expect.objectContaining({ code: 'EACCES' }));
    } finally {
      shm.unlink();
      shm.close();
    }
  });
});

test('SharedMemory.from() keeps only a name that is one path component: a changed descriptor cannot point unlink() elsewhere', () => {
  using shm = SharedMemory.create(PAGE_SIZE);
  for (const name of ['../../tmp/x', '/etc/passwd', '', '..'])
    expect(SharedMemory.from({ ...shm.share(), name }).name).toBeUndefined();
});

describe('Mapping.share() / Mapping.from()', () => {
  test('a worker maps the same window of the file, writes through it; this mapping and fs see it', async () => {
    const path = fileWith(dir, 'shared.bin', Buffer.alloc(4 * PAGE_SIZE, 'a'));
    using m = mapFile(path, { mode: 'r+', offset: PAGE_SIZE + 3, length: 2 * PAGE_SIZE, keepFile: true });
    m.bytes.set(Buffer.from('hello'));
    const seen = await inWorker('mapping', { mapping: m.share(), text: 'from the worker', at: 100 });
    expect(seen).toEqual({ seen: 'hello', length: 2 * PAGE_SIZE, shared: true });
    expect(Buffer.from(m.bytes.subarray(100, 115)).toString()).toBe('from the worker');
    expect(
      readFileSync(path)
        .subarray(PAGE_SIZE + 103, PAGE_SIZE + 118)
        .toString(),
    ).toBe('from the worker');
  });

  test('a SharedMemory mapping shares too; a read-only mapping is read-only there', () => {
    using shm = SharedMemory.create(2 * PAGE_SIZE);
    using m = shm.map({ readOnly: true, offset: PAGE_SIZE, keepFile: true });
    using there = Mapping.from(m.share());
    expect([there.length, there.shared]).toEqual([PAGE_SIZE, true]);
    const writable = shm.map();
    writable.bytes[PAGE_SIZE] = 9;
    expect(there.bytes[0]).toBe(9);
    writable.unmap();
  });

  test('a mapping that keeps no descriptor is refused, naming the option: ERR_MAPPING_NOT_SHAREABLE', () => {
    const path = fileWith(dir, 'plain.bin', Buffer.alloc(PAGE_SIZE));
    using m = mapFile(path, { mode: 'r+' });
    const plainFds = () => descriptorsTo(/plain\.bin/);
    const before = plainFds();
    expect(() => m.share()).toThrow(
      expect.objectContaining({
        code: 'ERR_MAPPING_NOT_SHAREABLE',
        message: expect.stringContaining('keepFile: true'),
      }),
    );
    expect([before, plainFds()]).toEqual([0, 0]); // none kept, none made for the refused share()
  });

  test('private and shared anonymous mappings are refused: ERR_MAPPING_NOT_SHAREABLE', () => {
    const path = fileWith(dir, 'copy.bin', Buffer.alloc(PAGE_SIZE));
    using copy = mapFile(path, { mode: 'copy' });
    using anon = mapAnonymous(PAGE_SIZE);
    using sharedAnon = mapAnonymous(PAGE_SIZE, { shared: true });
    const before = openFds();
    for (const m of [copy, anon, sharedAnon])
      expect(() => m.share()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_NOT_SHAREABLE' }));
    expect(() => sharedAnon.share()).toThrow(
      expect.objectContaining({ message: expect.stringContaining('SharedMemory') }),
    );
    expect(openFds()).toBe(before);
    copy.unmap();
    expect(() => copy.share()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
  });
});
