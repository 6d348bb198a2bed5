#!/usr/bin/env node
// unmap() in a loop that never yields. The pages of an unmapped mapping go back to the
// kernel only once the collector has found its buffers unreachable (docs/ARCHITECTURE.md),
// so here release leans on V8 alone: this shows how far ranges pile up meanwhile
// (/proc/self/maps lines, RSS), how many collections it took, and the time per cycle.
//   node bench/unmap-loop.js [--cycles 100000] [--json]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { constants } = require('node:perf_hooks'); // PerformanceObserver is a global
const { parseArgs } = require('node:util');
const { mapAnonymous, mapFile, mappingStats, PAGE_SIZE } = require('mman');

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '100000' },
    json: { type: 'boolean', default: false },
  },
});
const cycles = Number(values.cycles);

const lines = () => fs.readFileSync('/proc/self/maps', 'latin1').split('\n').length;
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'latin1'))[1]) * 1024;
const turn = () => new Promise((resolve) => setImmediate(resolve));

const gcs = { minor: 0, major: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) gcs.minor++;
    else gcs.major++;
  }
}).observe({ entryTypes: ['gc'] });

// Each case: one cycle of the loop, how many cycles, and how often to sample.
function cases(file) {
  return [
    {
      name: 'mapFile(one page) + .bytes[0] + unmap()',
      cycles,
      every: 100,
      cycle: () => {
        const m = mapFile(file);
        const first = m.bytes[0];
        m.unmap();
        return first;
      },
    },
    {
      name: 'mapAnonymous(1 MiB) + fill + unmap()',
      cycles: Math.max(10, Math.floor(cycles / 50)),
      every: 10,
      cycle: (i) => {
        const m = mapAnonymous(1 << 20);
        m.bytes.fill(i & 0xff);
        m.unmap();
        return 0;
      },
    },
  ];
}

async function measure(c) {
  for (let i = 0; i < 3; i++) { if (typeof gc === 'function') gc(); await turn(); }
  mappingStats();
  const lines0 = lines();
  const rss0 = rss();
  gcs.minor = 0;
  gcs.major = 0;
  let maxLines = 0;
  let maxRss = 0;
  let timed = 0n;
  let sum = 0;
  for (let i = 0; i < c.cycles; i += c.every) {
    const start = process.hrtime.bigint();
    for (let j = i; j < i + c.every && j < c.cycles; j++) sum += c.cycle(j);
    timed += process.hrtime.bigint() - start;
    maxLines = Math.max(maxLines, lines() - lines0);  // sampling is not timed
    maxRss = Math.max(maxRss, rss() - rss0);
  }
  await new Promise((resolve) => setTimeout(resolve, 50));  // gc entries arrive on later turns
  return {
    name: c.name,
    cycles: c.cycles,
    usPerCycle: Number(timed) / c.cycles / 1000,
    maxMapsLinesGrowth: maxLines,
    maxRssGrowthMiB: maxRss / 2 ** 20,
    minorGCs: gcs.minor,
    majorGCs: gcs.major,
    retiredAtEnd: mappingStats().retiredRegions,
    checksum: sum,
  };
}

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mman-unmap-loop-'));
  const file = path.join(dir, 'page.bin');
  fs.writeFileSync(file, Buffer.alloc(PAGE_SIZE, 1));
  const results = [];
  try {
    for (const c of cases(file)) results.push(await measure(c));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) {
    console.log(JSON.stringify(results));
    return;
  }
  console.log('| loop (never yields) | cycles | µs/cycle | peak growth of /proc/self/maps, lines | peak RSS growth, MiB | GCs (minor/major) |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.name} | ${r.cycles} | ${r.usPerCycle.toFixed(2)} | ${r.maxMapsLinesGrowth} | ${r.maxRssGrowthMiB.toFixed(1)} | ${r.minorGCs}/${r.majorGCs} |`);
  }
})();
