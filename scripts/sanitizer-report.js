#!/usr/bin/env node
// Reads the ASan/LSan/UBSan logs of a sanitizer run (one file per process) and fails on
// any ASan error, any UBSan error, and any leak allocated by the addon's own code (the
// first frame after the allocator is in mman.node). Leaks Node itself leaves at exit are
// counted and shown as a total, not judged.
'use strict';
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.argv[2];
let errors = 0;
let ourLeaks = 0;
let otherLeaks = 0;
for (const name of readdirSync(dir)) {
  const text = readFileSync(join(dir, name), 'utf8');
  for (const block of text.split(/\n(?==+\n==\d+==ERROR|Direct leak|Indirect leak)/)) {
    if (/ERROR: AddressSanitizer/.test(block) || /runtime error:/.test(block)) {
      errors++;
      console.error(`--- ${name}\n${block.slice(0, 4000)}`);
    } else if (/^(Direct|Indirect) leak/.test(block)) {
      const frames = block.split('\n').filter((l) => /^\s+#\d+ /.test(l));
      const allocator = /(operator new|malloc|calloc|realloc|strdup|asan_|libasan)/;
      const first = frames.find((l) => !allocator.test(l)) ?? '';
      if (/mman\.node/.test(first)) {
        ourLeaks++;
        console.error(`--- ${name}\n${block.slice(0, 4000)}`);
      } else {
        otherLeaks++;
      }
    }
  }
}
console.log(`sanitizers: ${errors} ASan/UBSan report(s), ${ourLeaks} leak(s) from the addon (${otherLeaks} from Node itself at exit, not judged)`);
process.exit(errors + ourLeaks === 0 ? 0 : 1);
