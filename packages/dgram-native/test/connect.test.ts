// Connected dgram-native sockets on loopback, with real node:dgram peers: a connected member of a
// reuseport group gets its peer's datagrams and only those, the unconnected member everyone
// else's (how the TFTP server keeps RFC 1350's ERROR 5 on a connected transfer port); sends to
// the peer and elsewhere; ephemeral ports of 'after-bind' sockets are nobody else's.
import test from 'ava';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createSocket, type Datagram, type UdpSocket } from 'dgram-native';

function nodeSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket)));
}

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

test('a connected reuseport socket receives only its peer\'s datagrams; the unconnected one on the same port gets the strangers\'', async (t) => {
  const strangersSocket = createSocket({ bindAddress: '127.0.0.1', reusePort: 'after-bind' });
  const { port } = strangersSocket.address();
  const connected = createSocket({ bindAddress: '127.0.0.1', port, reusePort: true });
  const peer = await nodeSocket();
  connected.connect('127.0.0.1', peer.address().port);
  const strangers = await Promise.all(Array.from({ length: 32 }, nodeSocket));
  t.teardown(() => {
    peer.close();
    for (const s of strangers) s.close();
    return Promise.all([strangersSocket.close(), connected.close()]);
  });
  const fromPeer = [0, 0];
  const fromStrangers = [0, 0];
  const count = (index: number) => (d: Datagram) => {
    if (d.port === peer.address().port) fromPeer[index]!++;
    else fromStrangers[index]!++;
  };
  connected.on('message', count(0));
  strangersSocket.on('message', count(1));
  // Interleaved, so that both kinds arrive while both sockets are busy.
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 50; i++) peer.send('p', port, '127.0.0.1');
    for (const s of strangers) s.send('s', port, '127.0.0.1');
  }
  await until(() => fromPeer[0]! + fromPeer[1]! + fromStrangers[0]! + fromStrangers[1]! >= 200 + 128);
  t.deepEqual({ fromPeer, fromStrangers }, { fromPeer: [200, 0], fromStrangers: [0, 128] });
});

test('a connected socket sends to its peer, single and batched, and still to others', async (t) => {
  const socket = createSocket({ bindAddress: '127.0.0.1' });
  const peer = await nodeSocket();
  const other = await nodeSocket();
  t.teardown(() => {
    peer.close();
    other.close();
    return socket.close();
  });
  t.throws(() => socket.connect('127.0.0.1', 0), { code: 'ERR_SOCKET_BAD_PORT' });
  socket.connect('127.0.0.1', peer.address().port);

  const received: string[] = [];
  peer.on('message', (data, rinfo) => {
    t.is(rinfo.port, socket.address().port);
    received.push(data.toString());
  });
  t.true(socket.send(Buffer.from('one'), peer.address().port, '127.0.0.1'));
  // a batch to the peer: also sent without an address (one GSO run of equal-size datagrams, then a single)
  const batch = ['b1', 'b2', 'b3', 'end'].map((text) => ({ data: Buffer.from(text), port: peer.address().port, address: '127.0.0.1' }));
  t.like(socket.sendBatch(batch), { sent: 4, queued: 0, failed: [] });
  await until(() => received.length >= 5);
  t.deepEqual(received, ['one', 'b1', 'b2', 'b3', 'end']);

  const toOther = once(other, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
  t.true(socket.send(Buffer.from('elsewhere'), other.address().port, '127.0.0.1'));
  const [data, rinfo] = await toOther;
  t.is(data.toString(), 'elsewhere');
  t.is(rinfo.port, socket.address().port);
});

test('a connected socket reports its peer\'s ICMP port unreachable as ECONNREFUSED and goes on receiving', async (t) => {
  const socket = createSocket({ bindAddress: '127.0.0.1' });
  const gone = await nodeSocket();
  const port = gone.address().port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  const live = await nodeSocket();
  t.teardown(() => {
    live.close();
    return socket.close();
  });
  socket.connect('127.0.0.1', port);
  const error = once(socket, 'error') as Promise<[Error & { code: string }]>;
  socket.send(Buffer.from('anyone?'), port, '127.0.0.1');
  const [reported] = await error;
  t.is(reported.code, 'ECONNREFUSED');
  // (libuv stops watching a socket on POLLERR: the addon must watch it again.)
  socket.connect('127.0.0.1', live.address().port);
  const received = once(socket, 'message') as Promise<[Datagram]>;
  live.send('still there', socket.address().port, '127.0.0.1');
  const [datagram] = await received;
  t.is(datagram.data.toString(), 'still there');
});

test('reusePort \'after-bind\' on port 0 never lands on a port that reuseport sockets already hold', async (t) => {
  // Set before the bind, the kernel's ephemeral search counts ports held by reuseport sockets of
  // the same user as free, and a socket joins such a port's group now and then (measured: 16 of
  // 1,000). 400 sockets among 400 holders would then share a port several times.
  const sockets: UdpSocket[] = [];
  t.teardown(() => Promise.all(sockets.map((s) => s.close())));
  for (let i = 0; i < 400; i++) sockets.push(createSocket({ bindAddress: '127.0.0.1', reusePort: true, batchSize: 1, maxDatagramSize: 16 }));
  const held = new Set(sockets.map((s) => s.address().port));
  let shared = 0;
  for (let i = 0; i < 400; i++) {
    const socket = createSocket({ bindAddress: '127.0.0.1', reusePort: 'after-bind', batchSize: 1, maxDatagramSize: 16 });
    sockets.push(socket);
    const { port } = socket.address();
    if (held.has(port)) shared++;
    held.add(port);
  }
  t.is(shared, 0);
  // …and a later socket can still join such a port explicitly.
  const joined = createSocket({ bindAddress: '127.0.0.1', port: sockets.at(-1)!.address().port, reusePort: true });
  sockets.push(joined);
  t.is(joined.address().port, sockets.at(-2)!.address().port);
});
