#!/usr/bin/env node
// Reads the ASan/LSan/UBSan logs of a sanitizer run (one file per process) and fails on
// any ASan error, any UBSan error, and any leak allocated by the addon's own code (the
// first frame after the allocator is in mman.node). Leaks Node itself leaves at exit are
// counted and shown as a total, not judged.
// The logs are unsymbolized (module+offset, see sanitize.sh); frames in mman.node are
// symbolized here, with addr2line, for the reports that are printed.
'use strict';
const { execFileSync } = require('node:child_process');
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

function symbolize(block) {
  const frames = [...block.matchAll(/\((\/[^()\s]*mman\.node)\+(0x[0-9a-f]+)\)/g)];
  if (frames.length === 0) return block;
  const byModule = new Map();
  for (const [, module, offset] of frames) byModule.set(module, [...(byModule.get(module) ?? []), offset]);
  for (const [module, offsets] of byModule) {
    let lines;
    try {
      lines = execFileSync('addr2line', ['-f', '-C', '-e', module, ...offsets], { encoding: 'utf8' }).split('\n');
    } catch {
      continue;  // no addr2line: the offsets stay as they are
    }
    offsets.forEach((offset, i) => {
      const where = `${lines[2 * i]} ${lines[2 * i + 1]}`;
      block = block.replaceAll(`(${module}+${offset})`, `(${module}+${offset}) ${where}`);
    });
  }
  return block;
}

const dir = process.argv[2];
let errors = 0;
let ourLeaks = 0;
let otherLeaks = 0;
for (const name of readdirSync(dir)) {
  const text = readFileSync(join(dir, name), 'utf8');
  for (const block of text.split(/\n(?==+\n==\d+==ERROR|Direct leak|Indirect leak)/)) {
    if (/ERROR: AddressSanitizer/.test(block) || /runtime error:/.test(block)) {
      errors++;
      console.error(`--- ${name}\n${symbolize(block).slice(0, 4000)}`);
    } else if (/^(Direct|Indirect) leak/.test(block)) {
      const frames = block.split('\n').filter((l) => /^\s+#\d+ /.test(l));
      const allocator = /(operator new|malloc|calloc|realloc|strdup|asan_|libasan)/;
      const first = frames.find((l) => !allocator.test(l)) ?? '';
      if (/mman\.node/.test(first)) {
        ourLeaks++;
        console.error(`--- ${name}\n${symbolize(block).slice(0, 4000)}`);
      } else {
        otherLeaks++;
      }
    }
  }
}
console.log(`sanitizers: ${errors} ASan/UBSan report(s), ${ourLeaks} leak(s) from the addon (${otherLeaks} from Node itself at exit, not judged)`);
process.exit(errors + ourLeaks === 0 ? 0 : 1);
