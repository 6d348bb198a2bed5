#!/usr/bin/env node
// `npm run build:addon`: builds the addon from the sources the package ships (native/) into
// build/Release/mman.node, which require('mman') then loads before any prebuild. It runs the
// node-gyp on PATH: inside `npm run`, npm's own (mman does not depend on node-gyp). The npm
// package leaves binding.gyp out (with one there and no install script, a package manager
// would run `node-gyp rebuild` on every install), so where it is missing this writes it for
// the build and takes it away after.
//   npm run build:addon            (needs a C++17 compiler, make and python3)
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const gypFile = join(root, 'binding.gyp');
const written = !existsSync(gypFile);
if (written) writeFileSync(gypFile, '{ "includes": ["native/mman.gypi"] }\n');
let status;
try {
  const run = spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
  if (run.error) {
    console.error(`node-gyp: ${run.error.message}. Run this as \`npm run build:addon\` (npm brings node-gyp), or install node-gyp`);
  }
  status = run.status ?? 1;
} finally {
  if (written) rmSync(gypFile, { force: true });
}
process.exit(status);
