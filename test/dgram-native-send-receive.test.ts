// sendReceive (send, then read what is already queued without a trip through the event loop) and
// the 'view' event (datagrams read in place in the receive slab), on loopback. That the send
// queue copies datagrams (buffers may be reused once send() returns) is checked by the
// backpressure test, where EAGAIN is real.
import test from 'ava';
import { createSocket, parseIPv4, type ReceivedView } from 'dgram-native';

async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

function pair(options: { maxDatagramSize?: number } = {}) {
  const peer = createSocket({ bindAddress: '127.0.0.1', pktinfo: false });
  const socket = createSocket({ bindAddress: '127.0.0.1', pktinfo: false, batchSize: 4, ...options });
  return { peer, socket, close: () => Promise.all([peer.close(), socket.close()]) };
}

test('sendReceive sends, then returns the first datagram already queued, read in place and not emitted', async (t) => {
  const { peer, socket, close } = pair({ maxDatagramSize: 16 });
  t.teardown(close);
  const emitted: string[] = [];
  socket.on('message', (d) => emitted.push(`${d.data.toString()}${d.truncated ? ' (cut)' : ''}`));
  const viewed: string[] = [];
  socket.on('view', (view) => {
    for (let i = 0; i < view.count; i++) viewed.push(`${view.data(i).toString()}${view.truncated(i) ? ' (cut)' : ''}`);
  });
  const atPeer: string[] = [];
  peer.on('message', (d) => atPeer.push(`${d.data.toString()} from ${d.address}:${d.port}`));
  const port = socket.address().port;

  // Nothing queued: the datagram goes out, the view is empty.
  t.is(socket.sendReceive(Buffer.from('first'), peer.address().port, '127.0.0.1').count, 0);

  // dgram-native's send() is a synchronous sendmsg: both datagrams are in the socket's queue
  // before sendReceive reads it.
  peer.send(Buffer.from('answer one'), port, '127.0.0.1');
  peer.send(Buffer.from('a datagram too long for 16 bytes'), port, '127.0.0.1');
  const view: ReceivedView = socket.sendReceive(Buffer.from('second'), peer.address().port, '127.0.0.1');
  t.is(view.count, 1);
  t.is(view.data(0).toString(), 'answer one');
  t.is(view.length(0), 10);
  t.is(view.address(0), '127.0.0.1');
  t.is(view.addressValue(0), parseIPv4('127.0.0.1'));
  t.is(view.port(0), peer.address().port);
  t.false(view.truncated(0));

  await until(() => atPeer.length === 2 && emitted.length === 1);
  t.deepEqual(atPeer, [`first from 127.0.0.1:${port}`, `second from 127.0.0.1:${port}`]);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(emitted, ['a datagram too l (cut)'], 'only the datagram sendReceive left is emitted');
  t.deepEqual(viewed, ['a datagram too l (cut)']);
  t.like(socket.stats(), { received: 2, truncated: 1 });
});

test("'view' delivers each batch in place after the other events, and a reply sent with sendReceive from it works in lock-step", async (t) => {
  const { peer, socket, close } = pair();
  t.teardown(close);
  const peerPort = peer.address().port;
  // The peer answers each datagram n with n + 1, until 2000: a lock-step exchange where each
  // answer reaches `socket` either through sendReceive or through the 'view' event.
  peer.on('message', (d) => {
    const n = d.data.readUInt32BE(0);
    if (n < 2000) peer.send(Buffer.from([0, 0, (n + 1) >> 8, (n + 1) & 255]), d.port, d.address);
  });
  const seen: number[] = [];
  let inline = 0;
  let order = '';
  socket.on('message', () => (order += 'm'));
  const answer = (view: ReceivedView): void => {
    for (;;) {
      if (view.count === 0) return;
      const n = view.data(view.count - 1).readUInt32BE(0);
      for (let i = 0; i < view.count; i++) seen.push(view.data(i).readUInt32BE(0));
      const next = Buffer.alloc(4);
      next.writeUInt32BE(n + 1);
      view = socket.sendReceive(next, peerPort, '127.0.0.1');
      inline += view.count;
    }
  };
  socket.on('view', (view) => {
    order += 'v';
    answer(view);
  });
  socket.send(Buffer.from([0, 0, 0, 0]), peerPort, '127.0.0.1');
  await until(() => seen.length > 0 && seen[seen.length - 1]! >= 1999);
  t.deepEqual(seen, Array.from({ length: 1000 }, (_, i) => 2 * i + 1), 'every answer exactly once, in order');
  t.true(order.startsWith('mv'), "'view' comes after 'message' for the same batch");
  t.log(`${inline} of 1000 answers read by sendReceive, the rest through the event loop`);
});

test('sendReceive on a closed socket throws ERR_SOCKET_CLOSED', async (t) => {
  const { peer, socket, close } = pair();
  t.teardown(close);
  await socket.close();
  t.throws(() => socket.sendReceive(Buffer.from('x'), peer.address().port, '127.0.0.1'), { code: 'ERR_SOCKET_CLOSED' });
});
