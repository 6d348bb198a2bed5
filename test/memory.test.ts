// protect, advise, residency, lock: what the kernel and another process see.
import { mapAnonymous, Advice, PAGE_SIZE, Prot } from '../src';
import { spawnSync } from 'node:child_process';
import { release } from 'node:os';
import { permsAt, runFixture, smapsOf } from './helpers';

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
