// The compiled addon (native/), typed. Only this file knows where the binary lives.

/** An opaque handle to one native Region; only the addon can make or read one. */
export type Handle = { readonly __mmanHandle: unique symbol };

export interface NativeAddon {
  readonly pageSize: number;
  readonly constants: Readonly<Record<string, number>>;
  map(length: number, prot: number, flags: number, fd: number, offset: number,
      hint?: bigint): Handle | number;
  buffer(handle: Handle, offset: number, length: number): ArrayBuffer;
  unmap(handle: Handle): number;
  remap(handle: Handle, newSize: number, flags: number): number;
  fixed(handle: Handle, offset: number, length: number, prot: number, flags: number,
        fd: number, fileOffset: number): number;
  address(handle: Handle): bigint;
  protect(handle: Handle, offset: number, length: number, prot: number): number;
  advise(handle: Handle, offset: number, length: number, advice: number): number;
  sync(handle: Handle, offset: number, length: number, flags: number): number;
  flush(handle: Handle, offset: number, length: number, flags: number): Promise<number>;
  lock(handle: Handle, offset: number, length: number, flags: number): number;
  unlock(handle: Handle, offset: number, length: number): number;
  residency(handle: Handle, offset: number, length: number, out: Uint8Array): number;
  /** One access per `stride` bytes of `buffer` (a write of 1, or a read); returns elapsed ns. */
  touchPages(buffer: ArrayBuffer, stride: number, write: boolean): number;
  fadvise(fd: number, offset: number, length: number, advice: number): number;
  /** ns per one-page mmap + munmap in a C loop inside this process, or -errno. */
  mapUnmapLoop(iterations: number): number;
  readonly fadviseConstants: Readonly<Record<string, number>>;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeAddon = require('../build/Release/mman.node');
