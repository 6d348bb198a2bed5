// Worker threads: the addon loads in each, maps and unmaps concurrently, runs finalizers
// on the worker's own thread, and a worker terminated with live mappings leaks nothing.
import { resolve } from 'node:path';
import { runChild } from './helpers';

test('four workers mapping at once; two terminated while holding live mappings; nothing leaked', () => {
  const child = runChild(
    `
    const { Worker } = require('worker_threads');
    const workerCode = \`
      const { parentPort, workerData } = require('worker_threads');
      const mman = require(workerData.lib);
      const turn = () => new Promise((r) => setImmediate(r));
      (async () => {
        let sum = 0;
        for (let i = 0; i < 3000; i++) {
          const m = i % 3 ? mman.mapAnonymous(mman.PAGE_SIZE, { shared: i % 2 === 0 }) : mman.mapFile(workerData.lib + '/index.js', { length: 16 });
          sum += m.bytes[0] & 1;
          if (i % 5) m.unmap(); // the rest are dropped for the GC
          if (i % 500 === 0) await turn();
        }
        // Dropped mappings are finalized on this thread, on later turns of its loop.
        for (let i = 0; i < 4; i++) { gc(); await turn(); }
        const held = [];
        for (let i = 0; i < 10; i++) { const m = mman.mapAnonymous(64 * 1024); m.bytes.fill(i); held.push(m); }
        parentPort.postMessage({ sum, held: held.length });
        if (workerData.linger) setInterval(() => held.length, 1000); // stay alive until terminated
      })();
    \`;
    const base = mman.mappingStats().regions;
    const start = (linger) => new Worker(workerCode, { eval: true, workerData: { lib: ${JSON.stringify(resolve(__dirname, '..', 'lib'))}, linger } });
    (async () => {
      const workers = [start(true), start(true), start(false), start(false)];
      const exited = workers.map((w) => new Promise((ok) => w.once('exit', ok)));
      const reports = await Promise.all(workers.map((w) => new Promise((ok, fail) => { w.once('message', ok); w.once('error', fail); })));
      const whileHeld = mman.mappingStats().regions - base;
      await Promise.all([workers[0].terminate(), workers[1].terminate()]);
      await Promise.all(exited);
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
      console.log(JSON.stringify({ reports, whileHeld, after: mman.mappingStats().regions - base }));
    })();
  `,
    [],
    ['--expose-gc'],
  ); // V8 flags are process-wide: workers get gc() too
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.reports).toHaveLength(4);
  for (const r of out.reports) expect(r.held).toBe(10);
  expect(out.whileHeld).toBeGreaterThanOrEqual(20); // at least the two lingering workers' mappings
  expect(out.after).toBe(0);
});

test('in workers: unmap() under a pending compression completes on the pages; a worker terminated with retired ranges leaves none', () => {
  const child = runChild(
    `
    const { Worker } = require('worker_threads');
    const workerCode = \`
      const { parentPort, workerData } = require('worker_threads');
      const mman = require(workerData.lib);
      const zlib = require('zlib');
      const crypto = require('crypto');
      const m = mman.mapAnonymous(4 << 20);
      crypto.randomFillSync(m.bytes);
      const held = Buffer.from(m.bytes);
      const fresh = [];
      // The view stays with zlib, whose next chunk comes after unmap() and the fresh fills.
      zlib.gzip(m.bytes, (err, out) => {
        const same = !err && zlib.gunzipSync(out).equals(held);
        parentPort.postMessage({ same, retired: mman.mappingStats().retiredRegions });
        if (workerData.linger) {
          // A view kept alive past unmap(): this worker is terminated while it pins the range.
          globalThis.keep = [mman.mapAnonymous(1 << 20)].map((k) => { const v = k.bytes; k.unmap(); return v; });
          setInterval(() => globalThis.keep.length, 1000);
        }
        for (const f of fresh) f.unmap();
      });
      m.unmap();
      for (let i = 0; i < 4; i++) { const f = mman.mapAnonymous(4 << 20); f.bytes.fill(0x53); fresh.push(f); }
    \`;
    const lib = ${JSON.stringify(resolve(__dirname, '..', 'lib'))};
    const start = (linger) => new Worker(workerCode, { eval: true, workerData: { lib, linger } });
    (async () => {
      const workers = [start(false), start(true)];
      const exited = workers.map((w) => new Promise((ok) => w.once('exit', ok)));
      const reports = await Promise.all(workers.map((w) => new Promise((ok, fail) => { w.once('message', ok); w.once('error', fail); })));
      await new Promise((r) => setTimeout(r, 50));
      const whileLingering = mman.mappingStats().retiredRegions;
      await workers[1].terminate();
      await Promise.all(exited);
      for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify({ reports, whileLingering, after: mman.mappingStats() }));
    })();
  `,
    [],
    ['--expose-gc'],
  );
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.reports.map((r: { same: boolean }) => r.same)).toEqual([true, true]);
  expect(out.whileLingering).toBeGreaterThanOrEqual(1); // the terminated worker's kept view
  expect(out.after).toEqual({ regions: 0, bytes: 0, retiredRegions: 0, retiredBytes: 0 });
});
