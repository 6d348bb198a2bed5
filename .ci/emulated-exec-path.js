// Preloaded (NODE_OPTIONS=--require) in the emulated arm64 run: a child process started with
// process.execPath must go through the emulator too, which a bare arm64 binary would not.
'use strict';
if (process.env.MMAN_EXEC_PATH) process.execPath = process.env.MMAN_EXEC_PATH;
