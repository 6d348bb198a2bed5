// The `mman` command end to end: the compiled lib/cli/index.js in a child process, on small sizes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { FAULT_KINDS, type FaultReport } from '../src/cli/measure/faults';
import { parseSize } from '../src/cli/util/size';
import { PAGE_SIZE } from '../src';
import { CLI, mmanCommand, TMP_IN_MEMORY } from './helpers';

const mman = mmanCommand;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mman-cli-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('mman bench faults', () => {
  let report: FaultReport;
  let svg: string;

  beforeAll(async () => {
    const svgPath = join(dir, 'faults.svg');
    const { stdout, status, stderr } = await mman(
      'bench',
      'faults',
      '--size',
      '8M',
      '--repeat',
      '3',
      '--json',
      '--svg',
      svgPath,
    );
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    report = JSON.parse(stdout);
    svg = readFileSync(svgPath, 'utf8');
  });

  test('every kind has a row or a stated reason', () => {
    const measured = report.kinds.map((k) => k.kind);
    const skipped = report.skipped.map((k) => k.kind);
    expect([...measured, ...skipped].sort()).toEqual([...FAULT_KINDS].sort());
    for (const s of report.skipped) expect(s.reason).toMatch(/\w{4,}/);
    // This machine has THP in madvise mode and a disk-backed tmpdir: these always run.
    expect(measured).toEqual(
      expect.arrayContaining(['anon-private-write', 'anon-populate', 'anon-populate-write', 'file-shared-read']),
    );
  });

  test('a cold read right after a file kind runs: the pages that kind unmapped are collected before the eviction', async () => {
    const { stdout, status, stderr } = await mman(
      'bench',
      'faults',
      '--size',
      '8M',
      '--repeat',
      '1',
      '--kinds',
      'file-shared-read,file-cold-read',
      '--json',
    );
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    const cold = JSON.parse(stdout) as FaultReport;
    // On a disk, eviction works and the kind runs (it was skipped, "the page cache kept 100%",
    // while the pages of the kind before it were still mapped); tmpfs never evicts.
    if (TMP_IN_MEMORY) {
      expect(cold.skipped.map((s) => s.kind)).toEqual(['file-cold-read']);
    } else {
      expect(cold.skipped).toEqual([]);
      expect(cold.kinds.map((k) => k.kind)).toEqual(['file-shared-read', 'file-cold-read']);
    }
  });

  test('the JSON has positive numbers for every measured kind', () => {
    for (const k of report.kinds) {
      for (const field of ['nsPerPage', 'nsMin', 'nsMax', 'nativeNsPerPage', 'ratio', 'residentPages'] as const) {
        expect({ kind: k.kind, field, value: k[field] > 0 }).toEqual({ kind: k.kind, field, value: true });
      }
      expect(k.nsMin).toBeLessThanOrEqual(k.nsPerPage);
      expect(k.nsMax).toBeGreaterThanOrEqual(k.nsPerPage);
      expect(k.minorFaultsPerPage).toBeGreaterThanOrEqual(0);
      expect(k.majorFaultsPerPage).toBeGreaterThanOrEqual(0);
      expect(k.hugeShare).toBeGreaterThanOrEqual(0);
      expect(k.hugeShare).toBeLessThanOrEqual(1);
    }
  });

  test('huge: plain anonymous memory has no huge pages unless THP is always on', () => {
    if (report.machine.thp === 'always') return; // then it may
    for (const kind of ['anon-private-write', 'anon-shared-write'])
      expect(report.kinds.find((r) => r.kind === kind)!.hugeShare).toBe(0);
  });

  test('first writes to anonymous memory take about one minor fault per page', () => {
    // With THP 'always', private anonymous memory would take one fault per huge page.
    const kinds = report.machine.thp === 'always' ? ['anon-shared-write'] : ['anon-private-write', 'anon-shared-write'];
    for (const kind of kinds) {
      const k = report.kinds.find((r) => r.kind === kind)!;
      expect(k.minorFaultsPerPage).toBeGreaterThan(0.9);
      expect(k.minorFaultsPerPage).toBeLessThan(1.2);
      expect(k.residentPages).toBe(k.pages);
    }
  });

  test('populated mappings take about zero faults during the touch', () => {
    for (const kind of ['anon-populate', 'anon-populate-write']) {
      const k = report.kinds.find((r) => r.kind === kind)!;
      expect(k.minorFaultsPerPage).toBeLessThan(0.05);
      expect(k.majorFaultsPerPage).toBe(0);
    }
  });

  test('the SVG is well-formed, with a JavaScript and a C bar per measured kind', () => {
    expect(svg.startsWith('<?xml')).toBe(true);
    // Every tag closes in order.
    const stack: string[] = [];
    for (const [, closing, name, selfClosing] of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
      if (selfClosing) continue;
      if (closing) expect(stack.pop()).toBe(name);
      else stack.push(name);
    }
    expect(stack).toEqual([]);
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    expect(svg.match(/<rect class="js"/g)).toHaveLength(report.kinds.length);
    expect(svg.match(/<rect class="native"/g)).toHaveLength(report.kinds.length);
    for (const k of report.kinds) expect(svg).toContain(`data-kind="${k.kind}"`);
  });

  test('without --json it prints an aligned table, one row per kind', async () => {
    const { stdout, status } = await mman(
      'bench',
      'faults',
      '--size',
      '4M',
      '--repeat',
      '1',
      '--kinds',
      'anon-private-write,hugetlb',
    );
    expect(status).toBe(0);
    const lines = stdout.split('\n');
    const header = lines.findIndex((l) => l.startsWith('kind'));
    expect(lines[header]).toMatch(/ns\/page.*C ns\/page.*JS\/C.*minor\/page.*major\/page/);
    expect(lines[header + 1]).toMatch(/^-+( +-+)+$/);
    const row = lines[header + 2];
    expect(row).toMatch(/^anon-private-write +\d/);
    expect(row.length).toBe(lines[header].length);
    expect(stdout).toMatch(/^hugetlb(: skipped, \w.+| +\d.*)$/m);
  });

  test('an unknown kind is a usage error', async () => {
    const { status, stderr } = await mman('bench', 'faults', '--kinds', 'anon-private-write,nope');
    expect(status).toBe(2);
    expect(stderr).toMatch(/unknown kind nope/);
  });
});

describe('mman bench io', () => {
  test('times every method for both operations, all with the same checksum', async () => {
    const { stdout, status, stderr } = await mman(
      'bench',
      'io',
      '--size',
      '8M',
      '--reads',
      '10000',
      '--loop-reads',
      '2000',
      '--repeat',
      '1',
      '--json',
    );
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    const { results, eventLoop, eventLoopReads } = JSON.parse(stdout) as {
      results: Array<{ operation: string; method: string; ms: number; ratio: number; checksum: number }>;
      eventLoop: Array<{
        method: string;
        totalMs: number;
        readsMs: number;
        delayP50: number;
        delayP99: number;
        delayMax: number;
        checksum: number;
      }>;
      eventLoopReads: number;
    };
    // The event loop while a cold file is read: four ways, the same words read by each.
    expect(eventLoopReads).toBe(2000);
    expect(eventLoop.map((r) => r.method)).toEqual([
      'mmap, cold',
      'mmap after await populate()',
      'fs.promises.read',
      'mmap, warm (reference)',
    ]);
    for (const r of eventLoop) {
      expect(r.checksum).toBe(eventLoop[0].checksum);
      expect(r.readsMs).toBeGreaterThan(0);
      expect(r.readsMs).toBeLessThanOrEqual(r.totalMs);
      expect(r.delayP50).toBeGreaterThanOrEqual(0);
      expect(r.delayP50).toBeLessThanOrEqual(r.delayP99);
      expect(r.delayP99).toBeLessThanOrEqual(r.delayMax);
    }
    expect(results.map((r) => `${r.operation}: ${r.method}`)).toEqual([
      'sequential scan: mmap',
      'sequential scan: fs.readFileSync',
      'sequential scan: fs.readSync',
      'sequential scan: fs.createReadStream',
      'random reads: mmap',
      'random reads: fs.readFileSync',
      'random reads: fs.readSync',
    ]);
    for (const r of results) {
      expect(r.ms).toBeGreaterThan(0);
      expect(r.ratio).toBeGreaterThan(0);
      expect(r.checksum).toBe(results.find((b) => b.operation === r.operation)!.checksum);
    }
  });
});

describe('mman bench scale', () => {
  test('threads and processes, JavaScript and C: whole 128 MiB loops counted, scaling against one task', async () => {
    const { stdout, status, stderr } = await mman(
      'bench',
      'scale',
      '--kinds',
      'anon,file-shared',
      '--tasks',
      '1,2',
      '--mode',
      'both',
      '--seconds',
      '0.2',
      '--json',
      '--svg',
      join(dir, 'scale.svg'),
    );
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    const report = JSON.parse(stdout) as {
      taskBytes: number;
      pageSize: number;
      oversubscribed: boolean;
      results: Array<{
        kind: string;
        mode: string;
        tasks: number;
        pages: number;
        nativePages: number;
        scaling: number;
        ratio: number;
      }>;
    };
    const loop = report.taskBytes / report.pageSize;
    expect(report.taskBytes).toBe(128 * 1024 * 1024);
    expect(report.results.map((r) => `${r.kind} ${r.mode} ${r.tasks}`)).toEqual([
      'anon threads 1',
      'anon threads 2',
      'anon processes 1',
      'anon processes 2',
      'file-shared threads 1',
      'file-shared threads 2',
      'file-shared processes 1',
      'file-shared processes 2',
    ]);
    for (const r of report.results) {
      // Every task finishes the loop it is in: pages are whole loops, at least one per task.
      expect(r.pages % loop).toBe(0);
      expect(r.pages).toBeGreaterThanOrEqual(r.tasks * loop);
      expect(r.nativePages % loop).toBe(0);
      expect(r.nativePages).toBeGreaterThanOrEqual(r.tasks * loop);
      expect(r.ratio).toBeGreaterThan(0);
      if (r.tasks === 1) expect(r.scaling).toBe(1);
    }
    // The chart: well-formed, one bar pair per run.
    const svg = readFileSync(join(dir, 'scale.svg'), 'utf8');
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<rect class="js"/g)).toHaveLength(report.results.length);
    expect(svg.match(/<rect class="native"/g)).toHaveLength(report.results.length);
  });

  test('bad options are usage errors', async () => {
    for (const args of [
      ['--kinds', 'heap'],
      ['--mode', 'fibers'],
      ['--tasks', '0'],
      ['--seconds', '-1'],
    ]) {
      const { status, stderr } = await mman('bench', 'scale', ...args);
      expect(status).toBe(2);
      expect(stderr).toMatch(/^mman: /);
    }
  });
});

describe('mman bench pressure', () => {
  (TMP_IN_MEMORY ? test.skip : test)(
    'each limit, each method: reads made, faults counted, the same words read (not on tmpfs)',
    async () => {
      const args = [
        'bench',
        'pressure',
        '--size',
        '16M',
        '--limit',
        '8M',
        '--reads',
        '2000',
        '--budget',
        '5',
        '--json',
      ];
      const { stdout, status, stderr } = await mman(...args);
      expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
      const report = JSON.parse(stdout) as {
        size: number;
        reads: number;
        cgroup: string | null;
        skipped?: string;
        points: Array<{
          limit: number;
          ratio: number;
          failed?: string;
          results: Array<{ method: string; reads: number; nsPerRead: number; majorFaults: number; checksum: number }>;
        }>;
      };
      if (report.skipped !== undefined) {
        expect(report.skipped).toMatch(/cgroup/); // said why, measured nothing
        expect(report.points).toEqual([]);
        return;
      }
      expect(report.points.map((p) => p.ratio)).toEqual([0.5, 1, 2]);
      // Without pressure the reader always finishes; at a tight limit a heavier runtime (the
      // sanitizer build) may be killed by the OOM killer, which the report must then say.
      expect(report.points[0].failed).toBeUndefined();
      for (const point of report.points) {
        if (point.failed !== undefined) {
          expect(point.failed).toMatch(/died/);
          expect(point.results).toEqual([]);
          continue;
        }
        expect(point.results.map((r) => r.method)).toEqual(['mmap, MADV_RANDOM', 'mmap, read-ahead', 'fs.readSync']);
        for (const r of point.results) {
          expect(r.reads).toBeGreaterThan(0);
          expect(r.reads).toBeLessThanOrEqual(2000);
          expect(r.nsPerRead).toBeGreaterThan(0);
        }
        const [random, , pread] = point.results;
        expect(random.majorFaults).toBeGreaterThan(0); // the cache was dropped: the first touches read the disk
        expect(pread.majorFaults).toBe(0); // read(2) blocks on the disk without a fault
        const complete = point.results.filter((r) => r.reads === 2000);
        for (const r of complete) expect(r.checksum).toBe(complete[0].checksum);
      }
    },
  );
});

describe('mman bench tlb', () => {
  test('random reads per page size: a row or a reason for each, the pages resident, THP really huge', async () => {
    const { stdout, status, stderr } = await mman(
      'bench',
      'tlb',
      '--size',
      '8M',
      '--reads',
      '20000',
      '--repeat',
      '1',
      '--json',
    );
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    const report = JSON.parse(stdout) as {
      size: number;
      machine: { thp: string };
      results: Array<{ kind: string; nsPerRead: number; nativeNsPerRead: number; hugeShare: number }>;
      skipped: Array<{ kind: string; reason: string }>;
    };
    expect([...report.results.map((r) => r.kind), ...report.skipped.map((s) => s.kind)].sort()).toEqual([
      'hugetlb',
      'pages-4k',
      'thp',
    ]);
    for (const s of report.skipped) expect(s.reason).toMatch(/\w{4,}/);
    for (const r of report.results) {
      expect(r.nsPerRead).toBeGreaterThan(0);
      expect(r.nativeNsPerRead).toBeGreaterThan(0);
    }
    expect(report.results.find((r) => r.kind === 'pages-4k')!.hugeShare).toBe(0); // MADV_NOHUGEPAGE held
    expect(report.size % (2 * 1024 * 1024)).toBe(0); // whole huge pages
  });
});

describe('mman bench ring', () => {
  test('runs the shipped bench/ring.js: every row asked for, a rate each, and the one-thread costs', async () => {
    const rows = await mman(
      'bench',
      'ring',
      '--quick',
      '--kind',
      'thread',
      '--topology',
      '1-1,4-1',
      '--size',
      '64',
      '--only',
      'ring-many,ring-one,c',
      '--no-paced',
      '--json',
    );
    expect({ status: rows.status, stderr: rows.stderr }).toEqual({ status: 0, stderr: '' });
    const report = JSON.parse(rows.stdout) as {
      rows: Array<{ kind: string; topology: string; size: number; way: string; rate: number }>;
    };
    expect(report.rows.map((r) => `${r.kind} ${r.topology} ${r.size} ${r.way}`)).toEqual([
      'thread 1→1 64 ring-many',
      'thread 1→1 64 ring-one',
      'thread 1→1 64 c',
      'thread 4→1 64 ring-many',
      'thread 4→1 64 c',
    ]);
    for (const r of report.rows) expect([r.way, r.rate]).toEqual([r.way, expect.any(Number)]);
    for (const r of report.rows) expect(r.rate).toBeGreaterThan(0);

    const solo = await mman('bench', 'ring', '--solo', '--quick', '--size', '4096');
    expect({ status: solo.status, stderr: solo.stderr }).toEqual({ status: 0, stderr: '' });
    expect(solo.stdout).toMatch(/^solo 4096 B {2}ring-many write +[\d.]+ ns {2}read +[\d.]+ ns/m);
    expect(solo.stdout).toMatch(/^solo 4096 B {2}c {9}write +[\d.]+ ns/m);

    const wrong = await mman('bench', 'ring', '--topology', '2-2');
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain("--topology: '2-2' is not one of 1-1, 4-1, 1-4");
  });
});

describe('mman residency', () => {
  const FILE_PAGES = (4 * 2 ** 20) / PAGE_SIZE;
  let file: string;
  beforeAll(() => {
    file = join(dir, 'data.bin');
    writeFileSync(file, Buffer.alloc(4 * 2 ** 20, 7));
  });

  async function percent(...flags: string[]): Promise<number> {
    const { stdout, status, stderr } = await mman('residency', file, ...flags, '--json');
    expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
    const { files } = JSON.parse(stdout);
    expect(files).toHaveLength(1);
    expect(files[0].pages).toBe(FILE_PAGES);
    return files[0].percent;
  }

  test('reports 100% after --touch', async () => {
    expect(await percent('--touch')).toBe(100);
  });

  // tmpfs keeps a file's pages in memory: there is nothing to evict them to.
  (TMP_IN_MEMORY ? test.skip : test)('reports less after --evict (not on tmpfs)', async () => {
    expect(await percent('--evict')).toBeLessThan(100);
  });

  test('prints a table with a total for several files', async () => {
    const other = join(dir, 'other.bin');
    writeFileSync(other, 'hello');
    const { stdout, status } = await mman('residency', file, other, '--touch');
    expect(status).toBe(0);
    expect(stdout).toMatch(/^file +size +pages +resident +percent$/m);
    expect(stdout).toMatch(new RegExp(`^total +\\S+ +${FILE_PAGES + 1} +${FILE_PAGES + 1} +100\\.0%$`, 'm'));
  });

  test('--lock holds the pages locked (VmLck) until interrupted', async () => {
    const child = spawn(process.execPath, [CLI, 'residency', file, '--lock'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk) => {
        out += chunk;
        if (out.includes('Ctrl-C')) resolve();
      });
      child.on('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    expect(out).toMatch(/100\.0%/);
    expect(out).toMatch(new RegExp(`Locked ${FILE_PAGES} pages`));
    // The kernel's own count of the process's locked memory.
    const locked = Number(/VmLck:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'latin1'))![1]);
    expect(locked * 1024).toBeGreaterThanOrEqual(FILE_PAGES * PAGE_SIZE);
    const status = await new Promise<number | null>((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', (code) => resolve(code));
      child.kill('SIGINT');
    });
    expect(status).toBe(0);
  });

  test('--touch and --evict exclude each other', async () => {
    const { status, stderr } = await mman('residency', file, '--touch', '--evict');
    expect(status).toBe(2);
    expect(stderr).toMatch(/exclude each other/);
  });
});

describe('parseSize', () => {
  test.each([
    ['4096', 4096],
    ['64K', 65536],
    ['256M', 256 * 2 ** 20],
    ['1G', 2 ** 30],
    ['1.5k', 1536],
    ['2MiB', 2 * 2 ** 20],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  test.each(['', '-1', '0', '12Q', 'M'])('refuses %j', (text) => {
    expect(() => parseSize(text)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });
});
