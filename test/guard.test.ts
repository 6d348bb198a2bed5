// The truncation guard: a file truncated under a guarded mapping reads as zeros instead of
// killing the process with SIGBUS, and the mapping says so.
import { fileWith, LIB, runChild, tempDir } from './helpers';
import { PAGE_SIZE } from '../src';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

test('without the guard, reading a page past the end of a truncated file kills the process with SIGBUS', () => {
  const path = fileWith(dir, 'unguarded.bin', new Uint8Array(4 * PAGE_SIZE).fill(7));
  const child = runChild(
    `
    const m = mman.mapFile(args[0]);
    const v = m.bytes;
    process.stdout.write('before ' + v[3 * mman.PAGE_SIZE] + '\\n');
    require('fs').truncateSync(args[0], mman.PAGE_SIZE);
    process.stdout.write('still mapped ' + v[0] + '\\n');
    void v[3 * mman.PAGE_SIZE];
    process.stdout.write('survived\\n');
  `,
    [path],
  );
  expect(child.stdout).toBe('before 7\nstill mapped 7\n');
  expect(child.signal).toBe('SIGBUS');
});

test.each(['r', 'r+', 'copy'])(
  'with guard: true (mode %s), the process lives, reads give zeros, the next call throws',
  (mode) => {
    const path = fileWith(dir, 'guarded.bin', new Uint8Array(4 * PAGE_SIZE).fill(7));
    const child = runChild(
      `
    const m = mman.mapFile(args[0], { guard: true, mode: args[1] });
    const v = m.bytes;
    const before = { value: v[3 * mman.PAGE_SIZE], truncated: m.truncated };
    require('fs').truncateSync(args[0], mman.PAGE_SIZE);
    const kept = v[5];
    const lost = [v[2 * mman.PAGE_SIZE], v[3 * mman.PAGE_SIZE + 100], v[4 * mman.PAGE_SIZE - 1]];
    let error;
    try { m.advise(mman.Advice.Normal); } catch (e) { error = { code: e.code, message: e.message }; }
    let bytesError;
    try { m.bytes; } catch (e) { bytesError = e.code; }
    m.unmap();
    console.log(JSON.stringify({ before, kept, lost, truncated: m.truncated, pages: m.truncatedPages, error, bytesError }));
  `,
      [path, mode],
    );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const out = JSON.parse(child.stdout);
    expect(out.before).toEqual({ value: 7, truncated: false });
    expect(out.kept).toBe(7);
    expect(out.lost).toEqual([0, 0, 0]);
    expect(out.error.code).toBe('ERR_MAPPING_TRUNCATED');
    expect(out.error.message).toMatch(/truncated: 2 page\(s\)/);
    expect(out.bytesError).toBe('ERR_MAPPING_TRUNCATED');
    expect(out.truncated).toBe(false); // unmapped: nothing to report
  },
);

test('the guard covers only guarded mappings: an unguarded one beside it still dies with SIGBUS', () => {
  const a = fileWith(dir, 'a.bin', new Uint8Array(2 * PAGE_SIZE).fill(1));
  const b = fileWith(dir, 'b.bin', new Uint8Array(2 * PAGE_SIZE).fill(2));
  const child = runChild(
    `
    const fs = require('fs');
    const guarded = mman.mapFile(args[0], { guard: true });
    const plain = mman.mapFile(args[1]);
    fs.truncateSync(args[0], 0);
    fs.truncateSync(args[1], 0);
    process.stdout.write('guarded ' + guarded.bytes[mman.PAGE_SIZE] + ' ' + guarded.truncated + '\\n');
    process.stdout.write('plain\\n');
    void plain.bytes[mman.PAGE_SIZE];
    process.stdout.write('survived\\n');
  `,
    [a, b],
  );
  expect(child.stdout).toBe('guarded 0 true\nplain\n');
  expect(child.signal).toBe('SIGBUS');
});

test('the guard follows resize(); a mapping made after unmap() is unguarded and dies of SIGBUS', () => {
  const path = fileWith(dir, 'moving.bin', new Uint8Array(8 * PAGE_SIZE).fill(3));
  const child = runChild(
    `
    const fs = require('fs');
    const m = mman.mapFile(args[0], { guard: true, length: mman.PAGE_SIZE });
    m.resize(8 * mman.PAGE_SIZE);
    const v = m.bytes;
    fs.truncateSync(args[0], mman.PAGE_SIZE);
    const zero = v[7 * mman.PAGE_SIZE];
    const pages = m.truncatedPages;
    m.unmap();
    process.stdout.write(JSON.stringify({ zero, pages }) + '\\n');
    const again = mman.mapFile(args[0], { length: mman.PAGE_SIZE });
    again.resize(8 * mman.PAGE_SIZE);
    void again.bytes[7 * mman.PAGE_SIZE];
    process.stdout.write('survived\\n');
  `,
    [path],
  );
  expect(JSON.parse(child.stdout.split('\n')[0])).toEqual({ zero: 0, pages: 1 });
  expect(child.signal).toBe('SIGBUS');
});

test('the guard is process-wide: a worker thread reading a truncated guarded mapping lives on', () => {
  const path = fileWith(dir, 'worker.bin', new Uint8Array(2 * PAGE_SIZE).fill(5));
  const child = runChild(
    `
    const { Worker } = require('worker_threads');
    const w = new Worker(\`
      const { parentPort, workerData } = require('worker_threads');
      const mman = require(workerData.lib);
      const m = mman.mapFile(workerData.path, { guard: true });
      const v = m.bytes;
      parentPort.once('message', () => {
        parentPort.postMessage({ value: v[mman.PAGE_SIZE], truncated: m.truncated });
      });
      parentPort.postMessage('mapped');
    \`, { eval: true, workerData: { lib: ${JSON.stringify(LIB)}, path: args[0] } });
    w.on('message', (msg) => {
      if (msg === 'mapped') { require('fs').truncateSync(args[0], mman.PAGE_SIZE); w.postMessage('read'); return; }
      console.log(JSON.stringify(msg));
      w.terminate();
    });
  `,
    [path],
  );
  expect(child.stderr).toBe('');
  expect(JSON.parse(child.stdout)).toEqual({ value: 0, truncated: true });
});
