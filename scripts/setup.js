#!/usr/bin/env node
// Runs before `npm test` and `npm start`: on a fresh clone, installs the dependencies,
// which builds the addon (node-gyp) and the TypeScript (tsc, then the ESM entry); on a built
// tree, does nothing.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { execSync } = require('node:child_process');

const root = join(__dirname, '..');
const built = (p) => existsSync(join(root, p));
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' });

if (!built('node_modules/node-addon-api') || !built('node_modules/typescript')) {
  // npm install runs the `install` (node-gyp) and `prepare` (tsc) scripts.
  run('npm install --no-audit --no-fund');
}
const prebuilt = built(`prebuilds/${process.platform}-${process.arch}/mman.node`);
if (!built('build/Release/mman.node') && !prebuilt) run('npx node-gyp rebuild');
if (!built('lib/index.js')) run('npx tsc -p tsconfig.json');
if (!built('lib/index.mjs')) run('node scripts/esm.js');
