// Zero-copy file I/O: read a file through a mapping as a Buffer, with no read() copies;
// write through a shared mapping and sync it to disk.
//   node examples/zero-copy-file.js
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { mapFile, Advice } = require('mman');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mman-example-'));
const file = path.join(dir, 'records.bin');
try {
  // 1 MiB of little-endian uint32 records: record i holds i * 3.
  const records = new Uint32Array(256 * 1024).map((_, i) => i * 3);
  fs.writeFileSync(file, records);

  // Read: the Buffer and the Uint32Array are views of the mapped page cache, not copies.
  const map = mapFile(file, { advice: Advice.Sequential });
  try {
    const words = new Uint32Array(map.buffer);
    let sum = 0;
    for (let i = 0; i < words.length; i++) sum += words[i];
    const header = Buffer.from(map.buffer, 0, 16);
    console.log(`read ${map.length} bytes, sum ${sum}, first bytes ${header.toString('hex')}`);
  } finally {
    map.unmap(); // or `using map = mapFile(...)` where explicit resource management is available
  }

  // Write: a shared read-write mapping; sync() is msync(MS_SYNC), flush() the same off-thread.
  const shared = mapFile(file, { mode: 'r+', offset: 4096, length: 8 });
  new DataView(shared.buffer).setUint32(0, 0xdeadbeef, true);
  shared.sync();
  shared.unmap();
  const onDisk = fs.readFileSync(file).readUInt32LE(4096);
  console.log(`on disk at 4096: 0x${onDisk.toString(16)}`);
  if (onDisk !== 0xdeadbeef) throw new Error('write did not reach the file');

  // Copy-on-write: a private mapping may be written, and the file stays as it was.
  const copy = mapFile(file, { mode: 'copy' });
  copy.bytes.fill(0);
  copy.unmap();
  console.log(`after a private write, file still holds 0x${fs.readFileSync(file).readUInt32LE(4096).toString(16)}`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
