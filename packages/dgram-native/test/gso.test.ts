// dgram-native's UDP GSO (sendBatch), UDP GRO (gro option), the 'packed' event and receive
// coalescing, on loopback (this kernel does GSO and GRO there), plus the fallback when the kernel
// refuses GSO, forced for real in a namespace whose lo MTU is smaller than the datagrams.
import test from 'ava';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { createSocket, type Datagram, type OutgoingDatagram, type PackedBatch } from 'dgram-native';
import { ip, namespaces, runInNamespace } from '../../../test/helpers/namespaces.js';

interface Seen {
  seq: number;
  length: number;
  fill: number;
}

/** A node:dgram receiver: independent of the code under test, it sees what is on the wire. */
async function nodeReceiver() {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const seen: Seen[] = [];
  socket.on('message', (data) => seen.push({ seq: data.readUInt32BE(0), length: data.length, fill: data[data.length - 1]! }));
  return { socket, port: socket.address().port, seen };
}

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Datagram `seq` of `length` bytes: sequence number first, then `fill` bytes. */
function datagram(seq: number, length: number, port: number, fill = seq & 0xff): OutgoingDatagram {
  const data = Buffer.alloc(length, fill);
  data.writeUInt32BE(seq, 0);
  return { data, port, address: '127.0.0.1' };
}

test('sendBatch sends runs of equal-size datagrams to one destination with GSO; receivers see the same datagrams', async (t) => {
  const [a, b] = await Promise.all([nodeReceiver(), nodeReceiver()]);
  const sender = createSocket({ bindAddress: '127.0.0.1' });
  t.teardown(() => {
    a.socket.close();
    b.socket.close();
    return sender.close();
  });
  // A TFTP-like window: 40 full blocks and a short last one to a; then a run to b; then sizes
  // that only pair up where a datagram is followed by a shorter one (which may end a run).
  const batch: OutgoingDatagram[] = [];
  for (let i = 0; i < 40; i++) batch.push(datagram(i, 1000, a.port));
  batch.push(datagram(40, 300, a.port));
  for (let i = 41; i < 51; i++) batch.push(datagram(i, 64, b.port));
  for (const [i, length] of [[51, 500], [52, 600], [53, 700], [54, 8]] as const) batch.push(datagram(i, length, b.port));

  const result = sender.sendBatch(batch);
  t.deepEqual(result, { sent: 55, queued: 0, failed: [] });
  await until(() => a.seen.length === 41 && b.seen.length === 14);
  t.deepEqual(a.seen, batch.slice(0, 41).map((d, seq) => ({ seq, length: d.data.length, fill: seq & 0xff })));
  t.deepEqual(b.seen, batch.slice(41).map((d, i) => ({ seq: 41 + i, length: d.data.length, fill: (41 + i) & 0xff })));
  const stats = sender.stats();
  t.true(stats.gso);
  // 41 datagrams to a in one message, 10 to b in another, 700 B + 8 B in a third; 500 and 600 alone.
  t.is(stats.gsoSends, 3);
});

test('with gso: false every datagram is its own message', async (t) => {
  const receiver = await nodeReceiver();
  const sender = createSocket({ bindAddress: '127.0.0.1', gso: false });
  t.teardown(() => {
    receiver.socket.close();
    return sender.close();
  });
  t.is(sender.sendBatch(Array.from({ length: 20 }, (_, i) => datagram(i, 200, receiver.port))).sent, 20);
  await until(() => receiver.seen.length === 20);
  t.deepEqual(receiver.seen.map((s) => s.seq), Array.from({ length: 20 }, (_, i) => i));
  t.deepEqual({ gso: sender.stats().gso, gsoSends: sender.stats().gsoSends }, { gso: false, gsoSends: 0 });
});

test('a GRO receiver splits coalesced messages back into the datagrams, with their source, lengths and cuts', async (t) => {
  const receiver = createSocket({ bindAddress: '127.0.0.1', gro: true, batchSize: 4, maxDatagramSize: 1200 });
  const sender = createSocket({ bindAddress: '127.0.0.1' });
  t.teardown(() => Promise.all([receiver.close(), sender.close()]));
  t.true(receiver.gro, 'kernel granted UDP_GRO');
  const { port } = receiver.address();
  const got: Datagram[] = [];
  let largestBatch = 0;
  receiver.on('batch', (datagrams) => (largestBatch = Math.max(largestBatch, datagrams.length)));
  receiver.on('message', (d) => got.push(d));

  // Three GSO runs: 30 x 1000 B + a 10-byte tail, 20 x 64 B, and 5 x 1400 B (over maxDatagramSize).
  const batch = [
    ...Array.from({ length: 30 }, (_, i) => datagram(i, 1000, port)),
    datagram(30, 10, port),
    ...Array.from({ length: 20 }, (_, i) => datagram(31 + i, 64, port)),
    ...Array.from({ length: 5 }, (_, i) => datagram(51 + i, 1400, port)),
  ];
  t.is(sender.sendBatch(batch).sent, batch.length);
  await until(() => got.length === batch.length);
  t.is(got.length, batch.length);
  // More datagrams in one recvmmsg batch than batchSize messages: the kernel did coalesce.
  t.true(largestBatch > 4, `largest batch ${largestBatch}`);
  const { port: senderPort } = sender.address();
  got.forEach((d, seq) => {
    const sentLength = batch[seq]!.data.length;
    t.like(d, { address: '127.0.0.1', port: senderPort, truncated: sentLength > 1200 }, `datagram ${seq}`);
    t.is(d.data.length, Math.min(sentLength, 1200));
    t.is(d.data.readUInt32BE(0), seq);
    t.true(d.data.subarray(4).every((byte) => byte === (seq & 0xff)));
  });
  t.is(receiver.stats().received, batch.length);
  t.is(receiver.stats().truncated, 5);
});

test("'packed' delivers the same datagrams as 'batch' in one Buffer, before it", async (t) => {
  const receiver = createSocket({ bindAddress: '127.0.0.1', gro: true });
  const sender = createSocket({ bindAddress: '127.0.0.1' });
  t.teardown(() => Promise.all([receiver.close(), sender.close()]));
  const events: string[] = [];
  const packed: PackedBatch[] = [];
  const batches: Datagram[][] = [];
  receiver.on('packed', (p) => (events.push('packed'), packed.push(p)));
  receiver.on('batch', (b) => (events.push('batch'), batches.push(b)));
  const { port } = receiver.address();
  const batch = [...Array.from({ length: 12 }, (_, i) => datagram(i, 700, port)), datagram(12, 33, port)];
  sender.sendBatch(batch);
  await until(() => packed.reduce((n, p) => n + p.count, 0) === batch.length);

  t.is(events[0], 'packed');
  t.deepEqual(events.filter((e) => e === 'packed').length, events.filter((e) => e === 'batch').length);
  const fromPacked = packed.flatMap((p) => Array.from({ length: p.count }, (_, i) => ({ data: p.data(i), address: p.address(i), port: p.port(i), length: p.length(i) })));
  const fromBatch = batches.flat();
  t.is(fromPacked.length, batch.length);
  fromPacked.forEach((d, i) => {
    t.deepEqual(d.data, batch[i]!.data);
    t.is(d.length, batch[i]!.data.length);
    t.deepEqual({ address: d.address, port: d.port }, { address: fromBatch[i]!.address, port: fromBatch[i]!.port });
    t.deepEqual(d.data, fromBatch[i]!.data);
  });
  t.deepEqual(packed[0]!.datagram(0).data, batch[0]!.data);
  t.is(packed[0]!.payloads.length, packed[0]!.data(packed[0]!.count - 1).byteOffset - packed[0]!.payloads.byteOffset + packed[0]!.length(packed[0]!.count - 1));
});

test('receive coalescing reads the first datagram at once and the next only after the window', async (t) => {
  const windowMs = 200;
  const receiver = createSocket({ bindAddress: '127.0.0.1', receiveCoalescingMs: windowMs });
  const client = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  t.teardown(() => client.close());
  const { port } = receiver.address();
  const arrivals: number[] = [];
  let sentAt = 0;
  receiver.on('message', (d) => {
    arrivals.push(performance.now() - sentAt);
    // The reply-driven next request: a lock-step protocol would wait out the window here.
    if (d.data.toString() === 'first') {
      sentAt = performance.now();
      client.send('second', port, '127.0.0.1');
    }
  });
  sentAt = performance.now();
  client.send('first', port, '127.0.0.1');
  await until(() => arrivals.length === 2);
  t.is(arrivals.length, 2);
  t.true(arrivals[0]! < windowMs / 2, `first datagram after ${arrivals[0]} ms`);
  t.true(arrivals[1]! >= windowMs * 0.9, `second datagram after ${arrivals[1]} ms`);
  // Closing while reading is paused releases the timer too.
  client.send('third', port, '127.0.0.1');
  await receiver.close();
  t.is(arrivals.length, 2);
});

test('when the kernel refuses GSO (datagrams over the route MTU) sendBatch falls back to one message per datagram', async (t) => {
  const [name] = Object.values(namespaces(t, 'dgngso', ['mtu'] as const));
  ip('-n', name!, 'link', 'set', 'lo', 'mtu', '1280');
  const peer = runInNamespace(t, name!, fileURLToPath(new URL('./child-processes/gso-fallback-peer.ts', import.meta.url)), []);
  const report = (await peer.nextLine()) as { before: unknown; first: unknown; afterFirst: unknown; second: unknown; received: { seq: number; length: number }[] };
  t.is(await peer.exited, 0);
  t.deepEqual(report.before, { gso: true, gsoSends: 0 });
  t.deepEqual(report.first, { sent: 20, queued: 0, failed: [] });
  t.deepEqual(report.afterFirst, { gso: false, gsoSends: 0 });
  t.deepEqual(report.second, { sent: 20, queued: 0, failed: [] });
  t.deepEqual(report.received, Array.from({ length: 40 }, (_, seq) => ({ seq, length: 1400 })));
});
