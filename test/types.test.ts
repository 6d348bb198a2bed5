// The package's own declarations (lib/*.d.ts, as shipped) under `tsc --strict`: a file that
// uses every export compiles, and what the types must refuse is refused (@ts-expect-error).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

test('every export, used as a user would, compiles under tsc --strict against lib/index.d.ts', () => {
  const root = join(__dirname, '..');
  const tsc = spawnSync(
    process.execPath,
    [
      require.resolve('typescript/bin/tsc'),
      '--strict',
      '--noEmit',
      '--target',
      'es2022',
      '--module',
      'commonjs',
      '--lib',
      'es2022,esnext.disposable',
      '--types',
      'node',
      '--skipLibCheck',
      'false',
      join(root, 'test', 'types', 'every-export.ts'),
    ],
    { cwd: root, encoding: 'utf8', timeout: 120_000 },
  );
  expect(tsc.stdout + tsc.stderr).toBe('');
  expect(tsc.status).toBe(0);
});
