// Runs inside a namespace whose lo has MTU 1280 (see gso.test.ts): a GSO send of
// 1400-byte segments is refused by the kernel (a segment may not exceed the route MTU; EMSGSIZE,
// EINVAL on older kernels) while the same datagrams sent one by one are fragmented and delivered.
// Prints one JSON report: the batch results, the socket's GSO state before and after, and the
// lengths and sequence numbers a node:dgram receiver got.
import dgram from 'node:dgram';
import { createSocket } from 'dgram-native';

const receiver = dgram.createSocket('udp4');
await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
const { port } = receiver.address();
const received: { seq: number; length: number }[] = [];
receiver.on('message', (data) => received.push({ seq: data.readUInt32BE(0), length: data.length }));

const sender = createSocket({ bindAddress: '127.0.0.1' });
const batch = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => {
    const data = Buffer.alloc(1400, 0x5a);
    data.writeUInt32BE(from + i, 0);
    return { data, port, address: '127.0.0.1' };
  });
const before = sender.stats();
const first = sender.sendBatch(batch(0, 20));
const afterFirst = sender.stats();
const second = sender.sendBatch(batch(20, 20));

const deadline = Date.now() + 5000;
while (received.length < 40 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
const summary = (r: typeof first) => ({ sent: r.sent, queued: r.queued, failed: r.failed.map((f) => f.error.code) });
console.log(
  JSON.stringify({
    before: { gso: before.gso, gsoSends: before.gsoSends },
    first: summary(first),
    afterFirst: { gso: afterFirst.gso, gsoSends: afterFirst.gsoSends },
    second: summary(second),
    received,
  }),
);
receiver.close();
await sender.close();
