// Compiled with `tsc --strict` against the package's own declarations (test/types.test.ts):
// every export used as a user would, and what the types must refuse. Never run.
import { createServer, type Socket } from 'node:net';
import {
  Advice,
  LockFlags,
  MAX_BUFFER_LENGTH,
  MapFlags,
  Mapping,
  Mutex,
  PAGE_SIZE,
  Prot,
  RemapFlags,
  RingBuffer,
  SHM_DIRECTORY,
  SharedMemory,
  SyncFlags,
  fork,
  shareWithCluster,
  mapAnonymous,
  mapFile,
  mapFileAsync,
  mappingStats,
  mmap,
  notify,
  wait,
  waitAsync,
  type LockAsyncOptions,
  type LockOptions,
  type LockResult,
  type MapAnonymousOptions,
  type MapFileAsyncOptions,
  type MapFileMode,
  type MapFileOptions,
  type MappingDescriptor,
  type MappingMemory,
  type MappingStats,
  type MmanErrorCode,
  type MutexOptions,
  type NotifyOptions,
  type PopulateOptions,
  type ResizeOptions,
  type RingBufferOptions,
  type RingWaitOptions,
  type ClusterSharing,
  type Seal,
  type ShareOptions,
  type SharedForkOptions,
  type SharedMapOptions,
  type SharedMemoryCreateOptions,
  type SharedMemoryDescriptor,
  type SharedMemoryOpenOptions,
  type SocketPassOptions,
  type SyncOptions,
  type SystemError,
  type FlushOptions,
  type UnmapOptions,
  type WaitAsyncOptions,
  type WaitOptions,
  type WaitResult,
  type WithLockOptions,
} from '../../lib';

export async function files(path: string): Promise<number> {
  const mode: MapFileMode = 'r+';
  const options: MapFileOptions = { mode, guard: true };
  const map: Mapping = mapFile(path, options);
  const bytes: Buffer = map.bytes; // a Buffer: goes where a Buffer is wanted
  const window: Buffer = map.view(0, Math.min(PAGE_SIZE, map.length));
  const u8: Uint8Array = bytes; // and where a Uint8Array is
  const asyncOptions: MapFileAsyncOptions = { populate: true };
  const other = await mapFileAsync(path, asyncOptions);
  const sync: SyncOptions = { invalidate: false };
  map.sync(sync);
  const flush: FlushOptions = {};
  await map.flush(flush);
  const resize: ResizeOptions = { growFile: true };
  map.resize(map.length + PAGE_SIZE, resize);
  map.advise(Advice.Sequential);
  map.protect(Prot.Read | Prot.Write);
  const lock: LockOptions = { onFault: true };
  map.lock(0, PAGE_SIZE, lock);
  map.unlock(0, PAGE_SIZE);
  const populate: PopulateOptions = { write: true };
  await map.populate(populate);
  const memory: MappingMemory = map.memory();
  const residency: Uint8Array = map.residency();
  const address: bigint = map.address;
  const truncated: boolean = map.truncated;
  const descriptor: MappingDescriptor = map.share();
  const again: Mapping = Mapping.from(descriptor);
  const unmap: UnmapOptions = {};
  for (const m of [map, other, again]) m.unmap(unmap);
  const stats: MappingStats = mappingStats();
  void [window, u8, memory, residency, address, truncated, SyncFlags.Async, RemapFlags.MayMove, LockFlags.OnFault];
  return stats.regions + MAX_BUFFER_LENGTH;
}

export function anonymous(): void {
  const options: MapAnonymousOptions = { shared: true };
  using map = mapAnonymous(PAGE_SIZE, options);
  using raw = mmap(PAGE_SIZE, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous);
  map.bytes.write('hello');
  raw.bytes[0] = map.bytes[0];
  // @ts-expect-error: Mappings come from mmap(), mapFile() and mapAnonymous()
  void new Mapping();
}

export async function sharing(socket: Socket): Promise<void> {
  const create: SharedMemoryCreateOptions = { name: 'example' };
  const shm = SharedMemory.create(PAGE_SIZE, create);
  const open: SharedMemoryOpenOptions = { readOnly: true };
  const opened = SharedMemory.open('example', open);
  const mapOptions: SharedMapOptions = {};
  const words = new Int32Array(shm.map(mapOptions).buffer);
  const forkOptions: SharedForkOptions = { share: [shm] };
  const child = fork('child.js', [], forkOptions);
  const share: ShareOptions = { timeoutMs: 1000 };
  const d: SharedMemoryDescriptor = shm.share(share);
  const from = SharedMemory.from(d);
  const pass: SocketPassOptions = { timeoutMs: 1000 };
  await shm.sendTo(socket, pass);
  const received: SharedMemory = await SharedMemory.receive(socket, pass);
  const seals: Seal[] = received.seals;
  const inherited: SharedMemory[] = SharedMemory.inherited();
  const fromFd = SharedMemory.fromFd(3);
  const cluster: ClusterSharing = shareWithCluster([shm], { exec: 'worker.js' });
  const env: string = cluster.env.MMAN_SHARED;
  void env;
  void [child, seals, inherited, fromFd, opened, from, SHM_DIRECTORY, createServer];
  // @ts-expect-error: segments come from create(), open(), from(), fromFd(), receive(), inherited()
  void new SharedMemory();

  const waitOptions: WaitOptions = { spin: 100 };
  const result: WaitResult = wait(words, 0, 0, 10, waitOptions);
  const asyncOptions: WaitAsyncOptions = { signal: AbortSignal.timeout(10) };
  const later: WaitResult = await waitAsync(words, 0, 0, 10, asyncOptions);
  const notifyOptions: NotifyOptions = {};
  const woken: number = notify(words, 0, 1, notifyOptions);
  void [result, later, woken];

  const mutexOptions: MutexOptions = { spin: 10 };
  const mutex = new Mutex(words, 1, mutexOptions);
  const state: LockResult = mutex.lock(100);
  if (state !== 'timed-out') mutex.unlock();
  const withLock: WithLockOptions = { timeoutMs: 100 };
  const n: number = mutex.withLock((how) => (how === 'owner-died' ? 1 : 0), withLock);
  const lockAsync: LockAsyncOptions = { timeoutMs: 100 };
  const text: string = await mutex.withLockAsync(async () => 'done', lockAsync);
  void [n, text];
}

export function rings(memory: SharedMemory): void {
  const options: RingBufferOptions = { spin: 0 };
  const ring = RingBuffer.create(1 << 16, options);
  const reader = RingBuffer.attach(memory, options);
  const written: true = ring.write(Buffer.from('x')); // no timeout: it was written
  const timed: RingWaitOptions = { timeoutMs: 10 };
  const maybe: boolean = ring.write(Buffer.from('y'), timed);
  const slot: Uint8Array = ring.reserve(4);
  ring.commit();
  const maybeSlot: Uint8Array | undefined = ring.reserve(4, timed);
  if (maybeSlot) ring.commit();
  ring.end();
  // The README's loop: without a timeout, read() is a message or null, never undefined.
  for (let m; (m = reader.read()) !== null;) {
    const length: number = m.length;
    void length;
  }
  const timedRead: Uint8Array | null | undefined = reader.read(timed);
  // @ts-expect-error: with a timeout, read() may be undefined
  const notUndefined: Uint8Array | null = reader.read(timed);
  // @ts-expect-error: RingBuffers come from create() and attach()
  void new RingBuffer();
  void [written, maybe, slot, timedRead, notUndefined];
}

export function errors(err: unknown): string | undefined {
  const e = err as SystemError & { code: MmanErrorCode | string };
  const codes: MmanErrorCode[] = ['ERR_MAPPING_CLOSED', 'ERR_ILLEGAL_CONSTRUCTOR', 'ABORT_ERR', 'ERR_MUTEX_TIMED_OUT'];
  return codes.includes(e.code as MmanErrorCode) ? e.syscall : undefined;
}
