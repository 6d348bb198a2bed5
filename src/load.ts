// Finds and loads the addon: a source build (build/Release) first, then the prebuild shipped for
// this CPU and libc, prebuilds/linux-<cpu>/mman.<glibc|musl>.node. The choice is a pure function
// of what it is told (addonCandidates, chooseAddon); the libc is the one this process runs on,
// read once from its own memory map.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mmanError } from './errors';

/** The C library a Linux process runs on, as the prebuilds are tagged. */
export type Libc = 'glibc' | 'musl';

/** What the choice of an addon depends on, and nothing else. */
export interface AddonQuery {
  /** The package's directory (the one holding package.json, build/ and prebuilds/). */
  root: string;
  /** `process.platform`. */
  platform: string;
  /** `process.arch`. */
  arch: string;
  /** The libc of the process, or undefined when it could not be told. */
  libc: Libc | undefined;
  /** Skip the source builds (build/Release, build/Debug): load a prebuild or nothing. */
  prebuildsOnly: boolean;
}

/** What {@link chooseAddon} found: the file to load, if any, and every path it looked at, in order. */
export interface AddonChoice {
  path: string | undefined;
  candidates: string[];
}

/** An error `require('mman')` throws when it has no addon it can load. */
export interface AddonError extends Error {
  code: 'ERR_MMAN_ADDON_NOT_FOUND' | 'ERR_MMAN_ADDON_LOAD_FAILED';
  /** Every file looked for, in order. */
  candidates: string[];
  /** The libc the process was found to run on. */
  libc: Libc | undefined;
}

// A file name in /proc/<pid>/maps that only a musl process maps: musl's loader, which is its
// libc (Alpine's /lib/ld-musl-x86_64.so.1; Debian's and Void's libc.so behind that name; glibc's
// libc.so is a linker script, never mapped).
const MUSL_FILES = /^(ld-musl-[\w-]+\.so\.1|libc\.musl-[\w-]+\.so\.1|libc\.so)$/;
// glibc's libc and loader, named as glibc 2.34 and later do (libc.so.6) and before (libc-2.31.so).
const GLIBC_FILES = /^(libc\.so\.6|libc-2\.\d+\.so|ld-linux[\w.-]*\.so\.\d|ld-2\.\d+\.so)$/;

/**
 * The libc of a process, from the text of its `/proc/<pid>/maps`: `'musl'` if musl's libc is
 * mapped, `'glibc'` if glibc's is, undefined if neither (a static binary, or no text).
 */
export function libcFromMaps(maps: string): Libc | undefined {
  let glibc = false;
  for (const line of maps.split('\n')) {
    const slash = line.indexOf('/');
    if (slash < 0) continue;
    const path = line.slice(slash).replace(/ \(deleted\)$/, '');
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (MUSL_FILES.test(name)) return 'musl';
    if (GLIBC_FILES.test(name)) glibc = true;
  }
  return glibc ? 'glibc' : undefined;
}

let detected: { libc: Libc | undefined } | undefined;

/**
 * The libc this process runs on, found once: the libc its memory map shows (what the process
 * actually loaded, whichever distribution or file it came from), else glibc when the process
 * report names a glibc runtime version, else undefined.
 */
export function detectLibc(): Libc | undefined {
  if (detected) return detected.libc;
  let libc: Libc | undefined;
  try {
    libc = libcFromMaps(readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    // no /proc, or no permission to read it (Deno without --allow-read)
  }
  if (!libc) {
    try {
      const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
      if (typeof header?.glibcVersionRuntime === 'string') libc = 'glibc';
    } catch {
      // a runtime without process.report
    }
  }
  detected = { libc };
  return libc;
}

/**
 * Every file the addon may be, most wanted first: the source builds (unless
 * `query.prebuildsOnly`), then the prebuild for the platform, CPU and libc (both libcs, glibc
 * first, when the libc is not known).
 */
export function addonCandidates(query: AddonQuery): string[] {
  const { root, platform, arch, libc, prebuildsOnly } = query;
  const builds = prebuildsOnly ? [] : ['Release', 'Debug'].map((kind) => join(root, 'build', kind, 'mman.node'));
  const libcs: Libc[] = libc ? [libc] : ['glibc', 'musl'];
  return [...builds, ...libcs.map((tag) => join(root, 'prebuilds', `${platform}-${arch}`, `mman.${tag}.node`))];
}

/** The first of {@link addonCandidates} that `exists` (by default, that is a file on disk). */
export function chooseAddon(query: AddonQuery, exists: (path: string) => boolean = existsSync): AddonChoice {
  const candidates = addonCandidates(query);
  return { path: candidates.find((path) => exists(path)), candidates };
}

/** How to build the addon from the sources in `root`, for an error message. */
function howToBuild(root: string): string {
  return (
    `Build it from the sources the package ships: cd ${root} && npm run build:addon ` +
    '(node-gyp, with a C++17 compiler, make and python3), or point MMAN_ADDON at a built mman.node'
  );
}

function addonError(
  code: AddonError['code'],
  detail: string,
  query: AddonQuery,
  candidates: string[],
  cause?: unknown,
): AddonError {
  const error = mmanError(code, detail, howToBuild(query.root)) as AddonError;
  if (cause !== undefined) Object.defineProperty(error, 'cause', { value: cause, writable: true, configurable: true });
  error.candidates = candidates;
  error.libc = query.libc;
  return error;
}

/**
 * Loads the addon of the package in `root`: the file `MMAN_ADDON` names if set (another build
 * of the same sources, the sanitizer build say), else the first of {@link addonCandidates} that
 * exists for this process (`PREBUILDS_ONLY` skips the source builds). Throws
 * `ERR_MMAN_ADDON_NOT_FOUND` naming every file looked for when none exists, and
 * `ERR_MMAN_ADDON_LOAD_FAILED` (with the loader's error as `cause`) when the file does not load.
 */
export function loadAddon(root: string, env: NodeJS.ProcessEnv = process.env): unknown {
  if (env.MMAN_ADDON) return require(env.MMAN_ADDON); // eslint-disable-line @typescript-eslint/no-require-imports
  const query: AddonQuery = {
    root,
    platform: process.platform,
    arch: process.arch,
    libc: detectLibc(),
    prebuildsOnly: Boolean(env.PREBUILDS_ONLY),
  };
  const { path, candidates } = chooseAddon(query);
  const target = `${query.platform}-${query.arch}, ${query.libc ?? 'libc not known'}`;
  if (path === undefined) {
    const only = query.platform === 'linux' ? '' : ' (mman runs on Linux only)';
    throw addonError(
      'ERR_MMAN_ADDON_NOT_FOUND',
      `for ${target}${only}: it looked for ${candidates.join(', ')}`,
      query,
      candidates,
    );
  }
  try {
    return require(path); // eslint-disable-line @typescript-eslint/no-require-imports
  } catch (cause) {
    throw addonError(
      'ERR_MMAN_ADDON_LOAD_FAILED',
      `${path} (${target}): ${(cause as Error).message}`,
      query,
      candidates,
      cause,
    );
  }
}
