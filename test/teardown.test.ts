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

// The jobs whose mapping of a file in the test's directory or of a memory file is in place by
// the time the worker says it started.
const MAPS_WHILE_PENDING: Record<string, RegExp> = { flush: /\/flush\.bin$/, waitAsync: /^\/memfd:/ };

interface Report {
  exitCode: number;
  // maps: the /proc/self/maps paths in the test's directory or of memory files.
  before: { fds: number; threads: number; stats: object; maps: string[] };
  after: { fds: number; threads: number; stats: object; maps: string[] };
  during: string[];
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
    // The kernel's own account: what the job mapped is no longer mapped.
    if (ending === 'terminate' && job in MAPS_WHILE_PENDING)
      expect(report.during).toContainEqual(expect.stringMatching(MAPS_WHILE_PENDING[job]));
    expect(report.after.maps).toEqual(report.before.maps);
    expect(report.alive).toBe(true);
  });
});

// Blocked in a synchronous call, the worker's thread sleeps in a futex and returns to
// JavaScript only when the call does: terminate() waited for ever until a worker's sleeps were
// cut into pieces that each ask whether it is being terminated (native/futex.h).
const BLOCKED = [
  'wait',
  'mutexLock',
  'ringRead',
  'ringReadMany',
  'ringWrite',
  'ringWriteMany',
  'waitSpin',
  'mutexSpin',
];

describe('a worker blocked in a synchronous call is terminated', () => {
  test.each(BLOCKED)('%s: terminate() ends it, and every descriptor, mapping and thread comes back', (job) => {
    const child = runFixture('teardown-child.js', job, ['terminate', dir], ['--expose-gc'], { timeout: 60_000 });
    expect(child.signal).toBeNull();
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const report = JSON.parse(child.stdout) as Report & { terminateMs: number; sleepers: number[] };
    expect(report.exitCode).toBe(1);
    // Within a piece (50 ms) and what a busy machine adds; never is what it was. A spin of
    // 2^31 - 1 rounds looks too: every 65,536 rounds (the whole spin took 2.6 to 6 s before).
    expect(report.terminateMs).toBeLessThan(job.endsWith('Spin') ? 1_500 : 20_000);
    expect(report.during).toContainEqual(expect.stringMatching(/^\/memfd:/));
    expect(report.after.fds).toBe(report.before.fds);
    expect(report.after.threads).toBe(report.before.threads);
    expect(report.after.stats).toEqual(report.before.stats);
    expect(report.after.maps).toEqual(report.before.maps);
    // wait() counted itself in the shared word as it slept, and took itself off as it gave up.
    if (job === 'wait') expect(report.sleepers).toEqual([1, 0]);
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
      expect(report.after.maps).toEqual(report.before.maps);
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

test.each(['sleep', 'lock'])(
  '%s: a reader terminated after its wake does not keep the message from the reader beside it',
  (variant) => {
    const child = runFixture('lost-wake.js', '10', [variant], [], { timeout: 120_000 });
    expect(child.signal).toBeNull();
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toMatchObject({ trials: 10, lostWakeups: 0 });
  },
);

// Node's process.exit() terminates every worker and waits for each thread to end.
describe('process.exit() on the main thread with a worker blocked in a synchronous call', () => {
  test.each(BLOCKED)('%s: the process ends at once', (job) => {
    const child = runFixture('teardown-child.js', 'exitingBlocked', [job, dir], [], { timeout: 20_000 });
    expect(child.signal).toBeNull(); // not killed by the timeout
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
  });
});
