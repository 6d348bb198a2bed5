// Every enum member equals the constant the addon compiled from this machine's headers.
import { Advice, LockFlags, MapFlags, Prot, RemapFlags, SyncFlags, PAGE_SIZE } from '../src';
import { CONSTANT_NAMES, NATIVE_FUNCTIONS, native, OPTIONAL_CONSTANT_NAMES, type NativeConstants } from '../src/native';

const expected: Array<[string, Record<string, string | number>, Record<string, string>]> = [
  ['Prot', Prot, { None: 'PROT_NONE', Read: 'PROT_READ', Write: 'PROT_WRITE', Exec: 'PROT_EXEC' }],
  [
    'MapFlags',
    MapFlags,
    {
      Shared: 'MAP_SHARED',
      Private: 'MAP_PRIVATE',
      SharedValidate: 'MAP_SHARED_VALIDATE',
      Fixed: 'MAP_FIXED',
      Anonymous: 'MAP_ANONYMOUS',
      NoReserve: 'MAP_NORESERVE',
      Populate: 'MAP_POPULATE',
      NonBlock: 'MAP_NONBLOCK',
      Locked: 'MAP_LOCKED',
      Stack: 'MAP_STACK',
      HugeTLB: 'MAP_HUGETLB',
      Huge2MB: 'MAP_HUGE_2MB',
      Huge1GB: 'MAP_HUGE_1GB',
      Sync: 'MAP_SYNC',
      FixedNoReplace: 'MAP_FIXED_NOREPLACE',
    },
  ],
  [
    'Advice',
    Advice,
    {
      Normal: 'MADV_NORMAL',
      Random: 'MADV_RANDOM',
      Sequential: 'MADV_SEQUENTIAL',
      WillNeed: 'MADV_WILLNEED',
      DontNeed: 'MADV_DONTNEED',
      Free: 'MADV_FREE',
      Remove: 'MADV_REMOVE',
      DontFork: 'MADV_DONTFORK',
      DoFork: 'MADV_DOFORK',
      Mergeable: 'MADV_MERGEABLE',
      Unmergeable: 'MADV_UNMERGEABLE',
      HugePage: 'MADV_HUGEPAGE',
      NoHugePage: 'MADV_NOHUGEPAGE',
      DontDump: 'MADV_DONTDUMP',
      DoDump: 'MADV_DODUMP',
      WipeOnFork: 'MADV_WIPEONFORK',
      KeepOnFork: 'MADV_KEEPONFORK',
      Cold: 'MADV_COLD',
      PageOut: 'MADV_PAGEOUT',
      PopulateRead: 'MADV_POPULATE_READ',
      PopulateWrite: 'MADV_POPULATE_WRITE',
      DontNeedLocked: 'MADV_DONTNEED_LOCKED',
      Collapse: 'MADV_COLLAPSE',
      GuardInstall: 'MADV_GUARD_INSTALL',
      GuardRemove: 'MADV_GUARD_REMOVE',
    },
  ],
  ['SyncFlags', SyncFlags, { Async: 'MS_ASYNC', Invalidate: 'MS_INVALIDATE', Sync: 'MS_SYNC' }],
  ['RemapFlags', RemapFlags, { MayMove: 'MREMAP_MAYMOVE', Fixed: 'MREMAP_FIXED', DontUnmap: 'MREMAP_DONTUNMAP' }],
  ['LockFlags', LockFlags, { OnFault: 'MLOCK_ONFAULT' }],
];

// Linux 6.13: Debian 12's linux-libc-dev (6.1) lacks them.
const NEWER_THAN_HEADERS = new Set(['MADV_GUARD_INSTALL', 'MADV_GUARD_REMOVE']);

describe.each(expected)('%s', (_name, enumObject, cNames) => {
  const members = Object.keys(enumObject).filter((k) => Number.isNaN(Number(k)));

  test('names every member', () => {
    expect(members.sort()).toEqual(Object.keys(cNames).sort());
  });

  // Constants newer than the headers this addon was built with are absent from it: say so.
  const constants = native.constants as Readonly<Record<string, number | undefined>>;
  const inHeaders = Object.entries(cNames).filter(([, cName]) => cName in constants);
  const missing = Object.entries(cNames).filter(([, cName]) => !(cName in constants));
  test.each(inHeaders)('%s equals %s from the C headers', (member, cName) => {
    expect(constants[cName]).toEqual(expect.any(Number));
    expect(enumObject[member]).toBe(constants[cName]);
  });
  for (const [member, cName] of missing)
    test.skip(`${member}: ${cName} is not in the headers this addon was built with (too old)`, () => {});
  test('only constants newer than every supported header set may be missing', () => {
    expect(missing.map(([, cName]) => cName).filter((c) => !NEWER_THAN_HEADERS.has(c))).toEqual([]);
  });
});

test('Advice never includes MADV_HWPOISON (100) or MADV_SOFT_OFFLINE (101)', () => {
  expect(Object.values(Advice)).not.toContain(100);
  expect(Object.values(Advice)).not.toContain(101);
});

test('PAGE_SIZE is sysconf(_SC_PAGESIZE), a power of two >= 4096', () => {
  expect(PAGE_SIZE).toBe(native.pageSize);
  expect(PAGE_SIZE).toBeGreaterThanOrEqual(4096);
  expect(PAGE_SIZE & (PAGE_SIZE - 1)).toBe(0);
});

test('the addon registers exactly the functions src/native.ts declares (NATIVE_FUNCTIONS, which the compiler checks against NativeAddon)', () => {
  const registered = Object.entries(native)
    .filter(([, value]) => typeof value === 'function')
    .map(([name]) => name)
    .sort();
  expect(registered).toEqual([...NATIVE_FUNCTIONS].sort());
});

test('the addon exports exactly the constants src/native.ts names (CONSTANT_NAMES), and the optional ones only where the headers have them', () => {
  const exported = Object.keys(native.constants);
  const optional: readonly string[] = OPTIONAL_CONSTANT_NAMES;
  expect(exported.filter((name) => !optional.includes(name)).sort()).toEqual([...CONSTANT_NAMES].sort());
  for (const name of exported) expect(native.constants[name as keyof NativeConstants]).toEqual(expect.any(Number));
  expect('MAP_32BIT' in native.constants).toBe(process.arch === 'x64');
});

// The addon's answers that are neither a value nor a negative errno (native/answers.h):
// exported by name, each out of reach of the values its call returns and of the errno range.
describe('the answers of the addon', () => {
  const MAX_ERRNO = 4095;
  const a = native.answers;

  test('are exactly the named ones', () => {
    expect(Object.keys(a).sort()).toEqual([
      'GUARD_FULL',
      'GUARD_SLOTS',
      'LOCK_ACQUIRED',
      'LOCK_BUSY',
      'LOCK_OWNER_DIED',
      'LOCK_TIMED_OUT',
      'MAP_GUARD',
      'MAP_HINT',
      'MAP_KEEP_FILE',
      'MAP_LABEL',
      'MAP_LIMIT',
      'MISALIGNED',
      'MOVED_NOT_GROWN',
      'STOPPING',
      'WAIT_CANCELLED',
      'WAIT_NOT_EQUAL',
      'WAIT_OK',
      'WAIT_TIMED_OUT',
    ]);
    for (const value of Object.values(a)) expect(Number.isInteger(value)).toBe(true);
  });

  test('wait results are distinct, small and not errnos', () => {
    const results = [a.WAIT_OK, a.WAIT_NOT_EQUAL, a.WAIT_TIMED_OUT, a.WAIT_CANCELLED];
    expect(new Set(results).size).toBe(4);
    for (const r of results) expect(r).toBeGreaterThanOrEqual(0);
  });

  test('lock results are distinct, small and not errnos', () => {
    const results = [a.LOCK_ACQUIRED, a.LOCK_OWNER_DIED, a.LOCK_BUSY, a.LOCK_TIMED_OUT];
    expect(new Set(results).size).toBe(4);
    for (const r of results) expect(r).toBeGreaterThanOrEqual(0);
  });

  test('MISALIGNED is below the errno range: no count, id, result or errno can equal it', () => {
    expect(a.MISALIGNED).toBeLessThan(-MAX_ERRNO);
  });

  test('MAP_LIMIT and GUARD_FULL are below the errno range and distinct: map() otherwise answers a handle or an errno', () => {
    for (const answer of [a.MAP_LIMIT, a.GUARD_FULL]) {
      expect(answer).toBeLessThan(-MAX_ERRNO);
      expect(answer).not.toBe(a.MISALIGNED);
    }
    expect(a.MAP_LIMIT).not.toBe(a.GUARD_FULL);
    const bits = [a.MAP_KEEP_FILE, a.MAP_GUARD, a.MAP_HINT, a.MAP_LABEL];
    for (const bit of bits) expect(bit > 0 && (bit & (bit - 1)) === 0).toBe(true);
    expect(bits.reduce((x, y) => x | y)).toBe(bits.reduce((x, y) => x + y)); // distinct bits
  });

  test('STOPPING is below the errno range and distinct: wait() and mutexLock() otherwise answer a result, an errno or MISALIGNED', () => {
    expect(a.STOPPING).toBeLessThan(-MAX_ERRNO);
    expect([a.MISALIGNED, a.MAP_LIMIT, a.GUARD_FULL]).not.toContain(a.STOPPING);
  });

  test('MOVED_NOT_GROWN is positive: remap otherwise answers 0 or a negative errno', () => {
    expect(a.MOVED_NOT_GROWN).toBeGreaterThan(0);
  });

  test('a misuse of the addon itself throws with a Node code', () => {
    expect(() => native.unmap({} as never, null, false)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }),
    );
    expect(() => native.map(-1, 0, 0, -1, 0, undefined, '', 0, 4096)).toThrow(
      expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }),
    );
  });
});
