// `mman bench serve` end to end: the compiled lib/cli/index.js in a child process, with real
// HTTP servers and a client in processes of their own, at its quick sizes. No speed is judged.
import { fork } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import type { ClientResult, ClientSpec } from '../src/cli/measure/serve-client';
import type { ServeReport } from '../src/cli/measure/serve';
import { mmanCommand } from './helpers';

const mman = mmanCommand;

const WAYS = ['mmap', 'buffer', 'stream', 'c-sendfile'];

test('--quick: a row for each size and way, every one serving the file byte for byte', async () => {
  const { stdout, stderr, status } = await mman('bench', 'serve', '--quick');
  expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
  const lines = stdout.split('\n');
  const header = lines.findIndex((l) => l.startsWith('size'));
  expect(lines[header]).toMatch(
    /^size +way +req\/s +\/buffer +\/stream +CPU us\/req +\/buffer +\/stream +busy +client +RSS +anon +verified +bad$/,
  );
  expect(lines[header + 1]).toMatch(/^-+( +-+)+$/);
  const rows = lines.slice(header + 2, header + 2 + 2 * WAYS.length).map((l) => l.split(/ +/));
  // The C floor is a row like the others: this machine has cc.
  expect(rows.map((r) => `${r[0]} ${r[1]}`)).toEqual(['4K', '256K'].flatMap((size) => WAYS.map((w) => `${size} ${w}`)));
  for (const row of rows) {
    const [size, way, rate, vsBuffer, vsStream, cpu, , , busy, client, rss, , verified, bad] = row;
    const where = `${size} ${way}`;
    expect({ where, rate: Number(rate) > 0, cpu: Number(cpu) > 0, rss: /^[\d.]+[KMG]$/.test(rss) }).toEqual({
      where,
      rate: true,
      cpu: true,
      rss: true,
    });
    expect(busy).toMatch(/^\d+%$/);
    expect(client).toMatch(/^\d+%$/);
    // The client hashed some bodies of each way and found none wrong.
    expect({ where, verified: Number(verified) > 0, bad }).toEqual({ where, verified: true, bad: '0' });
    if (way === 'buffer') expect(vsBuffer).toBe('1.00');
    if (way === 'stream') expect(vsStream).toBe('1.00');
  }
  expect(stdout).not.toMatch(/NaN|undefined|Infinity|skipped/);
}, 120_000);

test('--json: the report, with the machine, and every response of a run counted whole', async () => {
  const { stdout, status } = await mman(
    'bench',
    'serve',
    '--sizes',
    '8K',
    '--seconds',
    '0.3',
    '--warmup',
    '0',
    '--json',
  );
  expect(status).toBe(0);
  const report = JSON.parse(stdout) as ServeReport;
  expect(report.sizes).toEqual([8192]);
  expect(report.connections).toBe(4);
  expect(report.machine.cpus).toBeGreaterThan(0);
  expect(report.results.map((r) => r.way)).toEqual(WAYS);
  for (const r of report.results) {
    expect(r.requests).toBeGreaterThan(0);
    expect(r.verified).toBeGreaterThanOrEqual(r.requests); // 8 KiB: every body is hashed
    expect(r.bad).toBe(0);
    expect(r.failures).toEqual([]);
    expect(r.cpuSeconds).toBeGreaterThanOrEqual(0);
    expect(r.rss).toBeGreaterThan(r.rssAnon);
  }
}, 120_000);

test('the client catches a server that sends one wrong byte, or too few', async () => {
  const file = randomBytes(8192);
  const sha1 = createHash('sha1').update(file).digest('hex');
  let served = 0;
  const server = createServer((_req, res) => {
    served += 1;
    const body = Buffer.from(file);
    if (served % 2 === 0) body[served % body.length] ^= 1; // one bit of one byte
    res.writeHead(200, { 'content-length': served % 5 === 0 ? body.length - 1 : body.length });
    res.end(served % 5 === 0 ? body.subarray(1) : body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const spec: ClientSpec = {
    port: (server.address() as AddressInfo).port,
    connections: 2,
    pipeline: 1,
    size: file.length,
    sha1,
    verifyEvery: 1,
  };
  const client = fork(join(__dirname, '..', 'lib', 'cli', 'measure', 'serve-client.js'), [JSON.stringify(spec)]);
  try {
    await once(client, 'message'); // started
    while (served < 20) await new Promise((resolve) => setTimeout(resolve, 10));
    const answer = once(client, 'message');
    client.send('stop');
    const [result] = (await answer) as [ClientResult];
    expect(result.bad).toBeGreaterThan(0);
    expect(result.failures.join('\n')).toMatch(/body's SHA-1 [0-9a-f]{40}, the file's/);
    expect(result.failures.join('\n')).toMatch(/Content-Length 8191, the file has 8192 bytes/);
  } finally {
    client.kill();
    server.closeAllConnections();
    server.close();
  }
});

test('bad options are usage errors', async () => {
  for (const args of [
    ['--sizes', '4K,nope'],
    ['--seconds', '0'],
    ['--connections', '-1'],
    ['--pipeline', 'x'],
  ]) {
    const { status, stderr } = await mman('bench', 'serve', ...args);
    expect({ args, status }).toEqual({ args, status: 2 });
    expect(stderr).toMatch(/^mman: /);
  }
});
