// The ArrayBuffers over mapped memory, as JavaScript sees them: each is made here, and only
// here, by lend(), which gives it everything the rest of the package and the addon rely on.
// A buffer over a region
// - holds the region's handle, so that the handle is collected only once every such buffer is:
//   the addon learns from that one weak reference that nothing can reach the pages any more
//   (native/lifetime.h);
// - names its Mapping (for futex, Mutex and RingBuffer, which take a view and need its mapping);
// - says so before its store moves into another ArrayBuffer (`transfer()`, Node 22+), so the
//   pages stay mapped until that one is collected too (docs/ARCHITECTURE.md);
// - is immutable where the runtime can make one so and the pages are read-only.
import { native, type Handle } from './native';
import type { Mapping } from './mapping';

// Symbols of the package's own: a property costs a fraction of a WeakMap entry, and lives as long.
const HANDLE = Symbol('mman.handle');
const OWNER = Symbol('mman.mapping');
type Lent = ArrayBufferLike & { [HANDLE]?: Handle; [OWNER]?: Mapping };

// Where the runtime has immutable ArrayBuffers (V8's --js-immutable-arraybuffer, Node 26), a
// read-only mapping hands out one: a write from JavaScript is a TypeError instead of SIGSEGV.
const toImmutable = (ArrayBuffer.prototype as { transferToImmutable?: () => ArrayBuffer }).transferToImmutable;

/** @internal This runtime hands out immutable buffers for read-only mappings. */
export const IMMUTABLE = typeof toImmutable === 'function';

// ArrayBuffer.prototype.transfer and transferToFixedLength, each wrapped to tell the addon first.
type TransferName = 'transfer' | 'transferToFixedLength';
const TRANSFERS: Array<[TransferName, (this: ArrayBuffer, length?: number) => ArrayBuffer]> = [];
for (const name of ['transfer', 'transferToFixedLength'] as const) {
  const method = (ArrayBuffer.prototype as Partial<Record<TransferName, (length?: number) => ArrayBuffer>>)[name];
  if (typeof method !== 'function') continue;
  TRANSFERS.push([
    name,
    {
      [name](this: ArrayBuffer, length?: number): ArrayBuffer {
        native.noteTransfer(this);
        return arguments.length === 0 ? method.call(this) : method.call(this, length);
      },
    }[name],
  ]);
}

/**
 * @internal A `Buffer` over `[offset, offset + length)` of `mapping`'s region (`handle`; no
 * mapping for the raw addon's benchmark), the whole of a new ArrayBuffer (its `.buffer`).
 * `kept`: the caller keeps the ArrayBuffer and hands it back to unmap()/remap(). `readOnly`:
 * the pages are, so the ArrayBuffer is immutable where the runtime can make one so.
 */
export function lend(
  mapping: Mapping | undefined,
  handle: Handle,
  offset: number,
  length: number,
  kept: boolean,
  readOnly: boolean,
): Buffer {
  // The addon's Buffer is the one the runtime makes around the ArrayBuffer anyway (Node's
  // external ArrayBuffers are made through a Buffer): no second view to make.
  let bytes = native.buffer(handle, offset, length, kept);
  let buffer = bytes.buffer;
  if (readOnly && toImmutable !== undefined) {
    native.noteTransfer(buffer); // its store moves to the immutable buffer: the pages wait for that one
    buffer = toImmutable.call(buffer);
    bytes = Buffer.from(buffer, 0, length);
  } else if (!(bytes instanceof Buffer)) {
    bytes = Buffer.from(buffer, 0, length); // a runtime whose addon Buffer is a plain Uint8Array
  }
  const lent = buffer as Lent;
  lent[HANDLE] = handle;
  lent[OWNER] = mapping;
  for (const [name, method] of TRANSFERS) {
    Object.defineProperty(buffer, name, { value: method, writable: true, configurable: true });
  }
  return bytes as Buffer;
}

/** @internal The Mapping that made `buffer`, even an unmapped one (to tell "closed" from "not ours"). */
export function ownerOf(buffer: ArrayBufferLike): Mapping | undefined {
  return (buffer as Lent)[OWNER];
}
