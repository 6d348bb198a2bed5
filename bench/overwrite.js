#!/usr/bin/env node
// What an HTTP server that sends a mapped file (res.end(map.bytes)) delivers while another
// thread replaces the file's contents: in place (fs.writeFileSync, which truncates first; a
// write over the old bytes without truncating; a write through a shared writable mapping),
// or by writing a new file and renaming it over the old name, after which the server maps
// the new file and unmaps the old one. The server maps the file guarded, in the mode given,
// and never reads the mapping from JavaScript: the kernel copies the pages to the socket.
// A client in this process makes --requests requests, four at a time, and checks every body.
//
//   node bench/overwrite.js [--requests 300] [--size 1M] [--only writeFileSync:r,rename:r]
//
// Prints one row per writer and server mapping mode: whole bodies, bodies cut short, bodies
// of full length that mix two versions, the server's socket errors by code, the writer's
// passes, and whether the guard saw a truncation (map.truncated).
'use strict';
const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const { mapFile } = require('..');
const { parseSize } = require('../lib/cli/measure');

const CONNECTIONS = 4;
const RUNS = [
  ['writeFileSync', 'r'],
  ['writeFileSync', 'copy'],
  ['writeFileSync', 'r+'],
  ['pwrite', 'r'],
  ['mapping', 'r'],
  ['rename', 'r'],
];

// Version v of the file: every 32-bit word holds v.
const version = (size, v) => new Uint32Array(size / 4).fill(v);

if (!isMainThread) {
  // The writer: replaces the file's contents with versions 2, 3, 1, 2, 3, ... until told to
  // stop, in the way it was given; a pass of `rename` also tells the server to map the file again.
  const { file, size, writer } = workerData;
  const bodies = [1, 2, 3].map((v) => version(size, v));
  const stop = new Int32Array(workerData.stop);
  let passes = 0;
  const target = writer === 'mapping' ? mapFile(file, { mode: 'r+' }) : null;
  while (Atomics.load(stop, 0) === 0) {
    const body = bodies[(passes + 1) % 3];
    if (writer === 'writeFileSync') fs.writeFileSync(file, body);
    else if (writer === 'pwrite') {
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, body, 0, size, 0);
      fs.closeSync(fd);
    } else if (writer === 'mapping') target.bytes.set(new Uint8Array(body.buffer));
    else {
      const tmp = `${file}.${passes}.tmp`;
      fs.writeFileSync(tmp, body);
      fs.renameSync(tmp, file);
      parentPort.postMessage('renamed');
    }
    passes += 1;
    Atomics.wait(stop, 0, 0, 1); // a millisecond between passes
  }
  target?.unmap();
  parentPort.postMessage({ passes });
} else if (process.argv[2] === 'server') {
  // The server: maps the file, answers every request with the mapping's pages, counts its
  // sockets' errors; the writer runs in a worker thread of this process.
  const { file, size, writer, mode } = JSON.parse(process.argv[3]);
  let map = mapFile(file, { mode, guard: true });
  const maps = [map];
  const errors = {};
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-length': map.length });
    res.end(map.bytes);
  });
  server.on('clientError', (err, socket) => {
    errors[err.code ?? err.message] = (errors[err.code ?? err.message] ?? 0) + 1;
    socket.destroy();
  });
  const stop = new SharedArrayBuffer(4);
  let worker;
  server.listen(0, '127.0.0.1', () => {
    worker = new Worker(__filename, { workerData: { file, size, writer, stop } });
    worker.on('message', (m) => {
      if (m !== 'renamed') return;
      const old = map;
      map = mapFile(file, { mode, guard: true });
      maps.push(map);
      old.unmap();
    });
    worker.once('online', () => process.send({ port: server.address().port }));
  });
  process.once('message', () => {
    Atomics.store(new Int32Array(stop), 0, 1);
    worker.on('message', (m) => {
      if (m === 'renamed') return;
      const truncated = maps.some((m) => m.truncated);
      process.send({ passes: m.passes, errors, truncated }, () => process.exit(0));
    });
  });
} else {
  const args = process.argv.slice(2);
  const option = (name, fallback) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : fallback);
  const requests = Number(option('requests', 300));
  const size = parseSize(option('size', '1M'));
  const only = option('only', undefined)?.split(',');
  const runs = only ? RUNS.filter(([w, m]) => only.includes(`${w}:${m}`)) : RUNS;

  // `requests` requests over CONNECTIONS keep-alive connections; each body is whole (one
  // version, full length), short (the response ended early or failed) or mixed.
  const load = (port) =>
    new Promise((resolve) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
      const counts = { whole: 0, short: 0, mixed: 0 };
      let started = 0;
      let done = 0;
      const settle = (kind) => {
        counts[kind] += 1;
        if (++done === requests) {
          agent.destroy();
          resolve(counts);
        } else if (started < requests) request();
      };
      const request = () => {
        started += 1;
        http
          .get({ port, host: '127.0.0.1', agent }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('error', () => {}); // a body cut short: 'close' counts it
            res.on('close', () => {
              const body = Buffer.concat(chunks);
              if (!res.complete || body.length !== size) return settle('short');
              const words = new Uint32Array(body.buffer, body.byteOffset, size / 4);
              settle(words.every((w) => w === words[0]) && words[0] !== 0 ? 'whole' : 'mixed');
            });
          })
          .on('error', () => settle('short')); // no response at all
      };
      for (let i = 0; i < CONNECTIONS; i++) request();
    });

  (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mman-overwrite-'));
    console.log(`${requests} requests for a ${size}-byte mapped file, ${CONNECTIONS} at a time, while a thread of the server replaces it`);
    console.log('');
    console.log('writer         server map  whole  short  mixed  server socket errors   writer passes  map.truncated');
    try {
      for (const [writer, mode] of runs) {
        const file = path.join(dir, `${writer}-${mode}.bin`);
        fs.writeFileSync(file, version(size, 1));
        const server = fork(__filename, ['server', JSON.stringify({ file, size, writer, mode })]);
        const [{ port }] = await new Promise((resolve) => server.once('message', (...m) => resolve(m)));
        const counts = await load(port);
        server.send('stop');
        const result = await new Promise((resolve) => server.once('message', resolve));
        const errors = Object.entries(result.errors).map(([code, n]) => `${n} ${code}`).join(', ') || 'none';
        console.log(
          `${writer.padEnd(13)}  ${`'${mode}'`.padEnd(10)}  ${String(counts.whole).padStart(5)}  ${String(counts.short).padStart(5)}  ` +
            `${String(counts.mixed).padStart(5)}  ${errors.padEnd(21)}  ${String(result.passes).padStart(13)}  ${result.truncated}`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  })().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
