// A file's pages in the page cache: count them (mincore), bring them in, drop them
// (posix_fadvise), pin them (mlock). What vmtouch and fincore do, through this library.
import { closeSync, fdatasyncSync, fstatSync, openSync } from 'node:fs';

import { mapFile, PAGE_SIZE, type Mapping } from '../..';
import { systemError, tools } from '../../internal';

/** How much of one file is in the page cache. */
export interface FileResidency {
  path: string;
  size: number;
  pages: number;
  residentPages: number;
  /** `residentPages / pages * 100`; 100 for an empty file. */
  percent: number;
}

/** Pages of `mapping` resident in RAM now (mincore): the one count of them. */
export function countResident(mapping: Mapping): number {
  const pages = mapping.residency();
  let resident = 0;
  for (let i = 0; i < pages.length; i++) resident += pages[i] & 1;
  return resident;
}

// An empty file cannot be mapped (any access would SIGBUS); it has nothing to count either.
function withMapping<T>(path: string, empty: () => T, use: (mapping: Mapping, size: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return empty();
    const mapping = mapFile(fd);
    try {
      return use(mapping, size);
    } finally {
      mapping.unmap();
    }
  } finally {
    closeSync(fd);
  }
}

/** Counts the pages of `path` that are in the page cache (mmap + mincore; nothing is read). */
export function fileResidency(path: string): FileResidency {
  return withMapping(
    path,
    () => ({ path, size: 0, pages: 0, residentPages: 0, percent: 100 }),
    (mapping, size) => {
      const pages = Math.ceil(size / PAGE_SIZE);
      const residentPages = countResident(mapping);
      return { path, size, pages, residentPages, percent: (residentPages / pages) * 100 };
    },
  );
}

/** Reads one byte of every page of `path`, so the whole file is in the page cache. */
export function touchFile(path: string): void {
  withMapping(
    path,
    () => undefined,
    (mapping) => {
      tools.touchPages(mapping.buffer, PAGE_SIZE, false);
    },
  );
}

/**
 * Drops the pages of `path` from the page cache: fdatasync first (dirty pages cannot be
 * dropped), then `posix_fadvise(POSIX_FADV_DONTNEED)`. Pages another process has mapped
 * or locked stay; so do all pages of a tmpfs file.
 */
export function evictFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fdatasyncSync(fd);
    const rc = tools.fadvise(fd, 0, 0, tools.fadviseConstants.POSIX_FADV_DONTNEED);
    if (rc < 0) throw systemError(rc, 'posix_fadvise', path);
  } finally {
    closeSync(fd);
  }
}

/**
 * Maps `path` and mlocks every page, reading it in. The pages stay resident until the
 * returned Mapping is unmapped (or the process exits). `null` for an empty file.
 */
export function lockFile(path: string): Mapping | null {
  const fd = openSync(path, 'r');
  try {
    if (fstatSync(fd).size === 0) return null;
    const mapping = mapFile(fd);
    try {
      mapping.lock();
    } catch (err) {
      mapping.unmap();
      throw err;
    }
    return mapping;
  } finally {
    closeSync(fd);
  }
}
