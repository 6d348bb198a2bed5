// Jest's globalSetup: before any test runs, the addon and lib/ are rebuilt from any source
// newer than them (scripts/setup.js), so that `npx jest test/x.test.ts` never runs a stale
// build: the tests load src/ through ts-jest, their child programs lib/ and the addon, and all
// three must be the same sources. A run told to test one given binary (MMAN_ADDON, the
// sanitizer build; PREBUILDS_ONLY, the prebuild under qemu) builds nothing.
'use strict';
const { execFileSync } = require('node:child_process');
const { join } = require('node:path');

module.exports = function fresh() {
  if (process.env.MMAN_ADDON || process.env.PREBUILDS_ONLY) return;
  execFileSync(process.execPath, [join(__dirname, '../../scripts/setup.js')], { stdio: 'inherit' });
};
