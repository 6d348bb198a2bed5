// The benchmarks under bench/ run, at their smallest sizes, so that none of them rots.
// Their speed is not judged here (bench/RESULTS.md holds the figures); what they print is.
// The soak benchmark runs longer: what it asserts is that memory stays flat.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tools } from '../src/internal';
import { fixture, tempDir } from './helpers';

const root = join(__dirname, '..');

function bench(script: string, args: string[], nodeArgs: string[] = [], env = process.env): string {
  const run = spawnSync(process.execPath, [...nodeArgs, join('bench', script), ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 180_000,
    env,
  });
  if (run.status !== 0) throw new Error(`bench/${script} exited ${run.status ?? run.signal}:\n${run.stderr}`);
  return run.stdout;
}

const number = (text: string, pattern: RegExp): number => {
  const match = pattern.exec(text);
  if (match === null) throw new Error(`${pattern} not in:\n${text}`);
  return Number(match[1]);
};

test('bench/core.js: every row, each with a measured figure', () => {
  const out = bench('core.js', ['--size', '16M', '--repeat', '1', '--quick']);
  expect(number(out, /\| map \+ scan.*?\| ([\d.]+) \| readFileSync \+ scan: [\d.]+/)).toBeGreaterThan(0);
  expect(number(out, /\| 100,000 random.*?\| ([\d.]+) \| fs\.readSync: [\d.]+/)).toBeGreaterThan(0);
  expect(number(out, /\| one-page mmap\(\) \+ unmap\(\), ns \| (\d+) \| C mmap \+ munmap.*?: \d+/)).toBeGreaterThan(0);
  expect(number(out, /first write per page.*?\| (\d+)/)).toBeGreaterThan(0);
  expect(number(out, /first write per page.*?C loop: (\d+)/)).toBeGreaterThan(0);
  expect(
    number(out, /\| one-page file mmap\(fd\) \+ \.bytes \+ unmap\(\), ns \| (\d+) \| C mmap\(fd\) \+ munmap/),
  ).toBeGreaterThan(0);
  expect(number(out, /C mmap\(fd\) \+ munmap, same descriptor: (\d+)/)).toBeGreaterThan(0);
}, 180_000);

test('bench/wait-cancel.js: 200 waits started, every one aborted with an AbortError, nothing left pending, each phase timed', () => {
  // A preloaded witness records how each wait settled, and what the addon still holds at exit.
  const { dir, cleanup } = tempDir();
  try {
    const witness = join(dir, 'witness.json');
    const out = JSON.parse(
      bench('wait-cancel.js', ['200'], ['-r', fixture('wait-cancel-witness.js')], {
        ...process.env,
        MMAN_WITNESS: witness,
      }),
    );
    expect(out.count).toBe(200);
    for (const phase of ['startMs', 'abortMs', 'settleMs']) {
      expect(Number.isInteger(out[phase])).toBe(true); // a figure, not NaN or null
      expect(out[phase]).toBeGreaterThanOrEqual(0);
    }
    expect(out.threads).toBeGreaterThan(0); // the waits ran on waiter threads
    const seen = JSON.parse(readFileSync(witness, 'utf8'));
    expect(seen.outcomes).toEqual({ 'AbortError ABORT_ERR': 200 }); // none woke, timed out or failed otherwise
    expect(seen.stats).toMatchObject({ pending: 0, sleeping: 0, threads: out.threads });
  } finally {
    cleanup();
  }
});

test('bench/ipc.js --quick: every ratio measured, the C ping-pong at each spin, the ring ping-pong checked', () => {
  const out = bench('ipc.js', ['--quick']);
  expect(number(out, /\(a\) latency, by mean, spin 20000.*?median ([\d.]+)x/)).toBeGreaterThan(0);
  expect(number(out, /\(b\) throughput RingBuffer \/ process\.send.*?median ([\d.]+)x/)).toBeGreaterThan(0);
  for (const spin of [0, 2000, 20000]) {
    const re = new RegExp(
      `\\(c\\) wait/notify ping-pong with waitersIndex, spin ${spin}(?:, one CPU each side)?: .*?median ([\\d.]+)x`,
    );
    expect([spin, number(out, re)]).toEqual([spin, expect.any(Number)]);
    expect(number(out, re)).toBeGreaterThan(0);
    // Each round's time on each side is a figure above zero (the ratio is only as good as they are).
    const line = new RegExp(
      `\\(c\\) ping-pong with waiter counts, spin ${spin}\\b.*?: mman ([\\d. /]+) us per round trip, C ([\\d. /]+) us`,
    ).exec(out);
    expect(line).not.toBeNull();
    for (const side of [line![1], line![2]]) {
      const times = side.split(' / ').map(Number);
      expect(times.length).toBeGreaterThan(0);
      for (const t of times) expect([spin, t]).toEqual([spin, expect.any(Number)]);
      for (const t of times) expect(t).toBeGreaterThan(0);
    }
  }
  expect(number(out, /\(c\) RingBuffer ping-pong.*?median ([\d.]+)x/)).toBeGreaterThan(0);
}, 180_000);

test('bench/ring.js --quick: every way in every topology, size and kind measured; the paced latencies too', () => {
  const out = bench('ring.js', ['--quick']);
  const rows = [...out.matchAll(/^(process|thread)\s+(\S+)\s+(\d+) B\s+(\S+)\s+([\d.]+) M msg\/s/gm)];
  // 1→1: ring-many, ring-one, ipc, C; 4→1 and 1→4: all but ring-one; 64 B and 4 KiB; processes and threads.
  expect(rows).toHaveLength(2 * 2 * (4 + 3 + 3));
  for (const row of rows) expect([row[0], Number(row[5])]).toEqual([row[0], expect.any(Number)]);
  for (const row of rows) expect(Number(row[5])).toBeGreaterThan(0);
  const paced = [...out.matchAll(/^(process|thread)\s+1→1\s+64 B\s+(\S+)\s+paced\s+p50\s+([\d.]+) µs/gm)];
  expect(paced.map((m) => `${m[1]} ${m[2]}`).sort()).toEqual(
    ['process', 'thread'].flatMap((kind) => ['c', 'ipc', 'ring-many', 'ring-one'].map((way) => `${kind} ${way}`)),
  );
}, 180_000);

test('bench/ring.js --solo --quick: what a message costs each side in one thread, both rings and C, each size', () => {
  const out = bench('ring.js', ['--solo', '--quick']);
  const rows = [...out.matchAll(/^solo\s+(\d+) B\s+(\S+)\s+write\s+([\d.]+) ns\s+read\s+([\d.]+) ns/gm)];
  expect(rows.map((m) => `${m[1]} ${m[2]}`).sort()).toEqual(
    ['64', '4096'].flatMap((size) => ['c', 'ring-many', 'ring-one'].map((way) => `${size} ${way}`)).sort(),
  );
  for (const m of rows)
    expect([m[2], Number(m[3]), Number(m[4])]).toEqual([m[2], expect.any(Number), expect.any(Number)]);
  for (const m of rows) expect(Math.min(Number(m[3]), Number(m[4]))).toBeGreaterThan(0);
}, 180_000);

test('bench/read-loop.js: the JavaScript and C read loops, timed', () => {
  const out = bench('read-loop.js', ['--size', '8M', '--rounds', '3']);
  expect(number(out, /JS loop: median ([\d.]+)/)).toBeGreaterThan(0);
  expect(number(out, /C loop: +median ([\d.]+)/)).toBeGreaterThan(0);
}, 180_000);

test('bench/unmap-loop.js: both loops, every column measured', () => {
  const out = bench('unmap-loop.js', ['--cycles', '2000', '--json']);
  const rows = JSON.parse(out) as Array<{
    name: string;
    usPerCycle: number;
    maxMapsLinesGrowth: number;
    checksum: number;
  }>;
  expect(rows.map((r) => r.name)).toEqual([
    'mapFile(one page) + .bytes[0] + unmap()',
    'mapAnonymous(1 MiB) + fill + unmap()',
  ]);
  for (const r of rows) expect(r.usPerCycle).toBeGreaterThan(0);
  expect(rows[0].checksum).toBe(2000); // every cycle read the file's byte
}, 180_000);

test('bench/unmap-cost.js: the C loop and the three unmap() loops, timed', () => {
  const rows = JSON.parse(bench('unmap-cost.js', ['--cycles', '2000', '--rounds', '1', '--json'])) as Array<{
    name: string;
    loop: number;
    total: number;
  }>;
  expect(rows).toHaveLength(4);
  for (const r of rows) expect(r.loop).toBeGreaterThan(0);
  for (const r of rows) expect(r.total).toBeGreaterThanOrEqual(r.loop);
}, 180_000);

// Native memory is measured through a test hook that source builds have and the prebuilds
// (which CI also tests) do not, and that reports 0 under the sanitizer's allocator; the rest
// of the soak holds for all of them.
const measurable = (tools.mallocInUse?.() ?? -1) > 0;

test('bench/soak.js, 100,000 map/touch/unmap cycles: native memory flat, no mapping left behind', () => {
  const run = spawnSync(
    process.execPath,
    ['--expose-gc', join(root, 'bench', 'soak.js'), '--cycles', '100000', '--samples', '10', '--json'],
    { encoding: 'utf8', timeout: 300_000 },
  );
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  const result = JSON.parse(run.stdout);
  expect(result.rows).toHaveLength(10);
  expect(result.mmanRegionsAtEnd).toBe(0);
  expect(result.fileMappingsLeft).toBe(0);
  // A leaked native record per cycle (32 bytes or more) would add 2.5 MiB over the 80,000
  // cycles measured; Node's own queues settle within a few hundred KiB.
  if (measurable) {
    expect(result.rows.every((r: { nativeKiB: number }) => r.nativeKiB > 0)).toBe(true);
    expect(result.nativeGrowthKiB).toBeLessThan(2048);
  } else {
    expect(result.rows.every((r: { nativeKiB: number }) => r.nativeKiB <= 0)).toBe(true);
  }
  // V8 grows its heap in 256 KiB chunks while it sizes itself: bounded, not per cycle.
  expect(result.mapsGrowth).toBeLessThan(100);
}, 300_000);

test('bench/overwrite.js: every row counted; the rename way never cuts a body short or mixes versions', () => {
  const out = bench('overwrite.js', [
    '--requests',
    '40',
    '--size',
    '256K',
    '--only',
    'writeFileSync:r,pwrite:r,rename:r',
  ]);
  const rows = [...out.matchAll(/^(\w+) +'([r+copy]+)' +(\d+) +(\d+) +(\d+) +(.+?) +(\d+) +(true|false)$/gm)];
  expect(rows.map((r) => `${r[1]}:${r[2]}`)).toEqual(['writeFileSync:r', 'pwrite:r', 'rename:r']);
  for (const [, , , whole, short, mixed, , passes, truncated] of rows) {
    expect(Number(whole) + Number(short) + Number(mixed)).toBe(40);
    expect(Number(passes)).toBeGreaterThan(0);
    // The server never reads the mapping in JavaScript: the guard sees no fault, whatever happens.
    expect(truncated).toBe('false');
  }
  // A write that does not truncate leaves every page backed: no body is cut short.
  expect(rows[1].slice(3, 7)).toEqual([expect.any(String), '0', expect.any(String), 'none']);
  // A new file renamed over the old name, mapped, and the old mapping unmapped: all whole.
  expect(rows[2].slice(3, 7)).toEqual(['40', '0', '0', 'none']);
}, 180_000);
