// The other process of test/runtimes/conformance.cjs, run by the same runtime:
//   conformance-child.cjs <mode> [args...]
'use strict';
const mman = require('../../lib');

const [mode, ...args] = process.argv.slice(process.argv.indexOf(__filename) + 1);

async function main() {
  switch (mode) {
    case 'named': {  // read what the parent wrote, write it back reversed
      const shm = mman.SharedMemory.open(args[0]);
      const m = shm.map();
      const saw = [...m.bytes.subarray(0, 3)];
      m.bytes.set(saw.slice().reverse());
      m.unmap();
      shm.close();
      console.log(JSON.stringify({ saw }));
      break;
    }
    case 'inherited': {  // the memfd passed by mman.fork()
      const [shm] = mman.SharedMemory.inherited();
      const m = shm.map();
      m.bytes[0] += 1;
      m.unmap();
      shm.close();
      break;
    }
    case 'waiter': {  // sleep on words[0] while it is 0, until notified
      const shm = mman.SharedMemory.open(args[0]);
      const words = new Int32Array(shm.map().buffer);
      console.log(JSON.stringify({ result: mman.wait(words, 0, 0, 30_000) }));
      break;
    }
    case 'holdLock': {  // take the Mutex at word 0, say so, and hold it until killed
      const shm = mman.SharedMemory.open(args[0]);
      const words = new Int32Array(shm.map().buffer);
      console.log(JSON.stringify({ result: new mman.Mutex(words, 0).lock() }));
      setInterval(() => {}, 1000);
      return;
    }
    case 'notifier': {  // change words[0], and wake whoever waits on it
      const shm = mman.SharedMemory.open(args[0]);
      const words = new Int32Array(shm.map().buffer);
      Atomics.store(words, 0, 1);
      for (let i = 0; i < 400 && mman.notify(words, 0) === 0; i++) await new Promise((r) => setTimeout(r, 5));
      break;
    }
    case 'ring': {  // answer each request with its length, in place
      const fs = require('node:fs');
      const requests = mman.RingBuffer.attach(mman.SharedMemory.fromFd(fs.openSync(args[0], 'r+')));
      const replies = mman.RingBuffer.attach(mman.SharedMemory.fromFd(fs.openSync(args[1], 'r+')));
      for (let message; (message = requests.read()) !== null;) {
        const reply = replies.reserve(4);
        new DataView(reply.buffer, reply.byteOffset, 4).setUint32(0, message.length);
        replies.commit();
        requests.release();
      }
      replies.end();
      break;
    }
    case 'ringWriter': {  // writer args[1] of a ring with many writers: args[2] messages [id, seq, bytes...]
      const fs = require('node:fs');
      const ring = mman.RingBuffer.attach(mman.SharedMemory.fromFd(fs.openSync(args[0], 'r+')));
      const id = Number(args[1]);
      for (let seq = 0; seq < Number(args[2]); seq++) {
        const bytes = ring.reserve(8 + ((seq * 13 + id) % 300));
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        view.setUint32(0, id);
        view.setUint32(4, seq);
        for (let i = 8; i < bytes.length; i++) bytes[i] = (id + seq + i) & 0xff;
        ring.commit();
      }
      ring.close();
      break;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
