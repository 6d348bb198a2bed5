// test/runtimes/conformance.cjs is what CI runs under Bun and Deno; here it runs under this
// Node, so that the runtime-neutral subset itself is kept honest by every Node stage.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

test('the runtime-neutral subset passes under this Node', () => {
  const run = spawnSync(process.execPath, ['--expose-gc', join(__dirname, 'runtimes', 'conformance.cjs')], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  const summary = JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}');
  if (run.status !== 0) throw new Error(`${run.stdout}\n${run.stderr}`);
  expect(summary).toMatchObject({ runtime: 'node', failed: 0, skipped: 0 });
  expect(summary.passed).toBeGreaterThanOrEqual(17);
}, 300_000);
