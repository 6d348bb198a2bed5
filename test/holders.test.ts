// An operation of Node's that holds a view when the mapping is unmapped (or resized away)
// completes on the mapping's own pages: the peer, the file, the compressor see exactly what
// the mapping held; nothing lands in memory mapped since; and once the operation is done
// and the collector has run, nothing of the mapping is left. Each case is a child process
// (test/fixtures/holder-child.js), so a crash fails the case instead of the suite.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './helpers';

interface Report {
  retiredWhileRunning: number;
  outputLength?: number;
  outputMatches?: boolean;
  foreignBytes?: number;
  wroteIntoView?: boolean;
  fileHasIt?: boolean;
  keyMatches?: boolean;
  freshUntouched: boolean;
  addressMoved: boolean;
  backToBaseline: boolean;
  after: unknown;
}

function run(consumer: string, retire: string, kind: string): Report {
  const { dir, cleanup } = tempDir();
  try {
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', join(__dirname, 'fixtures', 'holder-child.js'), consumer, retire, kind, dir],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (child.status !== 0) {
      throw new Error(`child exited with ${child.status ?? child.signal}: ${child.stderr.slice(-2000)}`);
    }
    return JSON.parse(child.stdout) as Report;
  } finally {
    cleanup();
  }
}

function expectCompleted(report: Report, retire: string): void {
  expect(report.retiredWhileRunning).toBeGreaterThanOrEqual(1);
  if (report.outputMatches !== undefined) {
    expect(report.outputLength).toBe(4 << 20);
    expect(report.foreignBytes).toBe(0);
    expect(report.outputMatches).toBe(true);
  }
  if (report.wroteIntoView !== undefined) expect(report.wroteIntoView).toBe(true);
  if (report.fileHasIt !== undefined) expect(report.fileHasIt).toBe(true);
  if (report.keyMatches !== undefined) expect(report.keyMatches).toBe(true);
  expect(report.freshUntouched).toBe(true);
  expect(report.addressMoved).toBe(retire === 'move');
  expect(report.after).toEqual({ regions: 0, bytes: 0, retiredRegions: 0, retiredBytes: 0 });
  expect(report.backToBaseline).toBe(true);
}

// Every kind of consumer, on a shared file mapping, unmapped while it runs.
const consumers = [
  'socket',
  'socket-queued',
  'write-stream',
  'fs-write',
  'fs-read',
  'gzip',
  'deflate-stream',
  'brotli',
  'random-fill',
  'pbkdf2',
];
describe('unmap() while an operation holds a view: shared file mapping', () => {
  test.each(consumers)('%s', (consumer) => {
    expectCompleted(run(consumer, 'unmap', 'file'), 'unmap');
  });
});

// Every kind of mapping, under a compressor (which reads the view again for each chunk) and
// a socket queue (which hands the view to the kernel a turn later).
describe('unmap() while an operation holds a view: every kind of mapping', () => {
  const cases = ['anon', 'shared-anon', 'copy', 'guarded', 'shm'].flatMap((kind) =>
    ['gzip', 'socket-queued'].map((consumer) => [kind, consumer]),
  );
  test.each(cases)('%s under %s', (kind, consumer) => {
    expectCompleted(run(consumer, 'unmap', kind), 'unmap');
  });
});

// resize() that has to move: the old pages stay where the operation reads (or writes) them,
// for every kind (a private file mapping maps its file again beside them: docs/ARCHITECTURE.md).
describe('resize() that moves while an operation holds a view', () => {
  const cases = ['anon', 'copy', 'file', 'guarded', 'shm'].flatMap((kind) =>
    ['gzip', 'socket-queued', 'random-fill'].map((consumer) => [kind, consumer]),
  );
  test.each(cases)('%s under %s', (kind, consumer) => {
    expectCompleted(run(consumer, 'move', kind), 'move');
  });
});

// resize() that shrinks: the cut-off tail stays mapped for the operation.
describe('resize() that shrinks while an operation holds a view', () => {
  test.each(['anon', 'shared-anon', 'file'])('%s under brotli', (kind) => {
    expectCompleted(run('brotli', 'shrink', kind), 'shrink');
  });
});
