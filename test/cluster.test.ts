// Segments handed to node:cluster workers with shareWithCluster(): real cluster primaries (each
// in a child process of its own, test/fixtures/cluster-primary.js) forking real workers.
import cluster from 'node:cluster';

import { SharedMemory, shareWithCluster } from '../src';
import { runFixture } from './helpers';

// Runs a primary in `mode`, and returns the JSON line it printed.
function primary(mode: string, args: string[] = []): Record<string, unknown> {
  const run = runFixture('cluster-primary.js', mode, args, [], { timeout: 60_000 });
  if (run.status !== 0) throw new Error(`the primary failed (${run.status ?? run.signal}): ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

test("the segment reaches every worker; each sees what the primary and the others wrote; none leaks to a worker's child", () => {
  const workers = 4;
  const report = primary('reach', [String(workers)]);
  // fork()'s list, and the descriptor appended after 'ipc' ([0, 1, 2, 'ipc', fd]).
  expect(report.env).toEqual({ MMAN_SHARED: '[{"fd":4,"size":4096}]' });
  expect(report.stdio).toBe(5);
  const reports = report.reports as Record<string, Record<string, unknown>>;
  expect(Object.keys(reports).sort()).toEqual(['1', '2', '3', '4']);
  for (const seen of Object.values(reports)) {
    expect(seen).toEqual({
      count: 1,
      fd: 4,
      size: 4096,
      magic: 0x5eed, // the primary's write
      cloexec: true, // inherited() marked it
      others: [100, 200, 300, 400], // every worker's write, read by each
      env: null, // taken out of the environment: a grandchild must not read it
      inChild: [], // a process the worker starts holds no segment
    });
  }
  expect(report.seen).toEqual([100, 200, 300, 400]); // the workers' writes, read by the primary
  expect(report.arrived).toBe(workers);
});

test('a worker forked again after one is killed gets the segment, though the primary closed its SharedMemory', () => {
  const report = primary('refork');
  expect(report.closed).toBe(true);
  expect(report.deaths).toEqual(
    expect.arrayContaining([
      { id: 1, code: null, signal: 'SIGKILL' },
      { id: 2, code: 0, signal: null },
      { id: 3, code: 0, signal: null },
    ]),
  );
  expect(report.reports).toEqual({
    1: { mode: 'hang', magic: 0x5eed, size: 4096 },
    2: { mode: 'plain', magic: 0x5eed, size: 4096 },
    3: { mode: 'replacement', magic: 0x5eed, size: 4096 },
  });
  // Each worker's write, the killed one's included, is in the primary's mapping.
  expect(report.seen).toEqual([0x5eed + 1, 0x5eed + 2, 0x5eed + 3]);
});

test('a worker without shared segments gets []; forked without the env, [] and a warning; an env without its descriptors, a coded error', () => {
  const report = primary('unshared');
  expect(report.plain).toEqual({ result: 0, message: null, warnings: [] });
  expect(report.withoutEnv).toEqual({ result: 0, message: null, warnings: ['MMAN_SHARED_MISSING'] });
  expect(report.envOnly).toEqual({
    result: 'ERR_SHARED_MEMORY_BAD_ENVIRONMENT',
    message: expect.stringContaining('names descriptor 900, which is not open in this process'),
    warnings: [],
  });
});

test.each([
  ['SCHED_NONE', 'none', true],
  ['SCHED_RR', 'rr', false],
])(
  'cluster.schedulingPolicy = %s set before: the policy holds, and workers serving one port read the segment',
  (_policy, mode, ownSocket) => {
    const report = primary('policy', [mode]);
    const listening = report.listening as { port: number; ownSocket: boolean }[];
    expect(listening).toHaveLength(2);
    expect(listening[1].port).toBe(listening[0].port);
    // SCHED_NONE: each worker holds the listening socket; SCHED_RR: the primary hands connections over.
    expect(listening.map((l) => l.ownSocket)).toEqual([ownSocket, ownSocket]);
    const answers = report.answers as string[];
    expect(answers).toHaveLength(6);
    for (const answer of answers) expect(answer).toMatch(/^[12]:24301$/);
  },
);

test('a second call replaces the segments at the same descriptors, and closes the former duplicates', () => {
  const report = primary('again');
  expect(report.env).toEqual({ MMAN_SHARED: '[{"fd":4,"size":8192},{"fd":5,"size":12288}]' });
  expect(report.stdio).toBe(6);
  expect(report.afterFirst).toBe((report.before as number) + 1);
  expect(report.afterSecond).toBe((report.before as number) + 2);
  expect(report.worker).toEqual({ fds: [4, 5], sizes: [8192, 12288] });
});

describe('bad arguments (refused before cluster.setupPrimary() is called)', () => {
  const shm = SharedMemory.create(4096);
  afterAll(() => shm.close());
  const cases: [string, string, () => unknown][] = [
    ['share not an array', 'ERR_INVALID_ARG_TYPE', () => shareWithCluster(shm as never)],
    ['share with a number', 'ERR_INVALID_ARG_TYPE', () => shareWithCluster([shm, 4 as never])],
    ['settings not an object', 'ERR_INVALID_ARG_TYPE', () => shareWithCluster([shm], 5 as never)],
    [
      "stdio without 'ipc'",
      'ERR_INVALID_ARG_VALUE',
      () => shareWithCluster([shm], { stdio: ['pipe', 'pipe', 'pipe'] }),
    ],
  ];
  test.each(cases)('%s → %s', (_what, code, call) => {
    expect(call).toThrow(expect.objectContaining({ code }));
    expect(cluster.settings.stdio).toBeUndefined();
  });
});

test('in a cluster worker: ERR_CLUSTER_NOT_PRIMARY', () => {
  const run = runFixture('cluster-primary.js', 'notPrimary', [], [], { timeout: 60_000 });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout.trim())).toEqual({ code: 'ERR_CLUSTER_NOT_PRIMARY' });
});
