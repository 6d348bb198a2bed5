// A parent and a forked child passing messages through a ring buffer in shared memory.
// The parent writes each message into the ring once; the child reads it in place, with no
// copy, and answers through a second ring. Futexes say "data ready" and "space free".
//
//   node examples/ring-buffer.js
'use strict';
const { RingBuffer, SharedMemory, fork } = require('mman');

const MESSAGES = 20000;

if (process.env.RING_EXAMPLE_CHILD) {
  // The child: the two rings arrive as the fds the parent shared, in the same order.
  const [requests, replies] = SharedMemory.inherited().map((shm) => RingBuffer.attach(shm));
  let count = 0;
  let bytes = 0;
  for (let message; (message = requests.read()) !== null;) {  // a view of the shared pages
    count += 1;
    bytes += message.length;
    const reply = replies.reserve(4);                        // built in place in the ring
    new DataView(reply.buffer, reply.byteOffset, 4).setUint32(0, message.length);
    replies.commit();
  }
  replies.write(Buffer.from(`child read ${count} messages, ${bytes} bytes`));
  replies.end();
} else {
  const requests = RingBuffer.create(1 << 16);
  const replies = RingBuffer.create(1 << 16);
  const child = fork(__filename, [], {
    share: [requests.memory, replies.memory],
    env: { ...process.env, RING_EXAMPLE_CHILD: '1' },
  });

  let started = 0n;  // timed over the second half: start-up and JIT warm-up are not counted
  let sent = 0;
  let confirmed = 0;
  let summary = '';
  // Write a message, then collect the child's reply: each side blocks only while it must.
  for (let i = 0; i < MESSAGES; i++) {
    const message = Buffer.from(`message ${i} `.repeat(1 + (i % 50)));
    requests.write(message);
    sent += message.length;
    const reply = replies.read();
    confirmed += new DataView(reply.buffer, reply.byteOffset, 4).getUint32(0);
    if (i === MESSAGES / 2 - 1) started = process.hrtime.bigint();
  }
  requests.end();
  for (let m; (m = replies.read()) !== null;) summary = Buffer.from(m).toString();
  const micros = Number(process.hrtime.bigint() - started) / 1000;

  console.log(`parent sent ${MESSAGES} messages, ${sent} bytes; the child confirmed ${confirmed} bytes`);
  console.log(summary);
  console.log(`round trip through shared memory: ${(micros / (MESSAGES / 2)).toFixed(1)} us per message (last ${MESSAGES / 2})`);
  child.on('exit', (code) => {
    requests.close();
    replies.close();
    if (code !== 0 || confirmed !== sent) {
      console.error('mismatch or child failure', { code, sent, confirmed });
      process.exitCode = 1;
    }
  });
}
