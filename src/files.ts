// The files under mappings, at the level of the descriptor: what a descriptor is, whether it
// can be mapped, sizing it (reserving its blocks), and taking back a file a failing call made.
// For mapFile() (src/map.ts), resize({ growFile }) (src/mapping.ts) and SharedMemory.
import { constants as osConstants } from 'node:os';
import { fstatSync, lstatSync, readlinkSync, unlinkSync } from 'node:fs';

import { native } from './native';
import { systemError } from './errors';

/** @internal */
export const S_IFMT = 0o170000;
/** @internal */
export const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/**
 * @internal fstat(2) through the addon, which works on any descriptor; some runtimes' fs
 * (Deno's) refuse one they did not open themselves.
 */
export function statFd(fd: number): { isFile: boolean; type: number; size: number; hugePage: number } {
  const result = native.fdStat(fd);
  if (typeof result === 'number') throw systemError(result, 'fstat');
  const type = result[0] & S_IFMT;
  return { isFile: type === S_IFREG, type, size: result[1], hugePage: result[2] };
}

/** @internal */
// A descriptor about to be mapped: a regular file, a block device or a character device (for
// /dev/zero and friends). A directory is EISDIR; a FIFO or a socket cannot be mapped (ENODEV,
// as mmap(2) would say), and is refused before anything reads from it.
export function checkMappable(type: number, path: string | undefined): void {
  if (type === S_IFREG || type === S_IFCHR || type === S_IFBLK) return;
  const errno = type === S_IFDIR ? osConstants.errno.EISDIR : osConstants.errno.ENODEV;
  throw systemError(-errno, type === S_IFDIR ? 'open' : 'mmap', path);
}

// Sizes the file from `size` to `wanted` bytes: the blocks reserved (fallocate) unless sparse,
// so that a full filesystem is ENOSPC here rather than SIGBUS at a write. On failure the file
// keeps its size. A filesystem that cannot reserve (EOPNOTSUPP) is only extended.
/** @internal */
export function sizeFile(fd: number, size: number, wanted: number, sparse: boolean, path?: string): void {
  if (!sparse) {
    const rc = native.fdAllocate(fd, size, wanted - size);
    if (rc === 0) return;
    if (rc !== -osConstants.errno.EOPNOTSUPP) {
      native.fdTruncate(fd, size); // whatever it extended before failing
      throw systemError(rc, 'fallocate', path ?? pathOf(fd));
    }
  }
  const rc = native.fdTruncate(fd, wanted);
  if (rc < 0) throw systemError(rc, 'ftruncate', path ?? pathOf(fd));
}

// The path a descriptor was opened by, as the kernel has it now, for an error message only.
function pathOf(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** @internal Which file a descriptor is (device and inode), to tell it from another at its path later. */
export type FileIdentity = { dev: bigint; ino: bigint };

/** @internal The identity of the file open at `fd`. */
export function identityOf(fd: number): FileIdentity {
  const { dev, ino } = fstatSync(fd, { bigint: true });
  return { dev, ino };
}

/**
 * @internal Removes a file this call created, on the way out of a failure, if `path` still
 * names that very file (`file`: its descriptor, or its identity): one renamed over it since is
 * someone else's, and stays. The error being thrown is the one to report, so a file already
 * gone is not another.
 */
export function removeCreated(path: string | Buffer, file: number | FileIdentity): void {
  try {
    const made = typeof file === 'number' ? identityOf(file) : file;
    const now = lstatSync(path, { bigint: true });
    if (now.dev === made.dev && now.ino === made.ino) unlinkSync(path);
  } catch {
    // Gone already (or its directory is): nothing is left behind either way.
  }
}
