// The child programs the tests run (test/fixtures/, test/runtimes/) are real files: each one
// at least parses, as `node --check` sees it.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const programs = ['fixtures', 'runtimes'].flatMap((folder) =>
  readdirSync(join(__dirname, folder))
    .filter((name) => /\.c?js$/.test(name))
    .map((name) => join(folder, name)),
);

test('there are child programs to check', () => {
  expect(programs.length).toBeGreaterThan(0);
});

test.each(programs)('node --check test/%s', (program) => {
  const check = spawnSync(process.execPath, ['--check', join(__dirname, program)], { encoding: 'utf8' });
  expect(check.stderr).toBe('');
  expect(check.status).toBe(0);
});
