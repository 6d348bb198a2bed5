// Page-fault costs: what the first touch of a page costs for three kinds of mapping, with
// the kernel's own fault counts beside it (`npx mman bench faults` measures every kind).
//   node examples/first-touch.js
'use strict';
const { mapAnonymous, PAGE_SIZE, Advice } = require('mman');

const SIZE = 64 * 1024 * 1024;
const pages = SIZE / PAGE_SIZE;

function firstTouch(label, options, prepare) {
  const map = mapAnonymous(SIZE, options);
  const bytes = map.bytes;
  if (prepare) prepare(map);
  const before = process.resourceUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < SIZE; i += PAGE_SIZE) bytes[i] = 1;
  const ns = Number(process.hrtime.bigint() - start);
  const after = process.resourceUsage();
  const faults = after.minorPageFault - before.minorPageFault;
  map.unmap();
  console.log(`${label.padEnd(24)} ${(ns / pages).toFixed(0).padStart(6)} ns/page  ${(faults / pages).toFixed(2)} minor faults/page`);
}

// Warm up: the first touches of fresh guest memory in a VM cost more than later ones.
firstTouch('warm-up', {});
firstTouch('private anonymous', {});
firstTouch('shared anonymous', { shared: true });
firstTouch('populated (MAP_POPULATE)', { populate: true });
firstTouch('MADV_POPULATE_WRITE', {}, (map) => map.advise(Advice.PopulateWrite));
