#!/usr/bin/env node
// Soak: map / touch / unmap in a loop (private and shared anonymous memory, a shared file
// mapping, a guarded one), sampling RSS and the number of /proc/self/maps lines along the
// way. Both must stay flat: any leak of a mapping, a buffer or a native record shows here.
//   node --expose-gc bench/soak.js [--cycles 1000000] [--samples 20] [--json]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { mapAnonymous, mapFile, mappingStats, PAGE_SIZE } = require('mman');
const { tools } = require('../lib/internal');

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '1000000' },
    samples: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
  },
});
const cycles = Number(values.cycles);
const samples = Number(values.samples);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mman-soak-'));
const file = path.join(dir, 'soak.bin');
fs.writeFileSync(file, Buffer.alloc(4 * PAGE_SIZE, 1));

const status = () => fs.readFileSync('/proc/self/status', 'latin1');
const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status())[1]);

const kinds = [
  () => mapAnonymous(PAGE_SIZE),
  () => mapAnonymous(2 * PAGE_SIZE, { shared: true }),
  () => mapFile(file, { mode: 'r+' }),
  () => mapFile(file, { guard: true }),
];

const rows = [];
let checksum = 0;
const started = process.hrtime.bigint();
const turn = () => new Promise((resolve) => setImmediate(resolve));

// One cycle, in a function of its own: its view is out of reach once it returns.
function cycle(i) {
  const m = kinds[i & 3]();
  const bytes = m.bytes;
  if ((i & 3) !== 3) bytes[i & 0xff] = i & 0xff;  // the guarded mapping is read-only
  checksum += bytes[0];
  m.unmap();
}

(async () => {
for (let i = 0; i < cycles; i++) {
  // A service yields to its event loop; finalizers of unmapped buffers run on those turns.
  if ((i & 1023) === 1023) await turn();
  cycle(i);
  if ((i + 1) % Math.max(1, Math.floor(cycles / samples)) === 0) {
    // With --expose-gc, sample after a full collection: what is left is what is retained.
    if (typeof gc === 'function') { gc(); await turn(); gc(); }
    const mmanRegions = mappingStats().regions;  // first: it releases what the GC found unreachable
    const heap = process.memoryUsage();
    const rssAnonKiB = kb('RssAnon');
    const maps = fs.readFileSync('/proc/self/maps', 'latin1');
    rows.push({
      v8HeapKiB: Math.round(heap.heapTotal / 1024),
      // Bytes malloc has out (glibc's mallinfo2): native state, ours and Node's.
      // (a source build's test hook; a prebuild has none, and this column is then -1)
      nativeKiB: tools.mallocInUse ? Math.round(tools.mallocInUse() / 1024) : -1,
      fileMappings: maps.split('\n').filter((line) => line.endsWith(file)).length,
      cycles: i + 1,
      rssKiB: kb('VmRSS'),
      rssAnonKiB,
      mapsLines: maps.split('\n').length - 1,
      mmanRegions,
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
    });
  }
}
fs.rmSync(dir, { recursive: true, force: true });

// Flat: after the first fifth (the JIT settles, V8 sizes its heap), native memory stops
// growing, and no mapping of ours is left in /proc/self/maps. V8 growing its own heap in
// 256 KiB chunks shows in RSS and in the maps line count, and is reported, not judged.
const settled = rows.slice(Math.floor(rows.length / 5));
const first = settled[0];
const last = settled[settled.length - 1];
const result = {
  cycles,
  usPerCycle: (last.seconds / cycles) * 1e6,
  rssGrowthKiB: last.rssKiB - first.rssKiB,
  nativeGrowthKiB: last.nativeKiB - first.nativeKiB,
  v8HeapGrowthKiB: last.v8HeapKiB - first.v8HeapKiB,
  mapsGrowth: last.mapsLines - first.mapsLines,
  fileMappingsLeft: Math.max(...rows.map((r) => r.fileMappings)),
  mmanRegionsAtEnd: last.mmanRegions,
  checksum,
  rows,
};
if (values.json) {
  console.log(JSON.stringify(result));
} else {
  const columns = [['cycles', 'cycles'], ['RSS KiB', 'rssKiB'], ['RssAnon', 'rssAnonKiB'], ['V8 heap', 'v8HeapKiB'],
    ['native', 'nativeKiB'], ['maps', 'mapsLines'], ['file maps', 'fileMappings'], ['regions', 'mmanRegions'], ['s', 'seconds']];
  console.log(columns.map(([title]) => title.padStart(10)).join(' '));
  for (const r of rows) {
    console.log(columns.map(([, key]) => (key === 'seconds' ? r[key].toFixed(2) : String(r[key])).padStart(10)).join(' '));
  }
  console.log(`\n${cycles} cycles, ${result.usPerCycle.toFixed(2)} us/cycle. After warm-up: native memory ${result.nativeGrowthKiB >= 0 ? '+' : ''}${result.nativeGrowthKiB} KiB, ` +
    `V8 heap ${result.v8HeapGrowthKiB >= 0 ? '+' : ''}${result.v8HeapGrowthKiB} KiB, RSS ${result.rssGrowthKiB >= 0 ? '+' : ''}${result.rssGrowthKiB} KiB, /proc/self/maps ${result.mapsGrowth >= 0 ? '+' : ''}${result.mapsGrowth} lines; ` +
    `${result.fileMappingsLeft} mappings of the file and ${result.mmanRegionsAtEnd} mman regions left`);
}
})();
