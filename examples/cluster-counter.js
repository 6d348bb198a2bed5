// node:cluster workers sharing one segment: they wait for each other, each increments a shared
// counter under a Mutex, then says it is done through a word the primary waits on. shareWithCluster() hands the
// segment to every cluster.fork(env); SharedMemory.inherited() takes it in a worker.
//
//   node examples/cluster-counter.js
'use strict';
const cluster = require('node:cluster');
const { Mutex, SharedMemory, notify, shareWithCluster, wait, waitAsync } = require('mman');

const WORKERS = 4;
const INCREMENTS = 1000000;
const LOCK = 0;     // the Mutex's word
const COUNTER = 1;  // written under the lock only: a plain read and write, no atomics
const READY = 2;    // how many workers have started: they begin together, and contend
const DONE = 3;     // how many workers have finished, for the primary's wait

if (cluster.isPrimary) {
  const shm = SharedMemory.create(4096);
  const words = new Int32Array(shm.map().buffer);
  const { env } = shareWithCluster([shm]);  // setupPrimary: the fd goes in every worker's stdio
  for (let i = 0; i < WORKERS; i++) cluster.fork(env);  // env: MMAN_SHARED, which names it

  (async () => {
    // Sleep until every worker has reported; a notify before the wait is not missed, since
    // the wait is for a change from the value last seen.
    for (let done; (done = Atomics.load(words, DONE)) < WORKERS;) await waitAsync(words, DONE, done);
    const total = words[COUNTER];
    console.log(`${WORKERS} workers x ${INCREMENTS} increments under one Mutex: counter = ${total}`);
    if (total !== WORKERS * INCREMENTS) {
      console.error(`expected ${WORKERS * INCREMENTS}`);
      process.exitCode = 1;
    }
    cluster.disconnect();
    shm.close();
  })();
} else {
  const [shm] = SharedMemory.inherited();  // the primary's segment, in the order it was shared
  const words = new Int32Array(shm.map().buffer);
  const mutex = new Mutex(words, LOCK);
  Atomics.add(words, READY, 1);
  notify(words, READY);
  for (let ready; (ready = Atomics.load(words, READY)) < WORKERS;) wait(words, READY, ready);
  for (let i = 0; i < INCREMENTS; i++) {
    mutex.lock();
    words[COUNTER] = words[COUNTER] + 1;
    mutex.unlock();
  }
  Atomics.add(words, DONE, 1);
  notify(words, DONE);  // wakes the primary's waitAsync
}
