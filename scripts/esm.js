#!/usr/bin/env node
// Runs after tsc: writes lib/index.mjs, the ES module entry point, and its types lib/index.d.mts.
// The ESM entry re-exports the one CommonJS instance, so `import` and `require` share state.
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const lib = join(__dirname, '..', 'lib');
const compiled = readFileSync(join(lib, 'index.js'), 'utf8');
// tsc compiles each `export { x } from` in src/index.ts to Object.defineProperty(exports, "x", ...).
const names = [...compiled.matchAll(/Object\.defineProperty\(exports, "(\w+)"/g)]
  .map((match) => match[1])
  .filter((name) => name !== '__esModule');
if (names.length === 0) throw new Error('lib/index.js exports nothing: run tsc first');

writeFileSync(join(lib, 'index.mjs'), [
  '// ES module entry point: the named exports of the CommonJS build (scripts/esm.js writes this file).',
  "import mman from './index.js';",
  '',
  `export const {\n${names.map((name) => `  ${name},`).join('\n')}\n} = mman;`,
  'export default mman;',
  '',
].join('\n'));

writeFileSync(join(lib, 'index.d.mts'), [
  '// Types of the ES module entry point: the same declarations as the CommonJS build.',
  "import * as mman from './index.js';",
  "export * from './index.js';",
  'export default mman;',
  '',
].join('\n'));
