// dgram-native on a multi-homed host: a server namespace with two veth links, one client
// namespace on each. The clients are node:dgram peers, independent of the code under test.
import test, { type ExecutionContext } from 'ava';
import { fileURLToPath } from 'node:url';
import { ip, namespaces, runInNamespace } from '../../../test/helpers/namespaces.js';

const script = (name: string) => fileURLToPath(new URL(`./child-processes/${name}`, import.meta.url));
const SERVER_PORT = 6767;
const REPLY_PORT = 6768;

/** server: s0 10.77.0.1/24 <-> client a: a0 10.77.0.2/24, server: s1 10.77.1.1/24 <-> client b: b1 10.77.1.2/24 */
function twoLinkTopology(t: ExecutionContext) {
  const ns = namespaces(t, 'dgn', ['server', 'a', 'b'] as const);
  ip('link', 'add', 'name', 's0', 'netns', ns.server, 'type', 'veth', 'peer', 'name', 'a0', 'netns', ns.a);
  ip('link', 'add', 'name', 's1', 'netns', ns.server, 'type', 'veth', 'peer', 'name', 'b1', 'netns', ns.b);
  for (const [name, dev, address] of [
    [ns.server, 's0', '10.77.0.1/24'],
    [ns.server, 's1', '10.77.1.1/24'],
    [ns.a, 'a0', '10.77.0.2/24'],
    [ns.b, 'b1', '10.77.1.2/24'],
  ] as const) {
    ip('-n', name, 'addr', 'add', address, 'dev', dev);
    ip('-n', name, 'link', 'set', dev, 'up');
  }
  // Clients send to 255.255.255.255 as a DHCP client does; the route says which link.
  ip('-n', ns.a, 'route', 'add', 'default', 'dev', 'a0');
  ip('-n', ns.b, 'route', 'add', 'default', 'dev', 'b1');
  return ns;
}

async function exchange(t: ExecutionContext, ns: ReturnType<typeof twoLinkTopology>, serverArgs: string[]) {
  const server = runInNamespace(t, ns.server, script('broadcast-responder.ts'), [String(SERVER_PORT), String(REPLY_PORT), ...serverArgs]);
  t.deepEqual(await server.nextLine(), { ready: true });
  const peerArgs = [String(SERVER_PORT), String(REPLY_PORT), '1500'];
  const a = runInNamespace(t, ns.a, script('broadcast-peer.ts'), ['hello-from-a', ...peerArgs]);
  const b = runInNamespace(t, ns.b, script('broadcast-peer.ts'), ['hello-from-b', ...peerArgs]);
  const [aResult, bResult] = [await a.nextLine(), await b.nextLine()];
  server.process.kill('SIGTERM');
  await server.exited;
  const requests = server.lines.slice(1);
  return { requests, aReplies: new Set(aResult.replies as string[]), bReplies: new Set(bResult.replies as string[]) };
}

test('a broadcast is reported with its arrival interface and the IP_PKTINFO reply leaves by that interface', async (t) => {
  const ns = twoLinkTopology(t);
  const { requests, aReplies, bReplies } = await exchange(t, ns, []);

  const fromA = requests.filter((r) => r.text === 'hello-from-a');
  const fromB = requests.filter((r) => r.text === 'hello-from-b');
  t.true(fromA.length > 0 && fromB.length > 0, JSON.stringify(requests));
  for (const r of fromA) {
    t.like(r, { ifname: 's0', address: '10.77.0.2', destinationAddress: '255.255.255.255', localAddress: '10.77.0.1' });
  }
  for (const r of fromB) {
    t.like(r, { ifname: 's1', address: '10.77.1.2', destinationAddress: '255.255.255.255', localAddress: '10.77.1.1' });
  }
  t.not(fromA[0]!.ifindex, fromB[0]!.ifindex);
  // Each client sees only the reply to itself, sent out of its own link.
  t.deepEqual([...aReplies], ['reply:s0:hello-from-a']);
  t.deepEqual([...bReplies], ['reply:s1:hello-from-b']);
});

test('a socket bound to an interface (SO_BINDTODEVICE) hears only that interface', async (t) => {
  const ns = twoLinkTopology(t);
  const { requests, aReplies, bReplies } = await exchange(t, ns, ['s1']);

  t.true(requests.length > 0);
  t.true(requests.every((r) => r.text === 'hello-from-b' && r.ifname === 's1'), JSON.stringify(requests));
  t.deepEqual([...aReplies], []);
  t.deepEqual([...bReplies], ['reply:s1:hello-from-b']);
});

test('sending to an address without a route fails with ENETUNREACH, and a batch carries on past it', async (t) => {
  const [name] = Object.values(namespaces(t, 'dgn', ['unreach'] as const));
  const probe = runInNamespace(t, name!, script('unreachable-probe.ts'), []);
  const report = await probe.nextLine();
  t.like(report, {
    send: { code: 'ENETUNREACH', syscall: 'sendmsg' },
    batch: { sent: 1, failed: [{ index: 0, code: 'ENETUNREACH' }] },
    selfReceived: 'b',
  });
  t.regex((report.send as { message: string }).message, /ENETUNREACH .*192\.0\.2\.1:9/);
  t.is(await probe.exited, 0);
});
