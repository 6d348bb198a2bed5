// protect, advise, residency, lock: what the kernel and another process see.
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { mapAnonymous, mapFile, mappingStats, Advice, PAGE_SIZE, Prot } from '../src';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { evictFile } from '../src/cli/util/page-cache';
import { fileWith, permsAt, runFixture, smapsOf, tempDir, TMP_IN_MEMORY } from './helpers';

describe('protect (mprotect)', () => {
  test('a child writing to a read-only page dies with SIGSEGV; the parent lives on', () => {
    const child = runFixture('memory-child.js', 'readOnly');
    expect(child.stdout).toBe('read 42\n');
    expect(child.signal).toBe('SIGSEGV');
  });

  test('a PROT_NONE guard page: the pages beside it work, touching it is SIGSEGV', () => {
    const child = runFixture('memory-child.js', 'guardPage');
    expect(child.stdout).toBe('edges ok\n');
    expect(child.signal).toBe('SIGSEGV');
  });

  test('changes what /proc/self/maps reports, page by page', () => {
    using m = mapAnonymous(3 * PAGE_SIZE);
    m.protect(Prot.Read, PAGE_SIZE, 1); // one byte: its whole page
    expect(permsAt(m.address)).toBe('rw-p');
    expect(permsAt(m.address + BigInt(PAGE_SIZE))).toBe('r--p');
    expect(permsAt(m.address + BigInt(2 * PAGE_SIZE))).toBe('rw-p');
    m.protect(Prot.Read | Prot.Write);
    m.bytes[PAGE_SIZE] = 1;
    expect(permsAt(m.address + BigInt(PAGE_SIZE))).toBe('rw-p');
  });

  test('PROT_EXEC appears only when asked for', () => {
    using m = mapAnonymous(PAGE_SIZE);
    expect(permsAt(m.address)).not.toContain('x');
    m.protect(Prot.Read | Prot.Exec);
    expect(permsAt(m.address)).toBe('r-xp');
  });
});

describe('advise (madvise) and residency (mincore)', () => {
  test('DontNeed on private anonymous memory drops the pages: residency shows them gone, reads give zeros', () => {
    using m = mapAnonymous(32 * PAGE_SIZE);
    m.bytes.fill(0xff);
    expect(Array.from(m.residency())).toEqual(new Array(32).fill(1));
    m.advise(Advice.DontNeed, 8 * PAGE_SIZE, 16 * PAGE_SIZE);
    const resident = m.residency();
    expect(Array.from(resident.subarray(0, 8))).toEqual(new Array(8).fill(1));
    expect(Array.from(resident.subarray(8, 24))).toEqual(new Array(16).fill(0));
    expect(Array.from(resident.subarray(24))).toEqual(new Array(8).fill(1));
    expect(m.bytes.subarray(8 * PAGE_SIZE, 24 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    expect(m.bytes[0]).toBe(0xff);
  });

  test('PopulateWrite faults every page in without touching it from JavaScript', () => {
    using m = mapAnonymous(16 * PAGE_SIZE);
    expect(m.residency().every((r) => r === 0)).toBe(true);
    m.advise(Advice.PopulateWrite);
    expect(m.residency().every((r) => r === 1)).toBe(true);
  });

  test('residency counts the pages a byte range touches', () => {
    using m = mapAnonymous(4 * PAGE_SIZE);
    expect(m.residency(PAGE_SIZE - 1, 2).length).toBe(2);
    expect(m.residency(0, 0).length).toBe(0);
  });
});

// MADV_GUARD_INSTALL and MADV_GUARD_REMOVE came with Linux 6.13.
const [major, minor] = release().split('.').map(Number);
const guardAdvice = major > 6 || (major === 6 && minor >= 13);

describe('guard pages by madvise (Linux 6.13)', () => {
  (guardAdvice ? test : test.skip)(
    'GuardInstall: neighbours keep their bytes in one VMA; GuardRemove reads zeros; a touch of a guard is SIGSEGV',
    () => {
      const child = runFixture('memory-child.js', 'guardAdvice');
      expect(child.stdout).toBe('edges 7 7, vmas +0\nremoved 0\n');
      expect(child.signal).toBe('SIGSEGV');
    },
  );
});

// The kernel's own accounting (/proc/self/smaps), compared with the test's own reading of it.
describe('memory(): what the kernel counts for the mapping', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  // smaps' figures for the VMA holding `address`, in bytes, under memory()'s names.
  function kernelSays(address: bigint) {
    const s = smapsOf(address)!;
    const kB = (name: string) => (s[name] ?? 0) * 1024;
    return {
      size: kB('Size'),
      vmas: 1,
      rss: kB('Rss'),
      pss: kB('Pss'),
      sharedClean: kB('Shared_Clean'),
      sharedDirty: kB('Shared_Dirty'),
      privateClean: kB('Private_Clean'),
      privateDirty: kB('Private_Dirty'),
      anonymous: kB('Anonymous'),
      anonHugePages: kB('AnonHugePages'),
      filePmdMapped: kB('FilePmdMapped'),
      swap: kB('Swap'),
      locked: kB('Locked'),
    };
  }

  (TMP_IN_MEMORY ? test.skip : test)(
    'a shared file mapping with 5 pages written: 5 resident, dirty, private to this process (not on tmpfs)',
    () => {
      const path = fileWith(dir, 'dirty.bin', new Uint8Array(16 * PAGE_SIZE));
      evictFile(path); // written back and dropped: no page is in the cache, dirty or in a large folio
      using m = mapFile(path, { mode: 'r+' });
      for (let page = 0; page < 5; page++) m.bytes[page * 2 * PAGE_SIZE] = 1; // a write fault maps no neighbour
      const mem = m.memory();
      expect(mem).toEqual(kernelSays(m.address));
      expect([mem.size, mem.rss, mem.privateDirty, mem.anonymous]).toEqual([
        16 * PAGE_SIZE,
        5 * PAGE_SIZE,
        5 * PAGE_SIZE,
        0,
      ]);
    },
  );

  test("a 'copy' mapping with 3 pages written: 3 anonymous pages (the private copies)", () => {
    const path = fileWith(dir, 'copy.bin', new Uint8Array(8 * PAGE_SIZE).fill(1));
    using m = mapFile(path, { mode: 'copy' });
    for (let page = 0; page < 3; page++) m.bytes[page * 2 * PAGE_SIZE] = 2;
    const mem = m.memory();
    expect(mem).toEqual(kernelSays(m.address));
    expect([mem.anonymous, mem.privateDirty]).toEqual([3 * PAGE_SIZE, 3 * PAGE_SIZE]);
  });

  test('locked pages count as Locked; a part protected apart is a second VMA, summed', () => {
    const path = fileWith(dir, 'locked.bin', new Uint8Array(4 * PAGE_SIZE));
    using m = mapFile(path, { mode: 'r+' });
    m.lock(0, PAGE_SIZE);
    m.protect(Prot.Read, 2 * PAGE_SIZE);
    const mem = m.memory();
    expect([mem.vmas, mem.size, mem.locked]).toEqual([3, 4 * PAGE_SIZE, PAGE_SIZE]);
  });

  test('after unmap(): ERR_MAPPING_CLOSED', () => {
    const m = mapAnonymous(PAGE_SIZE);
    m.unmap();
    expect(() => m.memory()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_CLOSED' }));
  });
});

// Whether this kernel can name anonymous memory, read from its own configuration.
const config = existsSync('/proc/config.gz') ? gunzipSync(readFileSync('/proc/config.gz')).toString('latin1') : '';
const canName = /^CONFIG_ANON_VMA_NAME=y$/m.test(config);
const cannotName = /^# CONFIG_ANON_VMA_NAME is not set$/m.test(config);

describe('mapAnonymous({ name }) (PR_SET_VMA_ANON_NAME)', () => {
  (canName ? test : test.skip)('shows as [anon:name] in /proc/self/maps, kept across a resize that moves', () => {
    using m = mapAnonymous(4 * PAGE_SIZE, { name: 'mman test heap' });
    const line = () =>
      readFileSync('/proc/self/maps', 'latin1')
        .split('\n')
        .find((l) => l.includes('[anon:mman test heap]'));
    expect(m.name).toBe('mman test heap');
    expect(line()).toBeDefined();
    m.resize(1024 * PAGE_SIZE);
    expect(line()).toMatch(new RegExp(`^${m.address.toString(16)}-`));
  });

  (cannotName ? test : test.skip)('a kernel without CONFIG_ANON_VMA_NAME: mapped all the same, name undefined', () => {
    using m = mapAnonymous(PAGE_SIZE, { name: 'unnamed here' });
    m.bytes[0] = 1;
    expect(m.name).toBeUndefined();
    expect(readFileSync('/proc/self/maps', 'latin1')).not.toContain('[anon:unnamed here]');
  });

  test('a name the kernel would refuse: ERR_INVALID_ARG_VALUE / TYPE before mapping', () => {
    // Open regions only: the collector may release retired ones meanwhile.
    const open = () => mappingStats().regions - mappingStats().retiredRegions;
    const before = open();
    for (const name of ['', 'a[b]', 'dollar$', 'tab\t', 'x'.repeat(80), 'é'])
      expect(() => mapAnonymous(PAGE_SIZE, { name })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }),
      );
    expect(() => mapAnonymous(PAGE_SIZE, { name: 7 as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }),
    );
    expect(open()).toBe(before);
  });
});

describe('lock (mlock)', () => {
  // Run unprivileged: root (CAP_IPC_LOCK) is not bound by RLIMIT_MEMLOCK.
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  // The test needs a finite limit of at least 256 KiB for that child.
  const limit = /Max locked memory\s+(\S+)/.exec(
    spawnSync('cat', ['/proc/self/limits'], { encoding: 'utf8', ...asNobody }).stdout,
  )?.[1];
  const usable = limit !== undefined && limit !== 'unlimited' && Number(limit) >= 256 * 1024;
  (usable ? test : test.skip)(
    `locks pages into RAM within RLIMIT_MEMLOCK, and past it fails clearly${usable ? '' : ` (skipped: RLIMIT_MEMLOCK is ${limit} here)`}`,
    () => {
      const child = runFixture('memory-child.js', 'lock', [], [], asNobody);
      expect(child.stderr).toBe('');
      const out = JSON.parse(child.stdout);
      expect(out.resident).toBe(true);
      expect(out.locked).toBeGreaterThanOrEqual(256);
      expect(['ENOMEM', 'EPERM']).toContain(out.code);
      expect(out.syscall).toBe('mlock');
      expect(out.message).toMatch(/^(ENOMEM|EPERM): .+, mlock$/);
    },
  );

  test('onFault locks pages as they are touched (mlock2 MLOCK_ONFAULT)', () => {
    using m = mapAnonymous(8 * PAGE_SIZE);
    m.lock(0, undefined, { onFault: true });
    expect(m.residency().every((r) => r === 0)).toBe(true);
    expect(smapsOf(m.address)!.Locked).toBe(0); // nothing faulted in, nothing locked yet
    m.bytes[0] = 1;
    expect(m.residency()[0]).toBe(1);
    expect(smapsOf(m.address)!.Locked).toBe(PAGE_SIZE / 1024); // the page touched, locked
    m.unlock();
    expect(smapsOf(m.address)!.Locked).toBe(0);
  });
});
