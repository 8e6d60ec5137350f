// The DHCP server's socket side on loopback: replies from the arrival address on the PXE port,
// malformed packets counted (never a crash), the per-MAC rate limit, stats per message type.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { parseDhcp, serializeDhcp } from '../src/net/dhcp/codec.js';
import { Model } from '../src/model/model.js';
import { DhcpDirectory } from '../src/net/dhcp/directory.js';
import { startLoopbackDhcp } from './helpers/dhcp-loopback.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/dhcp/${name}.bin`, import.meta.url));

test('loopback: PXE-port REQUESTs get ACKs from the arrival address; garbage is counted; one MAC is rate-limited', async (t) => {
  const { server, client, port: base } = await startLoopbackDhcp(t, {
    directory: (store, dataDir) => new DhcpDirectory(new Model(store, { dataDir })),
    log: pino({ level: 'silent' }), rateLimit: { burst: 3, perSecond: 0.001 },
  });
  const replies: Buffer[] = [];
  client.on('message', (data) => replies.push(data));

  client.send(Buffer.from('not dhcp at all'), base, '127.0.0.1');
  client.send(Buffer.alloc(300, 0xff), base + 1, '127.0.0.1');
  for (let i = 0; i < 5; i++) client.send(fixture('qemu-ovmf-03-to-server'), base + 1, '127.0.0.1');
  const deadline = Date.now() + 3000;
  while ((server.stats().drops['rate-limited'] ?? 0) < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 100));

  const stats = server.stats();
  t.is(stats.drops.malformed, 2);
  t.is(stats.received.REQUEST, 5);
  t.is(stats.sent.ACK, 3, 'the burst of 3 was answered');
  t.is(stats.drops['rate-limited'], 2);
  t.is(stats.latency.count, 3);
  t.is(stats.latency.buckets.reduce((a, b) => a + b, 0), 3);
  t.is(replies.length, 3);
  const ack = parseDhcp(replies[0]!);
  if (!ack.ok) throw new Error(ack.reason);
  t.is(ack.packet.options.get(54)?.join('.'), '127.0.0.1');
  t.is(ack.packet.file, 'ipxe.efi');
});

test('close() waits for lease writes under way: the store can be closed after it, and no ACK is sent late', async (t) => {
  const slowWrites: Promise<void>[] = [];
  const { server, client, port, store } = await startLoopbackDhcp(t, {
    portOffset: 10,
    directory: () => ({
      modeFor: () => ({ mode: 'authoritative', network: {} }),
      binding: () => ({ nodeUid: 'u1', ip: '127.0.0.9', subnetMask: '255.0.0.0', routers: [], dnsServers: [], domain: 'lab', hostname: 'n9', leaseSeconds: 600 }),
      acceptNewNodes: () => false,
      registerNode: () => Promise.reject(new Error('not used')),
      close: () => {},
    }),
    log: pino({ level: 'silent' }),
    // Every lease write takes 300 ms before it reaches LMDB, as a commit on a busy disk does.
    leases: (real) => ({
      put: (lease) => {
        const write = new Promise<void>((resolve) => setTimeout(resolve, 300)).then(() => real.put(lease));
        slowWrites.push(write);
        return write;
      },
      remove: (mac) => real.remove(mac),
    }),
  });
  const replies: Buffer[] = [];
  client.on('message', (data) => replies.push(data));
  // A renewal: ciaddr set, no requested address or server id — answered with an ACK after the lease write.
  const renew = parseDhcp(fixture('udhcpc-03-to-server'));
  if (!renew.ok) throw new Error(renew.reason);
  renew.packet.options.delete(50);
  renew.packet.options.delete(54);
  renew.packet.ciaddr = '127.0.0.9';
  client.send(serializeDhcp(renew.packet), port, '127.0.0.1');
  const deadline = Date.now() + 3000;
  while (slowWrites.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(slowWrites.length, 1, 'the lease write started');
  await server.close();
  t.is(server.stats().leaseWrites, 1, 'close() returned only after the write');
  await store.close(); // before the fix, the late ACK then read the closed store: "No transaction to renew", a crash
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(replies, [], 'no reply after close');
});
