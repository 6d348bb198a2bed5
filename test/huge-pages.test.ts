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

// Two free huge pages, reserved here as root if need be (given back after the tests); else why
// the tests are skipped. Decided while the tests are collected, so that a skip shows as one.
function reserve(): string | null {
  if (free() >= 2) return null;
  if (process.getuid?.() !== 0) return 'no free huge pages, and reserving some needs root';
  try {
    const before = Number(readFileSync(NR, 'latin1'));
    writeFileSync(NR, String(before + 2));
    reserved = Number(readFileSync(NR, 'latin1')) - before;
    return free() < 2 ? 'the kernel would not reserve two huge pages' : null;
  } catch (err) {
    return `cannot reserve huge pages: ${(err as Error).message}`;
  }
}
const whyNot = reserve();
if (whyNot !== null) console.warn(`test/huge-pages.test.ts skipped: ${whyNot}`);
const maybe = whyNot === null ? test : test.skip;
afterAll(() => {
  if (reserved > 0) writeFileSync(NR, String(Number(readFileSync(NR, 'latin1')) - reserved));
});

function run(mode: string): Record<string, unknown> {
  const child = runFixture('huge-child.js', mode, [], ['--expose-gc'], { timeout: 60_000 });
  expect(child.signal).toBeNull();
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  return JSON.parse(child.stdout);
}

// What /proc/self/smaps says of the area that holds a mapping of the 2 MiB segment: one whole
// huge page, at a huge page boundary, of the segment's file, made of 2048 kB pages.
const wholeHugePage = {
  offsetInHugePage: 0,
  at: 0,
  size: 2 * 1024 * 1024,
  file: expect.stringMatching(/^\/memfd:huge/),
  kernelPageKiB: 2048,
  hugetlb: true,
};

maybe('a one-page window of a hugetlbfs segment is mapped, and given back, as the whole huge page', () => {
  expect(run('window')).toEqual({
    lengths: [4096, 4096, 4096], // what the window exposes
    kernel: [wholeHugePage, wholeHugePage, wholeHugePage], // what the kernel mapped for it
    areas: 0,
    stats: 0,
    freeAfter: 0,
  });
});

maybe('a guarded hugetlbfs segment truncated under its mapping: zeros and ERR_MAPPING_TRUNCATED, not SIGBUS', () => {
  expect(run('guarded')).toEqual({
    guarded: true,
    read: 0,
    truncated: 1,
    next: 'ERR_MAPPING_TRUNCATED',
    area: wholeHugePage,
  });
});
