// Faults in mman's mappings that kill the process are named first; the APIs that write refuse
// read-only memory with a code; and the handlers leave everything else as it was (V8's
// WebAssembly trap handler, a SIGSEGV that is not ours). Each case runs in a child process.
import { spawnSync } from 'node:child_process';
import { fileWith, runFixture, tempDir } from './helpers';

let dir: string;
let cleanup: () => void;
let file: string;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  file = fileWith(dir, 'read-only.bin', Buffer.from('hello from the file.'));
});
afterEach(() => cleanup());

describe('a write into a read-only mapping', () => {
  test.each([
    ['write', 'a write through a view'],
    ['swap16', "Buffer#swap16 (a library decoding in place, in Node's own C++)"],
  ])('%s (%s): SIGSEGV, after a line on stderr naming mman, the file, the address and why', (mode) => {
    const child = runFixture('faults-child.js', mode, [file]);
    expect(child.stdout).toBe('mapped\n');
    expect(child.signal).toBe('SIGSEGV');
    expect(child.stderr).toMatch(/^mman: SIGSEGV at 0x[0-9a-f]+ in the mman mapping of '.*read-only\.bin' at 0x/);
    expect(child.stderr).toContain('(PROT_READ): a write to read-only memory');
  });

  test('Mutex, RingBuffer and a wait that counts its waiters refuse it: ERR_MAPPING_READ_ONLY; a plain wait and notify do not write, and work (notify wakes a waiter)', () => {
    const child = runFixture('faults-child.js', 'refused', [file]);
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual({
      writable: false,
      mutex: 'ERR_MAPPING_READ_ONLY',
      ring: 'ERR_MAPPING_READ_ONLY',
      waitWithCount: 'ERR_MAPPING_READ_ONLY',
      waitAsyncWithCount: 'ERR_MAPPING_READ_ONLY',
      wait: 'timed-out',
      notify: 1, // through the read-only mapping, it woke the one waiter on a writable one
      woke: 'ok',
    });
  });

  const immutable =
    spawnSync(process.execPath, [
      '--js-immutable-arraybuffer',
      '-e',
      "process.exit(typeof ArrayBuffer.prototype.transferToImmutable === 'function' ? 0 : 1)",
    ]).status === 0;
  (immutable ? test : test.skip)(
    'where the runtime has immutable ArrayBuffers (--js-immutable-arraybuffer): a TypeError, and the process lives',
    () => {
      const child = runFixture('faults-child.js', 'immutable', [file], ['--js-immutable-arraybuffer']);
      expect(child.stderr).toBe('');
      expect(JSON.parse(child.stdout)).toEqual({
        immutable: true,
        write: 'TypeError',
        fill: 'TypeError',
        first: 104,
        afterProtect: { immutableBefore: true, written: 7 },
        afterMapFixed: { immutableBefore: true, written: 9 },
      });
    },
  );
});

describe("the handlers leave what is not mman's alone", () => {
  test("V8's WebAssembly trap handler still turns an out-of-bounds access into a RuntimeError", () => {
    const child = runFixture('faults-child.js', 'wasm', [file]);
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ trapped: 'RuntimeError', inBounds: 0 });
  });

  test('a SIGSEGV outside any mapping of mman: no word from mman, the usual death', () => {
    const child = runFixture('faults-child.js', 'foreign', [file]);
    expect(child.stdout).toBe('mapped\n');
    expect(child.signal).toBe('SIGSEGV');
    expect(child.stderr).not.toContain('mman:');
  });
});
