// The file the file-backed benchmarks map: written once, non-zero, removed afterwards.
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scratch file of a given size in its own temporary directory. */
export interface ScratchFile {
  readonly path: string;
  readonly size: number;
  /** Removes the file and its directory. Idempotent. */
  remove(): void;
}

const CHUNK = 8 * 2 ** 20;

/**
 * Writes `size` bytes of a repeating byte pattern (never all zero, so no page reads as
 * the zero page) to a new file under `dir`, fsyncs it, and leaves it in the page cache.
 */
export function createScratchFile(size: number, dir = tmpdir()): ScratchFile {
  const folder = mkdtempSync(join(dir, 'mman-bench-'));
  const path = join(folder, 'data.bin');
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size));
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7 + 1) & 0x7f;
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < size;) written += writeSync(fd, chunk, 0, Math.min(chunk.length, size - written));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  let removed = false;
  return {
    path,
    size,
    remove() {
      if (removed) return;
      removed = true;
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
