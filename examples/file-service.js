// A service's files: an index read through a mapping without ever stalling the event loop
// on the disk, and an append-only log that grows its file through a mapping.
//   node examples/file-service.js
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { mapFile, mapFileAsync, PAGE_SIZE } = require('mman');

async function main(dir) {
  const indexFile = path.join(dir, 'index.bin');
  fs.writeFileSync(indexFile, new Uint32Array(1 << 20).map((_, i) => i ^ 0x5a5a)); // 4 MiB

  // Opened on the threadpool and made resident there (madvise MADV_POPULATE_READ in chunks):
  // a timer keeps firing meanwhile, and no read below waits for the disk.
  const ticks = setInterval(() => {}, 1);
  const index = await mapFileAsync(indexFile, { signal: AbortSignal.timeout(10_000) });
  clearInterval(ticks);
  const words = new Uint32Array(index.buffer);
  const resident = index.residency().every((page) => page === 1);
  console.log(`index: ${index.length} bytes, every page resident: ${resident}, word 1000 = ${words[1000]}`);
  const { rss, pss } = index.memory(); // the kernel's own accounting (/proc/self/smaps)
  console.log(`index memory: rss ${rss} bytes, pss ${pss}`);
  index.unmap();

  // An append-only log: created at one page, grown with the file, synced off-thread.
  const logFile = path.join(dir, 'events.log');
  const log = mapFile(logFile, { mode: 'r+', create: true, length: PAGE_SIZE });
  let end = 0;
  for (let i = 0; i < 1000; i++) {
    const line = Buffer.from(`event ${i}\n`);
    if (end + line.length > log.length) log.resize(log.length * 2, { growFile: true });
    log.bytes.set(line, end);
    end += line.length;
  }
  await log.flush({ length: end }); // msync(MS_SYNC) on the threadpool
  log.unmap();
  fs.truncateSync(logFile, end); // trim the unused tail: mman never shrinks a file itself
  const lines = fs.readFileSync(logFile, 'utf8').trimEnd().split('\n');
  console.log(`log: ${lines.length} lines on disk, last "${lines.at(-1)}"`);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mman-example-'));
main(dir)
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }))
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
