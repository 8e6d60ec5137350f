// The 'view' event: each received batch read in place in the receive slab (no copy, no object per
// datagram), after the events that copy. On loopback.
import test from 'ava';
import { createSocket, parseIPv4 } from 'dgram-native';

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

function pair(options: { maxDatagramSize?: number } = {}) {
  const peer = createSocket({ bindAddress: '127.0.0.1', pktinfo: false });
  const socket = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, batchSize: 4, ...options });
  return { peer, socket, close: () => Promise.all([peer.close(), socket.close()]) };
}

test("'view' hands over each batch in place, after 'packed', 'batch' and 'message'", async (t) => {
  const { peer, socket, close } = pair({ maxDatagramSize: 16 });
  t.teardown(close);
  const events: string[] = [];
  socket.on('packed', (batch) => events.push(`packed ${batch.count}`));
  socket.on('batch', (datagrams) => events.push(`batch ${datagrams.length}`));
  socket.on('message', (d) => events.push(`message ${d.data.toString()}`));
  const viewed: string[] = [];
  socket.on('view', (view) => {
    events.push(`view ${view.count}`);
    for (let i = 0; i < view.count; i++) {
      t.is(view.address(i), '127.0.0.1');
      t.is(view.addressValue(i), parseIPv4('127.0.0.1'));
      t.is(view.port(i), peer.address().port);
      viewed.push(`${view.data(i).toString()} ${view.length(i)}${view.truncated(i) ? ' (cut)' : ''}`);
    }
  });
  const port = socket.address().port;
  // dgram-native's send() is a synchronous sendmsg: both datagrams are queued before the socket's
  // next read, which takes them in one batch.
  peer.send(Buffer.from('answer one'), port, '127.0.0.1');
  peer.send(Buffer.from('a datagram too long for 16 bytes'), port, '127.0.0.1');
  await until(() => viewed.length === 2);
  t.deepEqual(viewed, ['answer one 10', 'a datagram too l 16 (cut)']);
  t.deepEqual(events, ['packed 2', 'batch 2', 'message answer one', 'message a datagram too l', 'view 2']);
  t.like(socket.stats(), { received: 2, truncated: 1 });
});

test("a lock-step exchange answered from 'view' alone gets every answer exactly once and in order", async (t) => {
  const { peer, socket, close } = pair();
  t.teardown(close);
  const peerPort = peer.address().port;
  // The peer answers each datagram n with n + 1, until 2000.
  peer.on('message', (d) => {
    const n = d.data.readUInt32BE(0);
    if (n < 2000) peer.send(Buffer.from([0, 0, (n + 1) >> 8, (n + 1) & 255]), d.port, d.address);
  });
  const seen: number[] = [];
  socket.on('view', (view) => {
    for (let i = 0; i < view.count; i++) seen.push(view.data(i).readUInt32BE(0));
    const n = view.data(view.count - 1).readUInt32BE(0);
    const next = Buffer.alloc(4);
    next.writeUInt32BE(n + 1);
    socket.send(next, peerPort, '127.0.0.1');
  });
  socket.send(Buffer.from([0, 0, 0, 0]), peerPort, '127.0.0.1');
  await until(() => seen.length > 0 && seen[seen.length - 1]! >= 1999);
  t.deepEqual(seen, Array.from({ length: 1000 }, (_, i) => 2 * i + 1));
});
