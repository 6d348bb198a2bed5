// Memory files on hugetlbfs (memfd_create with MFD_HUGETLB), which the kernel maps and unmaps
// only in whole huge pages: a window of one is still given back whole, and the guard replaces a
// truncated huge page with zeros rather than letting the process die. Needs two free huge
// pages: as root the test reserves them (vm.nr_hugepages) and gives them back; otherwise it
// skips, saying why. Each case runs in a child process.
import { readFileSync, writeFileSync } from 'node:fs';
import { runFixture } from './helpers';

const NR = '/proc/sys/vm/nr_hugepages';
const free = () => Number(/HugePages_Free:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'latin1'))![1]);
let reserved = 0;
let whyNot: string | null = null;

beforeAll(() => {
  if (free() >= 2) return;
  if (process.getuid?.() !== 0) {
    whyNot = 'no free huge pages, and reserving some needs root';
    return;
  }
  try {
    const before = Number(readFileSync(NR, 'latin1'));
    writeFileSync(NR, String(before + 2));
    reserved = Number(readFileSync(NR, 'latin1')) - before;
    if (free() < 2) whyNot = 'the kernel would not reserve two huge pages';
  } catch (err) {
    whyNot = `cannot reserve huge pages: ${(err as Error).message}`;
  }
});
afterAll(() => {
  if (reserved > 0) writeFileSync(NR, String(Number(readFileSync(NR, 'latin1')) - reserved));
});

function run(mode: string): Record<string, unknown> | null {
  if (whyNot !== null) {
    console.warn(`test/huge-pages.test.ts: ${mode} skipped: ${whyNot}`);
    return null;
  }
  const child = runFixture('huge-child.js', mode, [], ['--expose-gc'], { timeout: 60_000 });
  expect(child.signal).toBeNull();
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout);
}

test('a one-page window of a hugetlbfs segment is mapped, and given back, as the whole huge page', () => {
  const report = run('window');
  if (report === null) return;
  expect(report).toEqual({ lengths: [4096, 4096, 4096], areas: 0, stats: 0, freeAfter: 0 });
});

test('a guarded hugetlbfs segment truncated under its mapping: zeros and ERR_MAPPING_TRUNCATED, not SIGBUS', () => {
  const report = run('guarded');
  if (report === null) return;
  expect(report).toEqual({ guarded: true, read: 0, truncated: 1, next: 'ERR_MAPPING_TRUNCATED' });
});
