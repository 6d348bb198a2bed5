// The file the file-backed benchmarks map: written once, non-zero, and unlinked at once,
// so that nothing is left on disk even if the run is interrupted or killed.
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scratch file of a given size that exists only while this process holds it open. */
export interface ScratchFile {
  /** `/proc/<pid>/fd/<fd>`: opens the (already unlinked) file, also from child processes. */
  readonly path: string;
  readonly size: number;
  /** Closes the last descriptor, which frees the file's blocks. Idempotent. */
  remove(): void;
}

const CHUNK = 8 * 2 ** 20;

/**
 * Writes `size` bytes of a repeating byte pattern (never all zero, so no page reads as
 * the zero page) to a new file under `dir`, fsyncs it, unlinks it while keeping it open,
 * and leaves it in the page cache.
 */
export function createScratchFile(size: number, dir = tmpdir()): ScratchFile {
  const folder = mkdtempSync(join(dir, 'mman-bench-'));
  const file = join(folder, 'data.bin');
  let fd: number;
  try {
    fd = openSync(file, 'w+');
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size));
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7 + 1) & 0x7f;
    try {
      for (let written = 0; written < size;) written += writeSync(fd, chunk, 0, Math.min(chunk.length, size - written));
      fsyncSync(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  let open = true;
  return {
    path: `/proc/${process.pid}/fd/${fd}`,
    size,
    remove() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}
