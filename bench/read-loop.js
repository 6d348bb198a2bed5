#!/usr/bin/env node
// The read loop of `mman bench faults` (one byte per page, unrolled by four) run again and
// again over one file mapping that is already faulted in: no faults, no fresh mapping, the
// same pages for both. What is left is the loop itself, bound by cache and TLB misses:
// the JavaScript loop (as bench faults runs it) against the C loop (native touchPages).
//   node bench/read-loop.js [--size 256M] [--rounds 15]
'use strict';
const os = require('node:os');
const { parseArgs } = require('node:util');
const { mapFile, PAGE_SIZE } = require('mman');
const { tools } = require('../lib/internal');
const { createScratchFile, median, parseSize, readEveryPage } = require('../lib/cli/measure');  // the loop bench faults runs

const { values } = parseArgs({
  options: { size: { type: 'string', default: '256M' }, rounds: { type: 'string', default: '15' } },
});
const size = parseSize(values.size);
const rounds = Number(values.rounds);

// Let V8 optimise the loop first, as bench faults does, so that both loops are compiled code.
const warm = new Uint8Array(64 * PAGE_SIZE);
for (let i = 0; i < 2000; i++) readEveryPage(warm, PAGE_SIZE);

const scratch = createScratchFile(size);
const mapping = mapFile(scratch.path, { mode: 'r' });
try {
  const pages = mapping.length / PAGE_SIZE;
  const bytes = mapping.bytes;
  let sink = readEveryPage(bytes, PAGE_SIZE);  // the faults, once, untimed
  tools.touchPages(mapping.buffer, PAGE_SIZE, false);
  const js = [];
  const c = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    sink += readEveryPage(bytes, PAGE_SIZE);
    js.push(Number(process.hrtime.bigint() - t0) / pages);
    c.push(tools.touchPages(mapping.buffer, PAGE_SIZE, false) / pages);
  }
  const ratios = js.map((x, i) => x / c[i]);
  console.log(`machine: nproc ${os.availableParallelism()}, ${os.cpus()[0].model}, Linux ${os.release()}, Node ${process.version}`);
  console.log(`${pages} pages, ${rounds} rounds, re-reading one mapping (${sink & 1 ? 'odd' : 'even'} sum)`);
  console.log(`JS loop: median ${median(js).toFixed(1)} ns/page (min ${Math.min(...js).toFixed(1)}, max ${Math.max(...js).toFixed(1)})`);
  console.log(`C loop:  median ${median(c).toFixed(1)} ns/page (min ${Math.min(...c).toFixed(1)}, max ${Math.max(...c).toFixed(1)})`);
  console.log(`JS/C: median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)})`);
} finally {
  mapping.unmap();
  scratch.remove();
}
