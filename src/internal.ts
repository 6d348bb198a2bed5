// The one internal entry of the package, for its own tools (the `mman` command under
// src/cli/, the scripts in bench/) and its tests: the addon's hooks, and the helpers that
// shape errors as the library does. Not part of the public API: it may change in any release.
import { native, type NativeTools } from './native';
import { lend } from './buffers';

/** The addon's benchmark and test hooks (native/tools.cc). */
export const tools: NativeTools = native.tools;

export { invalidArgValue, systemError } from './errors';
export { defaultHugePage } from './mapping';

/**
 * The addon itself, below the library: for the benchmark that breaks the cost of a mapping
 * down call by call (bench/core.js). `lend` is how the library gets a buffer from it (pass
 * `undefined` for the Mapping).
 */
export const rawAddon = native;
export { lend };
