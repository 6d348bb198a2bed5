// The claims of the Security section (README.md, in full in docs/safety.md), each shown with real processes and the
// kernel's own view of this process (/proc/self/maps).
import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  mapAnonymous,
  mapFile,
  Mapping,
  mmap,
  MapFlags,
  PAGE_SIZE,
  Prot,
  RingBuffer,
  SharedMemory,
  SHM_DIRECTORY,
} from '../src';
import { fileWith, fixture, permsAt, tempDir, uniqueName } from './helpers';

describe('no executable memory unless asked for', () => {
  test('every mapping mman makes on its own is mapped without PROT_EXEC', () => {
    const { dir, cleanup } = tempDir();
    const shm = SharedMemory.create(PAGE_SIZE);
    try {
      const path = fileWith(dir, 'x.bin', new Uint8Array(PAGE_SIZE));
      const made = [
        mapFile(path),
        mapFile(path, { mode: 'r+' }),
        mapFile(path, { mode: 'copy' }),
        mapAnonymous(PAGE_SIZE),
        mapAnonymous(PAGE_SIZE, { shared: true }),
        mapAnonymous(PAGE_SIZE, { populate: true }),
        shm.map(),
        shm.map({ readOnly: true }),
      ];
      for (const m of made) {
        expect(permsAt(m.address)).toMatch(/^r[w-]-[ps]$/);
        m.unmap();
      }
      using exec = mmap(PAGE_SIZE, Prot.Read | Prot.Exec, MapFlags.Private | MapFlags.Anonymous);
      expect(permsAt(exec.address)).toBe('r-xp'); // only when asked, explicitly
    } finally {
      shm.close();
      cleanup();
    }
  });
});

describe('MAP_FIXED is confined to pages the mapping owns', () => {
  test('mapFixed() replaces pages inside the mapping and nothing beside it', () => {
    const { dir, cleanup } = tempDir();
    try {
      const path = fileWith(dir, 'fixed.bin', new Uint8Array(PAGE_SIZE).fill(0x42));
      // Reserve four pages, then put the file's page in the second one.
      using region = mmap(4 * PAGE_SIZE, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous);
      region.bytes.fill(1);
      const fd = openSync(path, 'r');
      try {
        region.mapFixed(PAGE_SIZE, PAGE_SIZE, Prot.Read, MapFlags.Shared, fd, 0);
      } finally {
        closeSync(fd);
      }
      expect(region.bytes[0]).toBe(1);
      expect(region.bytes[PAGE_SIZE]).toBe(0x42);
      expect(region.bytes[2 * PAGE_SIZE]).toBe(1);
      expect(region.bytes[4 * PAGE_SIZE - 1]).toBe(1);
      expect(permsAt(region.address + BigInt(PAGE_SIZE))).toBe('r--s');
      expect(permsAt(region.address + BigInt(2 * PAGE_SIZE))).toBe('rw-p');
      // A read-only page inside: the mapping is no longer writable as a whole, and the APIs that
      // write refuse it rather than fault on that page.
      expect(region.writable).toBe(false);
      // Past its own end it refuses, before any syscall: the pages after it are someone else's.
      // Here a page of this test's own, so that only the refused call could change it.
      const after = region.address + BigInt(4 * PAGE_SIZE);
      let neighbour: Mapping | undefined;
      try {
        neighbour = mmap(
          PAGE_SIZE,
          Prot.Read | Prot.Write,
          MapFlags.Private | MapFlags.Anonymous | MapFlags.FixedNoReplace,
          -1,
          0,
          after,
        );
        neighbour.bytes.fill(0x99);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err; // taken already: still not ours to touch
      }
      expect(() =>
        region.mapFixed(3 * PAGE_SIZE, 2 * PAGE_SIZE, Prot.Read, MapFlags.Private | MapFlags.Anonymous),
      ).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      if (neighbour) {
        expect(neighbour.bytes.every((b) => b === 0x99)).toBe(true);
        expect(permsAt(after)).toBe('rw-p');
        neighbour.unmap();
      }
    } finally {
      cleanup();
    }
  });
});

describe('/dev/shm names', () => {
  test('a symlink planted under a name is never followed', () => {
    const name = uniqueName('link');
    const { dir, cleanup } = tempDir();
    const target = join(dir, 'target');
    writeFileSync(target, 'not yours');
    symlinkSync(target, join(SHM_DIRECTORY, name));
    try {
      expect(() => SharedMemory.open(name)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
      expect(() => SharedMemory.create(PAGE_SIZE, { name })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    } finally {
      rmSync(join(SHM_DIRECTORY, name), { force: true });
      cleanup();
    }
  });
});

describe('a hostile peer sharing the memory', () => {
  test.each([
    ['one writer, one reader', {}],
    ['many writers and readers', { writers: 'many', readers: 'many' }],
  ] as const)(
    'scribbling over a ring buffer (%s) cannot make the reader touch memory outside the ring',
    async (_, mode) => {
      const ring = RingBuffer.create(1 << 16, { spin: 0, ...mode });
      const data = ring.mapping.bytes;
      const started = runFixtureAsync('security-child.js', 'scribble', [`/proc/${process.pid}/fd/${ring.memory.fd}`]);
      let reads = 0;
      let typedErrors = 0;
      const payload = new Uint8Array(100).fill(7);
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline) {
        // This process writes too, so that there are records for the peer's scribbles to hit.
        try {
          ring.write(payload, { timeoutMs: 1 });
        } catch (err) {
          expect(typeof (err as { code?: unknown }).code).toBe('string'); // ENDED, if the peer wrote that word
          typedErrors++;
        }
        try {
          const message = ring.read({ timeoutMs: 1 });
          if (message) {
            // Whatever lengths the peer wrote, a message is a view inside the ring's own bytes.
            expect(message.buffer).toBe(data.buffer);
            expect(message.byteOffset).toBeGreaterThanOrEqual(4096); // past the header page
            expect(message.byteOffset + message.byteLength).toBeLessThanOrEqual(4096 + ring.capacity);
            reads++;
          }
        } catch (err) {
          expect(typeof (err as { code?: unknown }).code).toBe('string');
          typedErrors++;
        }
      }
      const child = await started;
      expect(child.stdout).toBe('scribbled\n');
      expect(reads + typedErrors).toBeGreaterThan(0);
      ring.close();
    },
  );

  test('a peer truncating a named segment: a guarded mapping survives, reads zeros, and says so', async () => {
    const name = uniqueName('truncate');
    const shm = SharedMemory.create(4 * PAGE_SIZE, { name });
    try {
      const m = shm.map({ guard: true });
      m.bytes.fill(9);
      const child = await runFixtureAsync('security-child.js', 'truncate', [join(SHM_DIRECTORY, name)]);
      expect(child.stdout).toBe('truncated\n');
      const view = new Uint8Array(m.buffer);
      expect(view[3 * PAGE_SIZE]).toBe(0);
      expect(m.truncated).toBe(true);
      expect(() => m.sync()).toThrow(expect.objectContaining({ code: 'ERR_MAPPING_TRUNCATED' }));
      m.unmap();
    } finally {
      shm.unlink();
      shm.close();
    }
  });
});

// A child process (test/fixtures/`file`, started with `mode`) that runs while this one keeps
// going (the peer acts concurrently).
function runFixtureAsync(
  file: string,
  mode: string,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fixture(file), mode, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
