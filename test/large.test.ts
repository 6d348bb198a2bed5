// Mappings larger than one ArrayBuffer can be (4 GiB on Node 20): windows reach every byte.
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { mapFile, MAX_BUFFER_LENGTH, mappingStats, PAGE_SIZE } from '../src';
import { tempDir } from './helpers';

const GiB = 1024 ** 3;

test('a 6 GiB sparse file maps; windows read and write anywhere; buffer covers it (Node 22+) or says to use windows (Node 20)', async () => {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 'sparse.bin');
  const fd = openSync(path, 'w+');
  try {
    ftruncateSync(fd, 6 * GiB);
    writeSync(fd, Buffer.from('far away'), 0, 8, 5 * GiB + 123);
    using m = mapFile(path, { mode: 'r+' });
    expect(m.length).toBe(6 * GiB);

    // Read what the file holds at 5 GiB, write near the very end, and see it in the file.
    expect(Buffer.from(m.view(5 * GiB + 123, 8)).toString()).toBe('far away');
    m.view(6 * GiB - 4, 4).set([1, 2, 3, 4]);
    m.view(0, 1)[0] = 9;
    await m.flush({ offset: 6 * GiB - PAGE_SIZE });
    const tail = Buffer.alloc(4);
    readSync(fd, tail, 0, 4, 6 * GiB - 4);
    expect(Array.from(tail)).toEqual([1, 2, 3, 4]);

    if (MAX_BUFFER_LENGTH < 6 * GiB) {
      // Node 20: no ArrayBuffer can cover it all.
      expect(() => m.buffer).toThrow(
        expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/view\(offset, length\)/) }),
      );
      expect(() => m.view(0, MAX_BUFFER_LENGTH + 1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
      const window = m.view(GiB, MAX_BUFFER_LENGTH); // the largest window there is
      expect(window.length).toBe(MAX_BUFFER_LENGTH);
    } else {
      // Node 22+: one ArrayBuffer covers the whole mapping.
      expect(m.buffer.byteLength).toBe(6 * GiB);
      expect(m.bytes[6 * GiB - 1]).toBe(4);
    }
    const windows = [m.view(GiB, 16), m.view(5 * GiB, 16)];
    m.unmap({ detachViews: true });
    expect(windows.map((w) => w.length)).toEqual([0, 0]);
    expect(mappingStats().bytes % PAGE_SIZE).toBe(0);
  } finally {
    closeSync(fd);
    cleanup();
  }
});
