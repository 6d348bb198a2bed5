#!/usr/bin/env node
// Runs before `npm test` and `npm start`: on a fresh clone, installs the dependencies, then
// builds the addon (node-gyp) and the TypeScript (tsc, then the ESM entry); on a built tree,
// rebuilds only what is older than its sources, so child processes never run a stale lib/.
'use strict';
const { existsSync, readFileSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');
const { execSync } = require('node:child_process');

const root = join(__dirname, '..');
const built = (p) => existsSync(join(root, p));
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });
const mtime = (p) => statSync(join(root, p)).mtimeMs;
const newest = (dir) => Math.max(0, ...readdirSync(join(root, dir), { recursive: true })
  .map((f) => join(dir, String(f)))
  .filter((f) => statSync(join(root, f)).isFile())
  .map(mtime));

if (!built('node_modules/node-addon-api') || !built('node_modules/typescript')) {
  // The package has no install script: what to build is decided below.
  run('npm install --no-audit --no-fund');
}
// The addon the tests load: build/Release if there is one, else the prebuild for this machine
// (which scripts/prebuilds.sh leaves, and CI tests on purpose). Either is rebuilt from native/
// when a source or build file is newer than it: a changed source tree is always what runs. A
// source file added or removed since the build was configured needs it configured again.
const sources = readdirSync(join(root, 'native')).filter((f) => f.endsWith('.cc'));
const configured = () => {
  try {
    const makefile = readFileSync(join(root, 'build/mman.target.mk'), 'utf8');
    const listed = makefile.match(/native\/[\w.-]+\.o\b/g) ?? [];
    return new Set(listed).size === sources.length && sources.every((f) => makefile.includes(`native/${f.replace(/\.cc$/, '.o')}`));
  } catch {
    return false;
  }
};
// The addon's sources: native/*.cc and *.h (native/loops/ holds the benchmarks' C loops, which
// are compiled at run time, not into the addon).
const addonSources = readdirSync(join(root, 'native')).filter((f) => /\.(cc|h)$/.test(f)).map((f) => mtime(`native/${f}`));
const sourcesChanged = Math.max(...addonSources, mtime('binding.gyp'), mtime('native/mman.gypi'));
const prebuild = `prebuilds/${process.platform}-${process.arch}/mman.glibc.node`;
if (!built('build/Release/mman.node')) {
  if (!built(prebuild) || sourcesChanged > mtime(prebuild)) run('npx node-gyp rebuild');
} else if (!configured()) {
  run('npx node-gyp rebuild');
} else if (sourcesChanged > mtime('build/Release/mman.node')) {
  run('npx node-gyp build');
}
if (!built('lib/index.js') || !built('lib/cli/index.js') || newest('src') > mtime('lib/index.js')) run('npx tsc -p tsconfig.json');
if (!built('lib/index.mjs') || mtime('lib/index.js') > mtime('lib/index.mjs')) run('node scripts/esm.js');
