// The server of `mman bench serve`, in a child process of its own: answers every request with
// the whole of one file, one way: from a mapping (res.end(map.bytes): the kernel copies the
// mapped pages to the socket), from a Buffer read once, or by piping fs.createReadStream().
// Started by serve.ts with its spec as argv[2]; sends { port } once it listens.
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

import { mapFile } from '../..';

/** The ways a Node server sends the file. */
export const NODE_WAYS = ['mmap', 'buffer', 'stream'] as const;
/** One of {@link NODE_WAYS}. */
export type NodeWay = (typeof NODE_WAYS)[number];

/** What the server is told. */
export interface ServerSpec {
  /** The file every response sends whole. */
  path: string;
  /** How it is sent. */
  way: NodeWay;
}

/** The request handler for `spec`: the file is mapped or read here, once. */
export function handler(spec: ServerSpec): RequestListener {
  const headers = (length: number) => ({ 'content-type': 'application/octet-stream', 'content-length': length });
  if (spec.way === 'mmap') {
    const map = mapFile(spec.path);
    const bytes = map.bytes;
    return (_req, res) => {
      res.writeHead(200, headers(bytes.length));
      res.end(bytes);
    };
  }
  if (spec.way === 'buffer') {
    const buffer = readFileSync(spec.path);
    return (_req, res) => {
      res.writeHead(200, headers(buffer.length));
      res.end(buffer);
    };
  }
  const { size } = statSync(spec.path);
  return (_req, res) => {
    res.writeHead(200, headers(size));
    createReadStream(spec.path).pipe(res);
  };
}

if (process.send !== undefined && process.argv[2]?.startsWith('{')) {
  const spec = JSON.parse(process.argv[2]) as ServerSpec;
  const server = createServer({ keepAliveTimeout: 60_000 }, handler(spec));
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
}
