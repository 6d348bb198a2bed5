#!/usr/bin/env node
// What unmap() costs now that a range waits for its buffers to be collected: a one-page
// map + .bytes + unmap() loop timed alone, and with the event-loop turns after it, on which
// Node runs the finalizers the loop left (so the deferred work is counted too), beside the
// same mmap + munmap loop in C inside this process. Medians of --rounds rounds.
//   node bench/unmap-cost.js [--cycles 200000] [--rounds 7] [--json]
'use strict';
const { parseArgs } = require('node:util');
const { mmap, Prot, MapFlags, PAGE_SIZE } = require('mman');
const { tools } = require('../lib/internal');
const { median } = require('../lib/cli/measure');

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
  },
});
const cycles = Number(values.cycles);
const rounds = Number(values.rounds);
const prot = Prot.Read | Prot.Write;
const flags = MapFlags.Private | MapFlags.Anonymous;
const turn = () => new Promise((resolve) => setImmediate(resolve));

const loops = {
  'mmap() + unmap() (no buffer: munmap at once)': () => mmap(PAGE_SIZE, prot, flags).unmap(),
  'mmap() + .bytes + unmap()': () => {
    const m = mmap(PAGE_SIZE, prot, flags);
    void m.bytes;
    m.unmap();
  },
  'mmap() + .bytes + unmap({ detachViews: true })': () => {
    const m = mmap(PAGE_SIZE, prot, flags);
    void m.bytes;
    m.unmap({ detachViews: true });
  },
};

async function round(body) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < cycles; i++) body();
  const looped = process.hrtime.bigint();
  for (let i = 0; i < 3; i++) await turn();
  const settled = process.hrtime.bigint();
  return [Number(looped - start) / cycles, Number(settled - start) / cycles];
}

(async () => {
  for (const body of Object.values(loops)) await round(body);  // warm up
  const c = [];
  const times = Object.fromEntries(Object.keys(loops).map((name) => [name, { loop: [], total: [] }]));
  for (let r = 0; r < rounds; r++) {
    c.push(tools.mapUnmapLoop(cycles));
    for (const [name, body] of Object.entries(loops)) {
      const [loop, total] = await round(body);
      times[name].loop.push(loop);
      times[name].total.push(total);
    }
  }
  const base = median(c);
  const rows = [{ name: 'C mmap + munmap loop in this process', loop: base, total: base }];
  for (const [name, t] of Object.entries(times)) rows.push({ name, loop: median(t.loop), total: median(t.total) });
  if (values.json) {
    console.log(JSON.stringify(rows));
    return;
  }
  console.log('| one page, per cycle | loop, ns | × C | loop + the finalizer turns after it, ns | × C |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.loop.toFixed(0)} | ${(r.loop / base).toFixed(2)} | ${r.total.toFixed(0)} | ${(r.total / base).toFixed(2)} |`);
  }
})();
