// keel's DNS server on loopback, asked with dig (bind9-dnsutils): A and PTR of nodes and hostname
// records made through the API, SOA and NS at the apex, NXDOMAIN vs NODATA, case, the change feed,
// forwarding to a dnsmasq the test runs, a dead upstream (SERVFAIL), garbage on the wire; and what
// authoritative DHCP then tells nodes (option 6 and 15).
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { parseDhcp, serializeDhcp } from '../src/net/dhcp/codec.js';
import { DhcpDirectory } from '../src/net/dhcp/directory.js';
import { handleAuthoritative } from '../src/net/dhcp/handler-authoritative.js';
import { Option, getOption } from '../src/net/dhcp/options.js';
import { DnsDirectory } from '../src/net/dns/directory.js';
import { DnsServer } from '../src/net/dns/server.js';
import { Store } from '../src/store/store.js';
import { freePort } from './helpers/free-port.js';
import { startTestHead, type TestHead } from './helpers/head.js';

const run = promisify(execFile);

interface Dig {
  status: string;
  flags: string[];
  answer: string[][];
  authority: string[][];
  additional: string[][];
  ms: number;
}

/** dig's answer, its sections as whitespace-split record lines. */
async function dig(port: number, ...args: string[]): Promise<Dig> {
  const started = Date.now();
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=5', ...args]);
  const section = (name: string) => {
    const match = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(stdout);
    return match ? match[1]!.split('\n').filter((line) => line && !line.startsWith(';')).map((line) => line.split(/\s+/)) : [];
  };
  return {
    status: /status: (\w+)/.exec(stdout)?.[1] ?? `no answer: ${stdout}`,
    flags: (/;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '').trim().split(' '),
    answer: section('ANSWER'),
    authority: section('AUTHORITY'),
    additional: section('ADDITIONAL'),
    ms: Date.now() - started,
  };
}

/** A dnsmasq the test owns: the upstream keel forwards to, answering www.example.test from a hosts file. */
async function startDnsmasq(t: Pick<ExecutionContext, 'teardown'>): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-dnsmasq-'));
  writeFileSync(join(dir, 'hosts'), '192.0.2.80 www.example.test\n');
  const port = await freePort();
  const child = spawn('dnsmasq', [
    '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${join(dir, 'hosts')}`,
    '--listen-address=127.0.0.1', '--bind-interfaces', `--port=${port}`, '--user=root', '--pid-file=', '--log-facility=-',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.teardown(() => {
    if (child.exitCode === null) process.kill(child.pid!, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  // Ready when it answers.
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
    const probe = await dig(port, 'www.example.test', 'A').catch(() => undefined);
    if (probe?.status === 'NOERROR') return port;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`dnsmasq did not answer: ${stderr}`);
}

let keel: TestHead;
let port: number;
let token: string;
const ips: Record<string, string> = {};

async function ok(method: string, path: string, body?: unknown): Promise<unknown> {
  const { status, json } = await keel.call(method, path, { token, body });
  if (status !== 200) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(json)}`);
  return json.data;
}

// Hooks have no t.teardown: what the shared head and dnsmasq need is undone in after.always, last first.
const cleanups: (() => unknown)[] = [];
const hookTeardown = { teardown: (fn: () => unknown) => void cleanups.unshift(fn) };
test.after.always(async () => {
  for (const cleanup of cleanups) await cleanup();
});

test.before(async () => {
  const upstream = await startDnsmasq(hookTeardown);
  port = await freePort();
  keel = await startTestHead(hookTeardown as unknown as ExecutionContext, {
    KEEL_DNS_ENABLED: 'true', KEEL_DNS_PORT: String(port), KEEL_DNS_BIND: '127.0.0.1', KEEL_DNS_UPSTREAMS: `127.0.0.1:${upstream}`,
  });
  token = (await keel.login()).access_token;
  // Nodes on a network with its own domain; hostname records (no domain) under dns.domain, cluster.local.
  await ok('POST', '/nets', { name: 'lab', first_ip: '10.77.0.100', ip_count: 50, mask_bits: 24, domain: 'lab.test' });
  for (const mac of ['52:54:00:12:34:57', '52:54:00:00:00:02']) {
    const uid = await ok('POST', '/nodes', { mac }) as string;
    const node = await ok('GET', `/node/${uid}`) as { name: string; ip: string };
    ips[node.name] = node.ip;
  }
  await ok('POST', '/hostnames', { name: 'nfsserver', ip: '10.77.0.5' });
  await ok('POST', '/hostnames', { name: 'v6host', type: 'aaaarec', ip: 'fd00::5' });
  await ok('POST', '/hostnames', { name: 'ldap', type: 'srvrec', target: 'nfsserver', port: 389, proto: 'tcp' });
});

test.serial('A and PTR of nodes (their network\'s domain) and hostname records (dns.domain), authoritative, any case', async (t) => {
  t.deepEqual(Object.keys(ips).sort(), ['n0', 'n1']);
  const n0 = await dig(port, 'n0.lab.test', 'A');
  t.is(n0.status, 'NOERROR');
  t.true(n0.flags.includes('aa'));
  t.true(n0.flags.includes('ra'), 'forwarding is configured: recursion available');
  t.deepEqual(n0.answer, [['n0.lab.test.', '60', 'IN', 'A', ips.n0!]]);
  const hits = keel.head.dns!.stats().cacheHits;
  const again = await dig(port, 'N0.LAB.test', 'A');
  t.deepEqual(again.answer, [['N0.LAB.test.', '60', 'IN', 'A', ips.n0!]], 'from the answer cache, in the case asked');
  t.is(keel.head.dns!.stats().cacheHits, hits + 1);
  const upper = await dig(port, 'N1.LaB.TeSt', 'A');
  t.deepEqual(upper.answer, [['N1.LaB.TeSt.', '60', 'IN', 'A', ips.n1!]], 'found whatever the case, answered in the case asked');
  t.deepEqual((await dig(port, 'nfsserver.cluster.local', 'A')).answer, [['nfsserver.cluster.local.', '60', 'IN', 'A', '10.77.0.5']]);
  t.deepEqual((await dig(port, 'v6host.cluster.local', 'AAAA')).answer, [['v6host.cluster.local.', '60', 'IN', 'AAAA', 'fd00::5']]);
  t.deepEqual((await dig(port, '_ldap._tcp.cluster.local', 'SRV')).answer, [['_ldap._tcp.cluster.local.', '60', 'IN', 'SRV', '0', '0', '389', 'nfsserver.cluster.local.']]);
  const ptr = await dig(port, '-x', ips.n0!);
  t.true(ptr.flags.includes('aa'));
  t.deepEqual(ptr.answer.map((record) => record.slice(3)), [['PTR', 'n0.lab.test.']]);
  t.deepEqual((await dig(port, '-x', '10.77.0.5')).answer.map((record) => record.slice(3)), [['PTR', 'nfsserver.cluster.local.']]);
  t.is((await dig(port, '-x', '10.77.0.99')).status, 'NXDOMAIN', 'an address of keel\'s network without a host');
});

test.serial('SOA and NS at each apex; NXDOMAIN and NODATA carry the SOA in authority', async (t) => {
  const soa = await dig(port, 'lab.test', 'SOA');
  t.is(soa.status, 'NOERROR');
  t.is(soa.answer[0]?.[3], 'SOA');
  t.is(soa.answer[0]?.[4], 'head-test.cluster.local.', 'keel is the primary name server (server.name in dns.domain)');
  t.is(soa.answer[0]?.[5], 'hostmaster.lab.test.');
  const ns = await dig(port, 'cluster.local', 'NS');
  t.deepEqual(ns.answer, [['cluster.local.', '60', 'IN', 'NS', 'head-test.cluster.local.']]);
  t.deepEqual(ns.additional, [['head-test.cluster.local.', '60', 'IN', 'A', '127.0.0.1']], 'glue: the address asked');
  const reverseSoa = await dig(port, '0.77.10.in-addr.arpa', 'SOA');
  t.deepEqual([reverseSoa.status, reverseSoa.answer[0]?.[3]], ['NOERROR', 'SOA'], 'the /24 network\'s reverse zone');

  const nx = await dig(port, 'nosuch.lab.test', 'A');
  t.is(nx.status, 'NXDOMAIN');
  t.true(nx.flags.includes('aa'));
  t.deepEqual(nx.answer, []);
  t.deepEqual(nx.authority.map((record) => record.slice(0, 5)), [['lab.test.', '60', 'IN', 'SOA', 'head-test.cluster.local.']]);
  const nodata = await dig(port, 'n0.lab.test', 'AAAA');
  t.is(nodata.status, 'NOERROR');
  t.deepEqual(nodata.answer, []);
  t.is(nodata.authority[0]?.[3], 'SOA');
  const nonTerminal = await dig(port, '_tcp.cluster.local', 'SRV');
  t.is(nonTerminal.status, 'NOERROR', 'an empty non-terminal exists');
});

test.serial('answers follow the store\'s change feed: a new hostname, a deleted one', async (t) => {
  t.is((await dig(port, 'printer.cluster.local', 'A')).status, 'NXDOMAIN');
  const uid = await ok('POST', '/hostnames', { name: 'printer', ip: '10.77.0.6' }) as string;
  t.deepEqual((await dig(port, 'printer.cluster.local', 'A')).answer.map((record) => record[4]), ['10.77.0.6']);
  await ok('DELETE', `/hostname/${uid}`);
  t.is((await dig(port, 'printer.cluster.local', 'A')).status, 'NXDOMAIN');
});

test.serial('other names go to the upstream (dnsmasq); other classes are REFUSED', async (t) => {
  const before = keel.head.dns!.stats().forwarded;
  const forwarded = await dig(port, 'www.example.test', 'A');
  t.is(forwarded.status, 'NOERROR');
  t.deepEqual(forwarded.answer.map((record) => [record[0], record[3], record[4]]), [['www.example.test.', 'A', '192.0.2.80']]);
  t.is((await dig(port, 'version.bind', 'TXT', 'CH')).status, 'REFUSED');
  t.is(keel.head.dns!.stats().forwarded, before + 1);
  t.is(keel.head.dns!.stats().answered.forwarded, before + 1);
});

test.serial('an answer too big for UDP comes with TC; dig retries over TCP and gets it whole; forwarding over TCP', async (t) => {
  // 40 SRV records under one name: ≈ 2 KB, over EDNS's 1232 bytes.
  const created: string[] = [];
  for (let i = 0; i < 40; i++) created.push(await ok('POST', '/hostnames', { name: `pool${i}`, type: 'srvrec', service: 'pool', target: 'nfsserver', port: 7000 + i, proto: 'udp' }) as string);
  t.teardown(async () => {
    for (const uid of created) await ok('DELETE', `/hostname/${uid}`);
  });
  const overUdp = await dig(port, '+ignore', '_pool._udp.cluster.local', 'SRV');
  t.true(overUdp.flags.includes('tc'), `flags ${overUdp.flags.join(' ')}`);
  t.is(overUdp.answer.length, 0);
  // What a resolver does: dig's default follows TC over TCP to the same port.
  const followed = await dig(port, '_pool._udp.cluster.local', 'SRV');
  t.is(followed.status, 'NOERROR');
  t.false(followed.flags.includes('tc'));
  t.is(followed.answer.length, 40);
  t.deepEqual(followed.answer.map((record) => Number(record[6])).sort((a, b) => a - b), created.map((_, i) => 7000 + i));
  const overTcp = await dig(port, '+tcp', `n0.lab.test`, 'A');
  t.deepEqual(overTcp.answer.map((record) => record[4]), [ips.n0]);
  t.true(overTcp.flags.includes('aa'));
  t.is((await dig(port, '+tcp', 'www.example.test', 'A')).answer[0]?.[4], '192.0.2.80', 'forwarded to dnsmasq over TCP');
  // Garbage on a TCP connection closes it; the server goes on.
  await new Promise<void>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(Buffer.from([0, 6, 1, 2, 3, 4, 5, 6])));
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  t.is((await dig(port, '+tcp', 'nfsserver.cluster.local', 'A')).answer[0]?.[4], '10.77.0.5');
  const metrics = await (await fetch(`http://127.0.0.1:${keel.head.httpPort}/metrics`)).text();
  t.regex(metrics, /^keel_dns_tcp_queries_total [5-9]\d*$/m);
});

test.serial('garbage datagrams are dropped and counted; the server goes on answering', async (t) => {
  const socket = createSocket('udp4');
  t.teardown(() => socket.close());
  const before = keel.head.dns!.stats().drops.malformed ?? 0;
  for (const garbage of [Buffer.alloc(3), Buffer.from('not a dns packet at all, just text'), Buffer.from([0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c])]) {
    await new Promise<void>((resolve, reject) => socket.send(garbage, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
  }
  const deadline = Date.now() + 3000;
  while ((keel.head.dns!.stats().drops.malformed ?? 0) < before + 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(keel.head.dns!.stats().drops.malformed, before + 3);
  t.is((await dig(port, 'n0.lab.test', 'A')).status, 'NOERROR');
  // What an operator's Prometheus sees: the same counts at /metrics.
  const metrics = await (await fetch(`http://127.0.0.1:${keel.head.httpPort}/metrics`)).text();
  t.true(metrics.includes(`keel_dns_dropped_total{reason="malformed"} ${before + 3}\n`), metrics.split('\n').filter((line) => line.startsWith('keel_dns')).join('\n'));
  t.regex(metrics, /^keel_dns_answered_total\{outcome="answer"\} [1-9]\d*$/m);
});

test.serial('a flood of garbage is one log line per minute, not one per packet', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-dns-log-'));
  const store = new Store({ dataDir, headName: 't' });
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const server = new DnsServer({ bindAddress: '127.0.0.1', port: 0, backend: new DnsDirectory(store, { domain: 'cluster.local', serverName: 'h', ttl: 60 }), upstreams: [], log });
  const socket = createSocket('udp4');
  t.teardown(async () => {
    socket.close();
    await server.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  for (let i = 0; i < 200; i++) socket.send(Buffer.from([i, 0, 0, 0, 0, 1]), server.address().port, '127.0.0.1');
  const deadline = Date.now() + 3000;
  while ((server.stats().drops.malformed ?? 0) < 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(server.stats().drops.malformed, 200);
  const logged = lines.filter((line) => line.msg === 'malformed DNS packet dropped');
  t.is(logged.length, 1);
  t.like(logged[0], { source: '127.0.0.1', reason: '6 bytes: shorter than a DNS header' });
});

test.serial('a dead upstream: SERVFAIL after the forward timeout', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-dns-dead-'));
  const store = new Store({ dataDir, headName: 't' });
  const dead = await freePort(); // nobody listens there
  const server = new DnsServer({
    bindAddress: '127.0.0.1', port: 0, backend: new DnsDirectory(store, { domain: 'cluster.local', serverName: 'h', ttl: 60 }),
    upstreams: [{ address: '127.0.0.1', port: dead }], log: pino({ level: 'silent' }), forwardTimeoutMs: 1000,
  });
  t.teardown(async () => {
    await server.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const reply = await dig(server.address().port, 'www.example.test', 'A');
  t.is(reply.status, 'SERVFAIL');
  t.true(reply.ms >= 900 && reply.ms < 4000, `answered after ${reply.ms} ms`);
  t.is(server.stats().forwardTimeouts, 1);
  t.is((await dig(server.address().port, 'h.cluster.local', 'A')).answer[0]?.[4], '127.0.0.1', 'own zone still answered');
});

test.serial('authoritative DHCP with DNS on: keel as DNS server (option 6) and the network\'s domain (option 15)', async (t) => {
  await ok('PATCH', '/net/lab', { dhcp_mode: 'authoritative' });
  const request = parseDhcp(readFileSync(new URL('./fixtures/dhcp/qemu-ipxe-01-to-server.bin', import.meta.url)));
  if (!request.ok) throw new Error(request.reason);
  const context = { serverAddress: '10.77.0.1', localPort: 67, onPxePort: false, source: { address: '0.0.0.0', port: 68 }, httpPort: 8080 };
  const offerWith = (directory: DhcpDirectory, mac = '52:54:00:12:34:57') => {
    t.teardown(() => directory.close());
    const subnet = directory.modeFor('10.77.0.1');
    if (subnet.mode !== 'authoritative') throw new Error('the lab network is not authoritative');
    const binding = directory.binding(mac, subnet.network);
    if (binding === undefined || 'problem' in binding) throw new Error(`no binding: ${JSON.stringify(binding)}`);
    const result = handleAuthoritative({ ...request.packet, chaddr: mac }, context, binding);
    if ('drop' in result) throw new Error(result.drop);
    const wire = parseDhcp(serializeDhcp(result.reply.packet));
    if (!wire.ok) throw new Error(wire.reason);
    return wire.packet;
  };
  const withDns = offerWith(new DhcpDirectory(keel.head.model, { domain: 'cluster.local', nameKeel: true }));
  t.deepEqual(getOption(withDns.options, Option.dnsServers), ['10.77.0.1'], 'the address the offer comes from');
  t.is(withDns.options.get(15)?.toString(), 'lab.test');
  t.is(withDns.yiaddr, ips.n0!);
  const notOn53 = offerWith(new DhcpDirectory(keel.head.model, { domain: 'cluster.local', nameKeel: false }));
  t.is(getOption(notOn53.options, Option.dnsServers), undefined, 'DNS on another port than 53: clients are not pointed at it');
  await ok('PATCH', '/net/lab', { dns_servers: ['10.77.0.2'] });
  const own = offerWith(new DhcpDirectory(keel.head.model, { domain: 'cluster.local', nameKeel: true }));
  t.deepEqual(getOption(own.options, Option.dnsServers), ['10.77.0.2'], 'a network\'s own dns_servers win');
});

test.serial('a hostname record with a MAC gets DHCP answers: its address and name; in DNS too', async (t) => {
  await ok('PATCH', '/net/lab', { dhcp_mode: 'authoritative' });
  await ok('POST', '/hostnames', { name: 'bmc1', ip: '10.77.0.7', mac: '52-54-00-00-00-99' });
  const directory = new DhcpDirectory(keel.head.model, { domain: 'cluster.local', nameKeel: true });
  t.teardown(() => directory.close());
  const subnet = directory.modeFor('10.77.0.1');
  if (subnet.mode !== 'authoritative') throw new Error('the lab network is not authoritative');
  t.is(directory.binding('52:54:00:00:00:98', subnet.network), undefined, 'a MAC nobody has');
  const request = parseDhcp(readFileSync(new URL('./fixtures/dhcp/qemu-ipxe-01-to-server.bin', import.meta.url)));
  if (!request.ok) throw new Error(request.reason);
  const binding = directory.binding('52:54:00:00:00:99', subnet.network);
  if (binding === undefined || 'problem' in binding) throw new Error(`no binding: ${JSON.stringify(binding)}`);
  const result = handleAuthoritative({ ...request.packet, chaddr: '52:54:00:00:00:99' }, { serverAddress: '10.77.0.1', localPort: 67, onPxePort: false, source: { address: '0.0.0.0', port: 68 }, httpPort: 8080 }, binding);
  if ('drop' in result) throw new Error(result.drop);
  t.is(result.reply.packet.yiaddr, '10.77.0.7');
  t.is(getOption(result.reply.packet.options, Option.hostname), 'bmc1');
  t.deepEqual((await dig(port, 'bmc1.cluster.local', 'A')).answer.map((record) => record[4]), ['10.77.0.7']);
  // Outside the network where it asks: not answered, with the reason.
  await ok('POST', '/hostnames', { name: 'far', ip: '10.99.0.7', mac: '52:54:00:00:00:97' });
  const far = directory.binding('52:54:00:00:00:97', subnet.network);
  t.regex((far as { problem: string }).problem, /hostname record far \(52:54:00:00:00:97\) has IP 10\.99\.0\.7, outside 10\.77\.0\.0\/24/);
});
