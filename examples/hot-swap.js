// An HTTP server that sends a mapped file with no copy, and swaps it for a new version while
// a client in another process keeps requesting it: the new version is written to a temporary
// file beside the old one and renamed over it, then mapped; the old mapping is unmapped at once,
// even while responses are still sending its pages. Every body must be one whole version.
//   node examples/hot-swap.js
'use strict';
const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { mapFile } = require('mman');

const SIZE = 4 << 20;   // each version is 4 MiB: every 32-bit word holds its version number
const VERSIONS = 20;    // published 100 ms apart
const CONNECTIONS = 4;  // the client's concurrent requests

if (process.argv[2] === 'client') {
  // The client: CONNECTIONS requests at a time until told to stop; checks every body.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const seen = new Map();  // version -> responses
  let requests = 0;
  let torn = 0;
  let inFlight = 0;
  let stopping = false;
  const check = (body) => {
    const words = new Uint32Array(body.buffer, body.byteOffset, body.length >>> 2);
    const version = words[0];
    const whole = body.length === SIZE && version >= 1 && version <= VERSIONS && words.every((w) => w === version);
    if (whole) seen.set(version, (seen.get(version) ?? 0) + 1);
    else torn += 1;
  };
  const next = () => {
    inFlight -= 1;
    if (!stopping) request();
    else if (inFlight === 0) {
      agent.destroy();
      process.send({ requests, torn, versions: seen.size }, () => process.disconnect());
    }
  };
  const request = () => {
    inFlight += 1;
    http.get({ port: Number(process.argv[3]), agent }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        requests += 1;
        check(Buffer.concat(chunks));  // the whole body, in one aligned buffer
        next();
      });
    }).on('error', (err) => {
      requests += 1;
      torn += 1;  // a response cut short is torn too
      console.log(`request failed: ${err.message}`);
      next();
    });
  };
  process.once('message', () => { stopping = true; });
  for (let i = 0; i < CONNECTIONS; i++) request();
  process.send('ready');
} else {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mman-example-'));
  const file = path.join(dir, 'site.bin');

  // Writes version `v` to a temporary file in the same directory (rename() cannot cross file
  // systems), makes it durable, and renames it over `file`: whoever opens `file` gets the old
  // version or the new one, whole, never one being written.
  const publish = (v) => {
    const tmp = path.join(dir, `.site.bin.${v}.tmp`);
    const fd = fs.openSync(tmp, 'wx');
    fs.writeSync(fd, new Uint32Array(SIZE / 4).fill(v));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  };

  publish(1);
  let served = { map: mapFile(file), sending: 0 };  // what requests get, and its responses under way
  let unmappedWhileSending = 0;

  const server = http.createServer((req, res) => {
    const now = served;
    now.sending += 1;
    res.on('close', () => { now.sending -= 1; });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': now.map.length });
    res.end(now.map.bytes);  // the mapped pages go to the socket; no copy in JavaScript
  });

  server.listen(0, '127.0.0.1', () => {
    const client = fork(__filename, ['client', String(server.address().port)]);
    client.once('message', () => {
      let version = 1;
      const timer = setInterval(() => {
        version += 1;
        publish(version);
        const old = served;
        served = { map: mapFile(file), sending: 0 };  // `file` names the new version since the rename
        if (old.sending > 0) unmappedWhileSending += 1;
        old.map.unmap();  // at once: the pages stay for the responses still sending them
        if (version === VERSIONS) {
          clearInterval(timer);
          client.send('stop');
        }
      }, 100);
      client.once('message', (result) => {
        console.log(`${result.requests} responses of ${SIZE} bytes, ${result.torn} torn or mixed`);
        console.log(`${result.versions} versions served; ${unmappedWhileSending} unmapped while responses were still sending them`);
        if (result.torn !== 0 || result.versions < 2) process.exitCode = 1;
      });
    });
    client.on('exit', (code) => {
      if (code !== 0) process.exitCode = 1;
      server.close();
      server.closeAllConnections();
      served.map.unmap();
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });
}
