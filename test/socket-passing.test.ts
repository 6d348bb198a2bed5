// SharedMemory over a Unix-domain socket (SCM_RIGHTS) to and from processes mman did not
// fork: a plain child_process.spawn, and a Python program. What the peer sees is asserted,
// and the descriptors of this process are counted around every failure.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { PAGE_SIZE, SharedMemory } from '../src';
import { descriptorsOf, descriptorsTo, fixture, settleFinalizers, tempDir } from './helpers';

let dir: string;
let cleanup: () => void;
beforeEach(() => ({ dir, cleanup } = tempDir()));
afterEach(() => cleanup());

// Memory files this process holds: what a leak here would leave. (Pipes come and go with
// every child process's stdio; only the test that receives one counts them.)
const openFds = () => descriptorsTo(/^\/memfd:/);
const openPipes = () => descriptorsTo(/^pipe:/);

// A server on a Unix socket in `dir`; `onSocket` gets the first connection (paused).
async function serve(onSocket: (socket: net.Socket) => Promise<void>): Promise<{ path: string; done: Promise<void> }> {
  const path = join(dir, 'mman.sock');
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(path);
  await once(server, 'listening');
  const done = once(server, 'connection').then(async ([socket]: net.Socket[]) => {
    try {
      await onSocket(socket);
    } finally {
      socket.destroy();
      server.close();
    }
  });
  return { path, done };
}

// Runs test/fixtures/socket-child.js with plain spawn; resolves with its JSON report.
async function child(mode: string, path: string): Promise<Record<string, unknown>> {
  const proc = spawn(process.execPath, [fixture('socket-child.js'), mode, path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  await once(proc, 'close');
  return JSON.parse(out);
}

const hasPython = spawnSync('python3', ['-c', 'import socket; socket.send_fds']).status === 0;

describe('SharedMemory.sendTo() / SharedMemory.receive()', () => {
  test('to a process started with plain spawn: it reads what was written here, writes back, and this mapping sees it', async () => {
    using shm = SharedMemory.create(2 * PAGE_SIZE);
    const m = shm.map();
    m.bytes.set(Buffer.from('from the parent'));
    const before = descriptorsOf(shm.fd); // this segment's: the duplicate sent is closed after
    const server = await serve(async (socket) => {
      await shm.sendTo(socket);
      await once(socket.resume(), 'end');
    });
    const report = await child('receive', server.path);
    await server.done;
    expect(report).toEqual({
      seen: 'from the parent',
      size: 2 * PAGE_SIZE,
      seals: ['shrink'],
      writable: 'mapped',
      name: null,
    });
    expect(Buffer.from(m.bytes.subarray(100, 114)).toString()).toBe('from the child');
    expect(descriptorsOf(shm.fd)).toBe(before);
    m.unmap();
  });

  test("a 'futureWrite'-sealed segment: the receiver cannot map it writable (EPERM), the sender still writes", async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const m = shm.map();
    m.bytes.set(Buffer.from('read-only there'));
    shm.seal('futureWrite');
    const server = await serve(async (socket) => {
      await shm.sendTo(socket);
      await once(socket.resume(), 'end');
    });
    const report = await child('receive', server.path);
    await server.done;
    expect(report).toMatchObject({ seen: 'read-only there', writable: 'EPERM', seals: ['shrink', 'futureWrite'] });
    m.bytes[0] = 0x52; // this process's writable mapping, made before the seal
    expect(m.bytes[0]).toBe(0x52);
    m.unmap();
  });

  test('from a process started with plain spawn: received here, mapped, read', async () => {
    await settleFinalizers();
    const before = openFds();
    let seen = '';
    const server = await serve(async (socket) => {
      const shm = await SharedMemory.receive(socket, { timeoutMs: 20_000 });
      const m = shm.map();
      seen = Buffer.from(m.bytes.subarray(0, 15)).toString();
      expect(shm.size).toBe(8192);
      m.unmap();
      shm.close();
      socket.end();
    });
    expect(await child('send', server.path)).toEqual({ sent: true });
    await server.done;
    expect(seen).toBe('from the sender');
    expect(openFds()).toBe(before);
  });

  (hasPython ? test : test.skip)('from a Python program (os.memfd_create, socket.send_fds)', async () => {
    let seen = '';
    const server = await serve(async (socket) => {
      using shm = await SharedMemory.receive(socket, { timeoutMs: 20_000 });
      using m = shm.map();
      seen = Buffer.from(m.bytes.subarray(0, 11)).toString();
    });
    const python = spawn('python3', [
      '-c',
      [
        'import os, socket, sys',
        "fd = os.memfd_create('py')",
        'os.ftruncate(fd, 4096)',
        "os.pwrite(fd, b'from python', 0)",
        's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
        's.connect(sys.argv[1])',
        "socket.send_fds(s, [b'py'], [fd])",
        's.recv(1)',
      ].join('\n'),
      server.path,
    ]);
    await server.done;
    await once(python, 'close');
    expect(seen).toBe('from python');
  });

  test('a peer that sends no descriptor: ERR_SHARED_MEMORY_NO_DESCRIPTOR, no descriptor kept', async () => {
    await settleFinalizers();
    const before = openFds();
    let err: unknown;
    const server = await serve(async (socket) => {
      err = await SharedMemory.receive(socket, { timeoutMs: 20_000 }).catch((e: unknown) => e);
    });
    await child('plain', server.path);
    await server.done;
    expect(err).toMatchObject({ code: 'ERR_SHARED_MEMORY_NO_DESCRIPTOR' });
    expect(openFds()).toBe(before);
  });

  (hasPython ? test : test.skip)(
    'a descriptor that is not a memory file (a pipe): ERR_SHARED_MEMORY_BAD_DESCRIPTOR, closed',
    async () => {
      await settleFinalizers();
      const before = openPipes(); // python's own stdio pipes are closed by the time it is counted again
      let err: unknown;
      const server = await serve(async (socket) => {
        err = await SharedMemory.receive(socket, { timeoutMs: 20_000 }).catch((e: unknown) => e);
      });
      const python = spawn('python3', [
        '-c',
        "import os, socket, sys\nr, w = os.pipe()\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nsocket.send_fds(s, [b'x'], [r])\ns.recv(1)",
        server.path,
      ]);
      await server.done;
      await once(python, 'close');
      expect(err).toMatchObject({ code: 'ERR_SHARED_MEMORY_BAD_DESCRIPTOR' });
      expect(openPipes()).toBe(before); // the pipe received was closed
    },
  );

  test('the socket destroyed here while receive() waits: ERR_SOCKET_CLOSED, and the peer sees the connection end', async () => {
    let err: unknown;
    let peerClosed: Promise<unknown> = Promise.resolve();
    const server = await serve(async (socket) => {
      const waiting = SharedMemory.receive(socket).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 20));
      socket.destroy();
      err = await waiting;
    });
    const peer = net.connect(server.path);
    peerClosed = once(peer, 'close');
    await server.done;
    expect(err).toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    // Not held open by the wait's own duplicate of the socket: the peer's end closes.
    const closed = await Promise.race([
      peerClosed.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 5000)),
    ]);
    expect(closed).toBe(true);
  });

  (hasPython ? test : test.skip)(
    'sendTo() while the socket is full: the sends still waiting for room reject with ERR_SOCKET_CLOSED when it is destroyed, and the peer receives exactly the ones that resolved',
    async () => {
      using shm = SharedMemory.create(PAGE_SIZE);
      // A Unix stream socket takes a message while what it holds queued (each message's whole
      // buffer, at least 576 bytes for the smallest) is under its SO_SNDBUF, which for the
      // server's socket is net.core.wmem_default. Twice as many messages as would fit at 512
      // bytes each leaves some sends waiting for room, since the peer reads nothing meanwhile.
      const sndbuf = Number(readFileSync('/proc/sys/net/core/wmem_default', 'latin1'));
      const total = 2 * Math.ceil(sndbuf / 512);
      const payload = JSON.stringify({ 'mman-shm': 1, name: null }).length;
      const outcomes: string[] = [];
      const warnings: string[] = [];
      const onWarning = (w: Error): void => void warnings.push(w.name);
      process.on('warning', onWarning);
      const server = await serve(async (socket) => {
        const sends = Array.from({ length: total }, () =>
          shm.sendTo(socket).then(
            () => void outcomes.push('sent'),
            (e: { code: string }) => void outcomes.push(e.code),
          ),
        );
        // Until the sends that fit have gone out: at least one, and then no more for a while.
        // (How long is not asserted: every send that has not gone out by the time the socket
        // is destroyed must reject, and the peer's count must match whatever resolved.)
        while (outcomes.length === 0) await new Promise((r) => setTimeout(r, 10));
        for (let last = -1; last !== outcomes.length;) {
          last = outcomes.length;
          await new Promise((r) => setTimeout(r, 300));
        }
        socket.destroy();
        await Promise.all(sends);
      });
      // The peer connects, reads nothing until told to on stdin, then reads to the end,
      // counting the messages, bytes and descriptors it got.
      const python = spawn(
        'python3',
        [
          '-c',
          [
            'import json, os, socket, sys',
            's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
            's.connect(sys.argv[1])',
            'sys.stdin.readline()',
            'messages = size = fds = 0',
            'while True:',
            '    data, got, _, _ = socket.recv_fds(s, 65536, 16)',
            '    if not data and not got:',
            '        break',
            '    messages += 1',
            '    size += len(data)',
            '    fds += len(got)',
            '    for fd in got:',
            '        os.close(fd)',
            "print(json.dumps({'messages': messages, 'bytes': size, 'fds': fds}))",
          ].join('\n'),
          server.path,
        ],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      let out = '';
      python.stdout.on('data', (d) => (out += d));
      const closed = once(python, 'close');
      await server.done;
      python.stdin.end('read\n');
      const [code] = await closed;
      process.off('warning', onWarning);
      expect(code).toBe(0);
      const sent = outcomes.filter((s) => s === 'sent').length;
      expect(outcomes.length).toBe(total);
      expect(sent).toBeGreaterThan(0);
      expect(sent).toBeLessThan(total); // the socket was full: some were still waiting
      expect(outcomes.filter((s) => s !== 'sent')).toEqual(Array(total - sent).fill('ERR_SOCKET_CLOSED'));
      // Each message carries one descriptor, and none of those that rejected went out.
      expect(JSON.parse(out)).toEqual({ messages: sent, bytes: sent * payload, fds: sent });
      expect(warnings).not.toContain('MaxListenersExceededWarning'); // one listener per socket
    },
  );

  test('the peer closing first: ECONNRESET; a timeout: ETIMEDOUT', async () => {
    let closed: unknown;
    const server = await serve(async (socket) => {
      closed = await SharedMemory.receive(socket).catch((e: unknown) => e);
    });
    const peer = net.connect(server.path);
    await once(peer, 'connect');
    peer.end();
    await server.done;
    expect(closed).toMatchObject({ code: 'ECONNRESET', syscall: 'recvmsg' });
    let timedOut: unknown;
    const quiet = await serve(async (socket) => {
      timedOut = await SharedMemory.receive(socket, { timeoutMs: 50 }).catch((e: unknown) => e);
    });
    const idle = net.connect(quiet.path);
    await quiet.done;
    idle.destroy();
    expect(timedOut).toMatchObject({ code: 'ETIMEDOUT' });
  });

  test('bad sockets: a TCP socket, an object that is not a socket, a socket not yet connected', async () => {
    using shm = SharedMemory.create(PAGE_SIZE);
    const tcp = net.createServer().listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const socket = net.connect((tcp.address() as net.AddressInfo).port, '127.0.0.1');
    await once(socket, 'connect');
    await expect(shm.sendTo(socket)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(SharedMemory.receive(socket)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    socket.destroy();
    tcp.close();
    await expect(shm.sendTo({} as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(SharedMemory.receive(new net.Socket())).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    shm.close();
    await expect(shm.sendTo(new net.Socket())).rejects.toMatchObject({ code: 'ERR_SHARED_MEMORY_CLOSED' });
  });
});
