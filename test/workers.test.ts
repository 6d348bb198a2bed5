// Worker threads: the addon loads in each, maps and unmaps concurrently, runs finalizers
// on the worker's own thread, and a worker terminated with live mappings leaks nothing.
import { runFixture } from './helpers';

test('four workers mapping at once; two terminated while holding live mappings; nothing leaked', () => {
  // V8 flags are process-wide: workers get gc() too.
  const child = runFixture('workers-child.js', 'churn', [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.reports).toHaveLength(4);
  for (const r of out.reports) expect(r.held).toBe(10);
  expect(out.whileHeld).toBeGreaterThanOrEqual(20); // at least the two lingering workers' mappings
  expect(out.after).toBe(0);
});

test('in workers: unmap() under a pending compression completes on the pages; a worker terminated with retired ranges leaves none', () => {
  const child = runFixture('workers-child.js', 'compress', [], ['--expose-gc']);
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  const out = JSON.parse(child.stdout);
  expect(out.reports.map((r: { same: boolean }) => r.same)).toEqual([true, true]);
  expect(out.whileLingering).toBeGreaterThanOrEqual(1); // the terminated worker's kept view
  expect(out.after).toEqual({ regions: 0, bytes: 0, retiredRegions: 0, retiredBytes: 0 });
});
