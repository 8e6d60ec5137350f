// keel's DHCP server against real clients in network namespaces: busybox udhcpc and Kea perfdhcp,
// in authoritative and proxy mode. keel (`keel serve --dhcp-interface srv0`) runs in the server
// namespace; each client runs in its own namespace over a veth pair.
import test, { type ExecutionContext } from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseStore } from '../src/store/leases.js';
import { Store } from '../src/store/store.js';
import { nodes } from '../src/model/cluster.js';
import { ip, namespaces } from './helpers/namespaces.js';
import { prepareCluster, run, startKeelInNamespace } from './dhcp/keel-in-netns.js';

interface Lab {
  server: string;
  clients: string[];
  dataDir: string;
}

/** A server namespace with `srv0` 10.67.0.1/24 on a bridge, and one client namespace per MAC with `cli0`. */
function lab(t: ExecutionContext, macs: string[]): Lab {
  const suffixes = ['s', ...macs.map((_, i) => `c${i}`)] as const;
  const ns = namespaces(t, 'kdh', suffixes as unknown as string[]);
  const server = ns.s!;
  ip('-n', server, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', server, 'link', 'set', 'br0', 'up');
  // The DHCP interface is the bridge: keel binds to it, each client hangs off one veth port.
  ip('-n', server, 'addr', 'add', '10.67.0.1/24', 'dev', 'br0');
  const clients = macs.map((mac, i) => {
    const client = ns[`c${i}`]!;
    ip('link', 'add', `p${i}`, 'netns', server, 'type', 'veth', 'peer', 'name', 'cli0', 'netns', client);
    ip('-n', server, 'link', 'set', `p${i}`, 'master', 'br0');
    ip('-n', server, 'link', 'set', `p${i}`, 'up');
    ip('-n', client, 'link', 'set', 'cli0', 'address', mac);
    ip('-n', client, 'link', 'set', 'cli0', 'up');
    return client;
  });
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-dhcp-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  return { server, clients, dataDir };
}

/** busybox udhcpc in `namespace`: the variables its script got on `bound`, or undefined when it got no lease. */
async function udhcpc(t: ExecutionContext, namespace: string, dir: string): Promise<Record<string, string> | undefined> {
  const out = join(dir, `udhcpc-${namespace}.env`);
  const script = join(dir, `udhcpc-${namespace}.sh`);
  writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${out}\nexit 0\n`);
  chmodSync(script, 0o755);
  const result = await run('ip', ['netns', 'exec', namespace, 'busybox', 'udhcpc', '-f', '-q', '-n', '-i', 'cli0', '-s', script, '-t', '3', '-T', '1', '-A', '1'], 15_000);
  t.log(`udhcpc in ${namespace}: exit ${result.code}`);
  try {
    return Object.fromEntries(readFileSync(out, 'utf8').split('\n').filter((line) => line.includes('=')).map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  } catch {
    return undefined;
  }
}

const AUTHORITATIVE_NET = {
  name: 'lab', first_ip: '10.67.0.100', ip_count: 100, mask_bits: 24, router_ip: '10.67.0.254', domain: 'lab.example',
  dns_servers: ['10.67.0.53'], lease_time: 600, dhcp_mode: 'authoritative',
};

test.serial('authoritative: udhcpc gets its node\'s address, router, DNS, domain and hostname; the lease is durable; unknown MACs get nothing', async (t) => {
  const known = '52:54:00:12:34:56';
  const unknown = '52:54:00:12:34:99';
  const { server, clients, dataDir } = lab(t, [known, unknown]);
  await prepareCluster(dataDir, { network: AUTHORITATIVE_NET, macs: [known] });
  const keel = await startKeelInNamespace(t, server, dataDir, 'br0');

  const [got, nothing] = await Promise.all([udhcpc(t, clients[0]!, dataDir), udhcpc(t, clients[1]!, dataDir)]);
  t.truthy(got, 'udhcpc got a lease');
  t.is(got!.ip, '10.67.0.100');
  t.is(got!.subnet, '255.255.255.0');
  t.is(got!.router, '10.67.0.254');
  t.is(got!.dns, '10.67.0.53');
  t.is(got!.domain, 'lab.example');
  t.is(got!.hostname, 'n0');
  t.is(got!.lease, '600');
  t.is(got!.serverid, '10.67.0.1');
  t.is(nothing, undefined, 'the unknown MAC got no lease');
  // Logged once, however often the client asked.
  t.is(keel.logs.filter((line) => line.mac === unknown && String(line.msg).includes('unknown MAC')).length, 1);

  await keel.stop();
  const store = new Store({ dataDir, headName: 'check' });
  t.teardown(() => store.close());
  const lease = new LeaseStore(store).get(known);
  t.like(lease, { mac: known, ip: '10.67.0.100' });
  t.is(lease!.expires - lease!.granted, 600);
  t.is(new LeaseStore(store).get(unknown), undefined);
});

test.serial('authoritative with accept_new_nodes: an unknown MAC is registered as a node and answered', async (t) => {
  const mac = '52:54:00:aa:bb:01';
  const { server, clients, dataDir } = lab(t, [mac]);
  await prepareCluster(dataDir, { network: AUTHORITATIVE_NET, acceptNewNodes: true });
  const keel = await startKeelInNamespace(t, server, dataDir, 'br0');
  const got = await udhcpc(t, clients[0]!, dataDir);
  t.is(got?.ip, '10.67.0.100');
  t.is(got?.hostname, 'n0');
  await keel.stop();
  const store = new Store({ dataDir, headName: 'check' });
  t.teardown(() => store.close());
  const uid = nodes(store).lookup('mac', mac);
  t.truthy(uid, 'the node was registered');
  t.is(nodes(store).get(uid!)?.ip, '10.67.0.100');
});

/** perfdhcp's summary line `<label>: <n>` under each exchange, in order (DISCOVER-OFFER first). */
function perfdhcpCounts(output: string, label: string): number[] {
  return [...output.matchAll(new RegExp(`^${label}: (\\d+)`, 'gm'))].map((m) => Number(m[1]));
}

async function perfdhcp(t: ExecutionContext, namespace: string, args: string[]): Promise<string> {
  // perfdhcp acts as a relay (it binds port 67 and sets giaddr), so its interface needs an address.
  ip('-n', namespace, 'addr', 'add', '10.67.0.2/24', 'dev', 'cli0');
  const result = await run('ip', ['netns', 'exec', namespace, 'perfdhcp', '-4', '-l', 'cli0', ...args], 60_000);
  t.log(result.stdout);
  return result.stdout;
}

/** perfdhcp -R N -b mac=00:0c:01:02:00:00 sends from 00:0c:01:02:HH:LL for a random HHLL below N. */
const perfMac = (i: number) => `00:0c:01:02:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

test.serial('authoritative: perfdhcp full DORA for 140 known nodes — every ACK is a durable lease of the node\'s address', async (t) => {
  const { server, clients, dataDir } = lab(t, ['02:00:00:00:00:02']);
  const macs = Array.from({ length: 200 }, (_, i) => perfMac(i));
  await prepareCluster(dataDir, { network: { ...AUTHORITATIVE_NET, ip_count: 150, first_ip: '10.67.0.10' }, macs: macs.slice(0, 140) });
  const keel = await startKeelInNamespace(t, server, dataDir, 'br0');
  const output = await perfdhcp(t, clients[0]!, ['-b', 'mac=00:0c:01:02:00:00', '-R', '140', '-r', '200', '-n', '400', '-p', '10']);
  const sent = perfdhcpCounts(output, 'sent packets');
  const received = perfdhcpCounts(output, 'received packets');
  t.is(sent.length, 2, 'perfdhcp reported DISCOVER-OFFER and REQUEST-ACK');
  t.true(received[0]! >= sent[0]! * 0.95, `offers ${received[0]} for ${sent[0]} discovers`);
  t.true(received[1]! >= sent[1]! * 0.95, `acks ${received[1]} for ${sent[1]} requests`);
  t.true(received[1]! > 0);
  await keel.stop();
  const store = new Store({ dataDir, headName: 'check' });
  t.teardown(() => store.close());
  const leases = new LeaseStore(store).list();
  t.true(leases.length > 0);
  for (const lease of leases) t.is(lease.ip, nodes(store).get(nodes(store).lookup('mac', lease.mac)!)?.ip as string);
});

test.serial('proxy: perfdhcp PXE DISCOVERs (option 60 PXEClient) each get an OFFER; non-PXE ones get none', async (t) => {
  const { server, clients, dataDir } = lab(t, ['02:00:00:00:00:03']);
  await prepareCluster(dataDir, { network: { name: 'site', first_ip: '10.67.0.100', ip_count: 100, mask_bits: 24 } });
  const keel = await startKeelInNamespace(t, server, dataDir, 'br0');
  const pxe = await perfdhcp(t, clients[0]!, ['-o', '60,505845436c69656e74', '-i', '-R', '100', '-r', '200', '-n', '400', '-p', '10']);
  const sent = perfdhcpCounts(pxe, 'sent packets')[0]!;
  t.true(sent > 0);
  t.true(perfdhcpCounts(pxe, 'received packets')[0]! >= sent * 0.95, 'nearly every PXE DISCOVER got an OFFER');
  ip('-n', clients[0]!, 'addr', 'flush', 'dev', 'cli0');
  const plain = await perfdhcp(t, clients[0]!, ['-i', '-R', '100', '-r', '50', '-n', '50', '-p', '5']);
  t.is(perfdhcpCounts(plain, 'received packets')[0], 0, 'no OFFER to clients that are not booting');
  await keel.stop();
});
