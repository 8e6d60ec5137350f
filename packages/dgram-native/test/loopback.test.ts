// dgram-native on loopback: what a datagram reports, per-datagram source address, batched
// burst without loss, SO_REUSEPORT, truncation, close semantics and error paths. The multi-homed
// cases (broadcast per interface, SO_BINDTODEVICE) are in netns.test.ts.
import test from 'ava';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createSocket, DgramNativeError, parseIPv4, type Datagram, type OutgoingDatagram, type UdpSocket } from 'dgram-native';

function nodeSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket)));
}

test('a datagram reports source, destination, local address and interface; a reply can pick its source address', async (t) => {
  const server = createSocket({ bindAddress: '0.0.0.0' });
  const client = await nodeSocket();
  t.teardown(() => {
    client.close();
    void server.close();
  });
  const received = once(server, 'message') as Promise<[Datagram]>;
  client.send('ping', server.address().port, '127.0.0.3');
  const [request] = await received;
  t.is(request.data.toString(), 'ping');
  t.like(request, { address: '127.0.0.1', port: client.address().port, destinationAddress: '127.0.0.3', localAddress: '127.0.0.3', ifname: 'lo', truncated: false });
  t.is(typeof request.ifindex, 'number');

  const reply = once(client, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
  t.true(server.send(Buffer.from('pong'), request.port, request.address, { sourceAddress: '127.0.0.3', ifindex: request.ifindex }));
  const [data, rinfo] = await reply;
  t.is(data.toString(), 'pong');
  t.is(rinfo.address, '127.0.0.3');
  t.is(rinfo.port, server.address().port);
});

for (const size of [64, 1468]) {
  test(`a burst of 100,000 ${size}-byte datagrams sent with sendBatch arrives complete through batched receive`, async (t) => {
    const total = 100_000;
    // At most `window` datagrams in flight: the receive buffer below holds them all, which is
    // the "configured buffer size" under which no datagram may be lost.
    const window = 2000;
    const receiver = createSocket({ bindAddress: '127.0.0.1', batchSize: 64, recvBufferSize: 8 << 20 });
    const sender = createSocket({ bindAddress: '127.0.0.1', sendBufferSize: 4 << 20 });
    t.teardown(() => Promise.all([receiver.close(), sender.close()]));
    t.true(receiver.recvBufferSize >= 8 << 20, `granted SO_RCVBUF ${receiver.recvBufferSize}`);

    const seen = new Uint8Array(total);
    let received = 0;
    let duplicates = 0;
    let largestBatch = 0;
    let sent = 0;
    const { port } = receiver.address();
    const sendWindow = () => {
      const batch: OutgoingDatagram[] = [];
      for (let i = 0; i < window && sent < total; i++, sent++) {
        const data = Buffer.alloc(size);
        data.writeUInt32BE(sent, 0);
        batch.push({ data, port, address: '127.0.0.1' });
      }
      const result = sender.sendBatch(batch);
      t.is(result.failed.length, 0);
      t.is(result.sent + result.queued, batch.length);
    };
    const done = new Promise<void>((resolve) => {
      receiver.on('batch', (datagrams) => {
        largestBatch = Math.max(largestBatch, datagrams.length);
        for (const d of datagrams) {
          if (d.data.length !== size) continue;
          const seq = d.data.readUInt32BE(0);
          if (seen[seq]) duplicates++;
          seen[seq] = 1;
          received++;
        }
        if (received === total) resolve();
        else if (received === sent) sendWindow();
      });
    });
    sendWindow();
    await done;
    t.is(received, total);
    t.is(duplicates, 0);
    t.is(seen.indexOf(0), -1);
    t.is(receiver.stats().kernelDrops, 0);
    t.true(largestBatch > 1, 'recvmmsg returned several datagrams per call');
  });
}

test('SO_REUSEPORT spreads flows across two sockets on the same port', async (t) => {
  const first = createSocket({ bindAddress: '127.0.0.1', reusePort: true });
  const { port } = first.address();
  const second = createSocket({ bindAddress: '127.0.0.1', port, reusePort: true });
  const counts = [0, 0];
  first.on('message', () => counts[0]!++);
  second.on('message', () => counts[1]!++);
  const clients = await Promise.all(Array.from({ length: 64 }, nodeSocket));
  t.teardown(() => {
    for (const c of clients) c.close();
    return Promise.all([first.close(), second.close()]);
  });
  for (const client of clients) for (let i = 0; i < 4; i++) client.send('x', port, '127.0.0.1');
  const deadline = Date.now() + 5000;
  while (counts[0]! + counts[1]! < 256 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(counts[0]! + counts[1]!, 256);
  // 64 flows hashed over 2 sockets: each gets a real share (P(< 8 flows) is about 1e-10).
  t.true(counts[0]! >= 32 && counts[1]! >= 32, `split ${counts.join('/')}`);
});

test('without SO_REUSEPORT a second bind fails with EADDRINUSE naming the address', (t) => {
  const first = createSocket({ bindAddress: '127.0.0.1' });
  t.teardown(() => first.close());
  const { port } = first.address();
  const error = t.throws(() => createSocket({ bindAddress: '127.0.0.1', port }), { instanceOf: DgramNativeError });
  t.like(error, { code: 'EADDRINUSE', syscall: 'bind' });
  t.true(error!.message.includes(`127.0.0.1:${port}`));
});

test('binding to a missing interface fails with ENODEV naming the interface', (t) => {
  const error = t.throws(() => createSocket({ interface: `nx${process.pid}` }), { instanceOf: DgramNativeError });
  t.like(error, { code: 'ENODEV', syscall: 'setsockopt(SO_BINDTODEVICE)' });
  t.true(error!.message.includes(`nx${process.pid}`));
});

test('invalid addresses and ports are rejected before any syscall', (t) => {
  const socket = createSocket({ bindAddress: '127.0.0.1' });
  t.teardown(() => socket.close());
  for (const address of ['256.1.1.1', '1.2.3', '01.2.3.4', 'localhost', '1.2.3.4.5', '']) {
    t.throws(() => socket.send(Buffer.from('x'), 9, address), { code: 'ERR_INVALID_IP_ADDRESS' }, address);
  }
  t.throws(() => socket.send(Buffer.from('x'), 70000, '127.0.0.1'), { code: 'ERR_SOCKET_BAD_PORT' });
  t.is(parseIPv4('10.0.255.1'), 0x0a00ff01);
});

test('a datagram longer than maxDatagramSize arrives cut and flagged, and is counted', async (t) => {
  const receiver = createSocket({ bindAddress: '127.0.0.1', maxDatagramSize: 100 });
  const client = await nodeSocket();
  t.teardown(() => {
    client.close();
    return receiver.close();
  });
  const received = once(receiver, 'message') as Promise<[Datagram]>;
  client.send(Buffer.alloc(300, 7), receiver.address().port, '127.0.0.1');
  const [datagram] = await received;
  t.is(datagram.data.length, 100);
  t.true(datagram.truncated);
  t.is(receiver.stats().truncated, 1);
});

test('close() inside a message handler stops delivery of the rest of the batch, closes the fd and rejects sends', async (t) => {
  const receiver: UdpSocket = createSocket({ bindAddress: '127.0.0.1', batchSize: 16 });
  const client = await nodeSocket();
  t.teardown(() => client.close());
  let delivered = 0;
  let closedEvent = false;
  receiver.on('close', () => (closedEvent = true));
  const closed = new Promise<void>((resolve) => {
    receiver.on('message', () => {
      delivered++;
      void receiver.close().then(resolve);
    });
  });
  // Queue several datagrams in the kernel before the loop gets to read them in one batch.
  for (let i = 0; i < 10; i++) client.send('x', receiver.address().port, '127.0.0.1');
  await closed;
  t.is(delivered, 1);
  t.true(closedEvent);
  // The port is free again: the fd was really closed.
  const rebound = createSocket({ bindAddress: '127.0.0.1', port: receiver.address().port });
  await rebound.close();
  t.throws(() => receiver.send(Buffer.from('x'), 9, '127.0.0.1'), { instanceOf: DgramNativeError, code: 'ERR_SOCKET_CLOSED' });
  t.throws(() => receiver.sendBatch([]), { code: 'ERR_SOCKET_CLOSED' });
  await receiver.close(); // idempotent
});
