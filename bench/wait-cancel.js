#!/usr/bin/env node
// Cancelling many pending waitAsync() calls: 20,000 waits on distinct words of one segment,
// each with its own AbortController, then every one aborted in a loop. Prints how long
// starting, aborting and settling took. `node bench/wait-cancel.js [count]`
'use strict';
const { join } = require('node:path');
const { SharedMemory, waitAsync } = require(join(__dirname, '..', 'lib'));
const { tools } = require(join(__dirname, '..', 'lib', 'internal'));

const count = Number(process.argv[2] ?? 20_000);
const shm = SharedMemory.create(1 << 20);
const words = new Int32Array(shm.map().buffer);
const controllers = [];
const settled = [];
let t = process.hrtime.bigint();
const lap = () => {
  const now = process.hrtime.bigint();
  const ms = Number(now - t) / 1e6;
  t = now;
  return Math.round(ms);
};
for (let i = 0; i < count; i++) {
  const controller = new AbortController();
  controllers.push(controller);
  settled.push(waitAsync(words, i % words.length, 0, undefined, { signal: controller.signal }).catch(() => {}));
}
const startMs = lap();
for (const controller of controllers) controller.abort();
const abortMs = lap();
Promise.all(settled).then(() => {
  const settleMs = lap();
  console.log(JSON.stringify({ count, startMs, abortMs, settleMs, threads: tools.waitAsyncStats().threads }));
  shm.close();
});
