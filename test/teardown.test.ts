// A thread's environment going away with addon work pending: a worker terminated, or calling
// process.exit() itself, or the process exiting. Nothing may abort or hang the process, and
// every descriptor, mapping and thread the work held is given back (jobs.h, docs/safety.md).
import { runFixture, tempDir } from './helpers';

const JOBS = ['populate', 'flush', 'mapFileAsync', 'receive', 'receiveForever', 'sendToFullSocket', 'waitAsync'];
const LOOPS = ['mapLoop', 'flushLoop']; // the addon called without pause: termination lands inside a call

// The jobs' files go in a directory of the test's, removed after each test: a terminated worker
// cleans up nothing of its own.
let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

interface Report {
  exitCode: number;
  before: { fds: number; threads: number; stats: object };
  after: { fds: number; threads: number; stats: object };
  opened: string[];
  alive: boolean;
}

describe.each(['terminate', 'exit'])('a worker ends (%s) with a job pending', (ending) => {
  test.each(JOBS)('%s: the process lives on, and gets back every descriptor, mapping and thread', (job) => {
    const child = runFixture('teardown-child.js', job, [ending, dir], ['--expose-gc'], { timeout: 60_000 });
    expect(child.signal).toBeNull();
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const report = JSON.parse(child.stdout) as Report;
    expect(report.exitCode).toBe(ending === 'terminate' ? 1 : 0);
    expect(report.opened).toEqual([]);
    expect(report.after.fds).toBe(report.before.fds);
    expect(report.after.threads).toBe(report.before.threads);
    expect(report.after.stats).toEqual(report.before.stats);
    expect(report.alive).toBe(true);
  });
});

describe('a worker calling into the addon without pause is terminated, ten times over', () => {
  test.each(LOOPS)('%s: the process lives on, and gets back every descriptor and mapping', (job) => {
    for (let round = 0; round < 10; round++) {
      const child = runFixture('teardown-child.js', job, ['terminate', dir], ['--expose-gc'], { timeout: 60_000 });
      expect(child.signal).toBeNull();
      expect(child.stderr).toBe('');
      expect(child.status).toBe(0);
      const report = JSON.parse(child.stdout) as Report;
      expect(report.opened).toEqual([]);
      expect(report.after.stats).toEqual(report.before.stats);
    }
  });
});

describe('process.exit() on the main thread with a job pending', () => {
  test.each(JOBS)('%s: the process ends at once', (job) => {
    const child = runFixture('teardown-child.js', 'exiting', [job, dir], [], { timeout: 20_000 });
    expect(child.signal).toBeNull(); // not killed by the timeout
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
  });
});
