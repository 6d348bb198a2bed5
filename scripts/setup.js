#!/usr/bin/env node
// Runs before `npm test` and `npm start`: on a fresh clone, installs the dependencies,
// which builds the addon (node-gyp) and the TypeScript (tsc, then the ESM entry); on a
// built tree, rebuilds only what is older than its sources, so child processes never run a
// stale lib/.
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
  // npm install runs the `install` (node-gyp) and `prepare` (tsc) scripts.
  run('npm install --no-audit --no-fund');
}
// In this repository the addon is always built from native/, never taken from prebuilds/
// (which `npm pack` leaves behind): a changed source tree is what the tests must run. A source
// file added or removed since the build was configured needs the build configured again.
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
if (!built('build/Release/mman.node') || !configured()) {
  run('npx node-gyp rebuild');
} else if (Math.max(newest('native'), mtime('binding.gyp')) > mtime('build/Release/mman.node')) {
  run('npx node-gyp build');
}
if (!built('lib/index.js') || !built('lib/cli/index.js') || newest('src') > mtime('lib/index.js')) run('npx tsc -p tsconfig.json');
if (!built('lib/index.mjs') || mtime('lib/index.js') > mtime('lib/index.mjs')) run('node scripts/esm.js');
