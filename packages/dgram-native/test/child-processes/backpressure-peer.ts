// Runs inside a namespace whose loopback is rate-limited by a tbf qdisc (see
// backpressure.test.ts): with the smallest send buffer, datagrams waiting in the
// qdisc are still charged to the sender, so the kernel answers EAGAIN after a few sends. Prints
// one JSON report of what send()/sendBatch() returned, the queue bound, 'drain', and what a
// node:dgram receiver got.
// Usage: backpressure-peer.ts <maxQueuedDatagrams>
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createSocket, DgramNativeError } from 'dgram-native';

const maxQueuedDatagrams = Number(process.argv[2]);

async function receiver() {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const received: number[] = [];
  socket.on('message', (data) => received.push(data.readUInt32BE(0)));
  return { socket, port: socket.address().port, received };
}
const datagram = (seq: number) => {
  const data = Buffer.alloc(1000);
  data.writeUInt32BE(seq, 0);
  return data;
};
// send() takes one buffer refilled for every datagram: the queue must keep copies, since the
// caller may reuse a buffer as soon as send() returns (the receiver checks every sequence number).
const reused = Buffer.alloc(1000);
const refilled = (seq: number) => {
  reused.writeUInt32BE(seq, 0);
  return reused;
};
const describe = (error: unknown) => (error instanceof DgramNativeError ? { code: error.code, syscall: error.syscall, message: error.message } : String(error));

// A. sendBatch on an idle socket, one message per datagram (gso: false): sendmmsg itself stops at EAGAIN.
const batchReceiver = await receiver();
const batchSender = createSocket({ bindAddress: '127.0.0.1', sendBufferSize: 1, gso: false });
const batchDrained = once(batchSender, 'drain');
const firstBatch = batchSender.sendBatch(Array.from({ length: 16 }, (_, seq) => ({ data: datagram(seq), port: batchReceiver.port, address: '127.0.0.1' })));
await batchDrained;

// B. send(), then sendBatch behind queued datagrams, then the queue bound, then 'drain'.
const { socket: receiverSocket, port, received } = await receiver();
// sendBufferSize 1: the kernel grants its minimum (SOCK_MIN_SNDBUF, a few such datagrams).
const sender = createSocket({ bindAddress: '127.0.0.1', sendBufferSize: 1, maxQueuedDatagrams });
let next = 0; // sequence number of the next datagram the socket accepts

// 1. send() one by one until well past the first EAGAIN
const sendResults: boolean[] = [];
for (let i = 0; i < 8; i++) sendResults.push(sender.send(refilled(next++), port, '127.0.0.1'));

// 2. sendBatch while datagrams are queued: they join the queue's tail
const batch = sender.sendBatch(Array.from({ length: 8 }, () => ({ data: datagram(next++), port, address: '127.0.0.1' })));

// 3. send() until the queue bound refuses one
let overflow: unknown;
for (let i = 0; i < maxQueuedDatagrams * 2 && overflow === undefined; i++) {
  try {
    sender.send(refilled(next), port, '127.0.0.1');
    next++;
  } catch (error) {
    overflow = error;
  }
}
const queuedAtBound = sender.stats().queued;

// 4. sendBatch with the queue full: every datagram reported failed, none sent or queued
const fullBatch = sender.sendBatch([
  { data: datagram(next), port, address: '127.0.0.1' },
  { data: datagram(next), port, address: '127.0.0.1' },
]);

// 5. 'drain' once the qdisc let everything through; sending works directly again
const drainStarted = performance.now();
await once(sender, 'drain');
const drainMs = performance.now() - drainStarted;
const queuedAtDrain = sender.stats().queued;

const deadline = Date.now() + 10_000;
while ((received.length < next || batchReceiver.received.length < 16) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
console.log(
  JSON.stringify({
    sendBufferSize: sender.sendBufferSize,
    firstBatch: { sent: firstBatch.sent, queued: firstBatch.queued, failed: firstBatch.failed.length },
    firstBatchReceived: batchReceiver.received,
    sendResults,
    batch: { sent: batch.sent, queued: batch.queued, failed: batch.failed.length },
    queuedAtBound,
    overflow: describe(overflow),
    fullBatch: { sent: fullBatch.sent, queued: fullBatch.queued, failed: fullBatch.failed.map((f) => describe(f.error)) },
    drainMs,
    queuedAtDrain,
    accepted: next,
    received,
  }),
);
receiverSocket.close();
batchReceiver.socket.close();
await Promise.all([sender.close(), batchSender.close()]);
