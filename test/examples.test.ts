// Every example the README quotes runs, as a user would run it, and does what it says.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');
const examples = readdirSync(join(root, 'examples'))
  .filter((f) => f.endsWith('.js'))
  .sort();

test('the README quotes every example, verbatim', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  for (const name of examples) {
    expect(readme).toContain(`examples/${name}`);
    expect(readme).toContain(readFileSync(join(root, 'examples', name), 'utf8').trim());
  }
});

test.each(examples)('examples/%s runs to completion', (name) => {
  const run = spawnSync(process.execPath, [join('examples', name)], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(run.stdout.length).toBeGreaterThan(0);
});

test('zero-copy-file: the shared write reaches the file, the private one does not', () => {
  const run = spawnSync(process.execPath, ['examples/zero-copy-file.js'], { cwd: root, encoding: 'utf8' });
  expect(run.stdout).toContain('on disk at 4096: 0xdeadbeef');
  expect(run.stdout).toContain('after a private write, file still holds 0xdeadbeef');
});

test('file-service: the index is resident before the first read; the log grew its file to every line', () => {
  const run = spawnSync(process.execPath, ['examples/file-service.js'], { cwd: root, encoding: 'utf8' });
  expect(run.stdout).toContain('index: 4194304 bytes, every page resident: true, word 1000 = 22962');
  // smaps counts the resident pages (qemu-user's emulated smaps counts fewer than the kernel's).
  expect(Number(/index memory: rss (\d+) bytes/.exec(run.stdout)?.[1])).toBeGreaterThan(0);
  expect(run.stdout).toContain('log: 1000 lines on disk, last "event 999"');
});

test('hot-swap: every response is one whole version, and more than one version was served', () => {
  const run = spawnSync(process.execPath, ['examples/hot-swap.js'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const responses = /^(\d+) responses of 4194304 bytes, (\d+) torn or mixed$/m.exec(run.stdout);
  expect(responses).not.toBeNull();
  expect(Number(responses![1])).toBeGreaterThan(0);
  expect(Number(responses![2])).toBe(0);
  expect(Number(/^(\d+) versions served;/m.exec(run.stdout)?.[1])).toBeGreaterThan(1);
});

test('cluster-counter: every cluster worker counted under the Mutex, and the primary saw the total', () => {
  const run = spawnSync(process.execPath, ['examples/cluster-counter.js'], { cwd: root, encoding: 'utf8' });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  expect(run.stdout).toBe('4 workers x 1000000 increments under one Mutex: counter = 4000000\n');
});
