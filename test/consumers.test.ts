// Libraries nobody here wrote, handed a mapping's bytes as they would be handed a file read
// into memory: each must see exactly what it sees through fs.readFileSync, without a copy.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Reader } from 'mmdb-lib';
import { tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { mapFile } from '../src';
import { tempDir } from './helpers';

const MMDB = join(__dirname, 'data', 'GeoIP2-City-Test.mmdb');

// Addresses to look up: networks the test database holds, and a sweep of both address
// families that mostly finds nothing (a lookup that misses walks the tree too).
function addresses(): string[] {
  const out = ['81.2.69.142', '2.125.160.216', '89.160.20.112', '216.160.83.56', '67.43.156.1', '175.16.199.1'];
  out.push('202.196.224.1', '214.1.1.1', '214.78.120.1', '2001:218::1', '2a02:cf40::1', '2001:480::1');
  for (let a = 1; a < 224; a++) for (let b = 0; b < 256; b += 3) out.push(`${a}.${b}.${(a * b) & 0xff}.1`);
  for (let p = 0x200; p < 0x300; p++) out.push(`2001:${p.toString(16)}::7`);
  for (let p = 0xcf40; p <= 0xffff; p += 0x20) out.push(`2a02:${p.toString(16)}::1`);
  return out;
}

test('mmdb-lib: a Reader over map.bytes answers every lookup as one over readFileSync does', () => {
  const map = mapFile(MMDB);
  try {
    expect(Buffer.isBuffer(map.bytes)).toBe(true); // the Reader refuses anything else
    const mapped = new Reader(map.bytes);
    const read = new Reader(readFileSync(MMDB));
    let found = 0;
    const all = addresses();
    for (const ip of all) {
      const a = mapped.getWithPrefixLength(ip);
      expect([ip, a]).toEqual([ip, read.getWithPrefixLength(ip)]);
      if (a[0] !== null) found++;
    }
    expect(all.length).toBeGreaterThan(19_000);
    expect(found).toBeGreaterThan(200);
    expect(mapped.get('81.2.69.142')).toMatchObject({ city: { names: { en: 'London' } } });
    expect(mapped.metadata).toEqual(read.metadata);
  } finally {
    map.unmap();
  }
});

test('apache-arrow: tableFromIPC(map.bytes) reads every column in place, equal to the file read into memory', () => {
  const { dir, cleanup } = tempDir();
  try {
    const rows = 20_000;
    const table = tableFromArrays({
      id: Int32Array.from({ length: rows }, (_, i) => i),
      value: Float64Array.from({ length: rows }, (_, i) => i * 0.5),
      big: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i) << 33n),
      name: Array.from({ length: rows }, (_, i) => `row-${i % 977}`),
    });
    const file = join(dir, 'table.arrow');
    writeFileSync(file, tableToIPC(table, 'file'));
    const map = mapFile(file);
    try {
      const mapped = tableFromIPC(map.bytes);
      const read = tableFromIPC(readFileSync(file));
      expect(mapped.numRows).toBe(rows);
      for (const field of mapped.schema.fields) {
        const column = mapped.getChild(field.name)!;
        expect([field.name, column.toArray()]).toEqual([field.name, read.getChild(field.name)!.toArray()]);
        // Zero-copy: each chunk's values are a view of the mapping's own memory.
        for (const chunk of column.data)
          expect([field.name, chunk.values.buffer === map.buffer]).toEqual([field.name, true]);
      }
      expect(mapped.get(12_345)?.toJSON()).toEqual({ id: 12_345, value: 6172.5, big: 12_345n << 33n, name: 'row-621' });
    } finally {
      map.unmap();
    }
  } finally {
    cleanup();
  }
});
