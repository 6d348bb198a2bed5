// Fuzz passes (fast-check) in child processes (test/fixtures/fuzz-child.js): arbitrary values
// for every argument of every public function, and arbitrary payloads beside a descriptor sent
// to SharedMemory.receive(). A failure prints the seed: FUZZ_SEED=<seed> replays it.
import { tempDir, runFixture } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

function fuzz(pass: string, runs: number): Record<string, unknown> {
  const child = runFixture('fuzz-child.js', pass, [String(runs), dir], ['--expose-gc'], { cwd: dir, timeout: 120_000 });
  // A crash (or the watchdog ending a call that never returned) is the first thing a fuzz pass
  // must not find; its stderr names the seed and the call.
  if (child.signal !== null) throw new Error(`the fuzz child died of ${child.signal}:\n${child.stderr}`);
  const report = JSON.parse(child.stdout);
  expect(report.failure).toBeUndefined();
  expect(child.status).toBe(0);
  return report;
}

test('every public function, 1,000 calls with arbitrary arguments: a result or a coded error, nothing left mapped', () => {
  const report = fuzz('args', 1000);
  expect(report.left).toBe(0);
  // The kernel's account agrees: no line of /proc/self/maps and no descriptor left naming a file
  // of the test's directory, a memory file or a /dev/shm segment.
  const kernel = report.kernel as { before: object; after: object };
  expect(kernel.after).toEqual(kernel.before);
  expect(report.calls).toBeGreaterThan(0); // some calls were valid and did their work
});

test('receive() under 300 arbitrary payloads: a name only for the very file, read-only as the descriptor is, nothing kept', () => {
  const { kernel, ...report } = fuzz('payloads', 300) as { kernel: { before: object; after: object } };
  expect(report).toEqual({ received: 300, leaked: 0 });
  expect(kernel.after).toEqual(kernel.before); // /proc/self/maps and /proc/self/fd, as above
});
