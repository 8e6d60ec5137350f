// The DNS handler without sockets (src/net/dns/handler.ts): authoritative answers, negative answers
// with the SOA, case, EDNS0, truncation, REFUSED / forwarding, and what it refuses to answer.
import test from 'ava';
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer, type Packet } from 'dns-packet';
import { AnswerCache } from '../src/net/dns/answer-cache.js';
import type { DnsBackend, NameRecords, Zone } from '../src/net/dns/backend.js';
import { handleDnsQuery, Rcode, servfail, type DnsResult } from '../src/net/dns/handler.js';

const ZONES: Zone[] = [
  { name: 'cluster.local', serial: 7, nameserver: 'head.cluster.local' },
  { name: '0.10.in-addr.arpa', serial: 7, nameserver: 'head.cluster.local' },
];
const none = { a: [], aaaa: [], ptr: [], srv: [] };
const NAMES = new Map<string, NameRecords>([
  ['cluster.local', none],
  ['0.10.in-addr.arpa', none],
  ['head.cluster.local', { ...none, self: true }],
  ['n1.cluster.local', { ...none, a: ['10.0.0.11'] }],
  ['many.cluster.local', { ...none, a: Array.from({ length: 30 }, (_, i) => `10.0.1.${i + 1}`) }],
  ['_ldap._tcp.cluster.local', { ...none, srv: [{ priority: 1, weight: 5, port: 389, target: 'n1.cluster.local' }] }],
  ['_tcp.cluster.local', none],
  ['11.0.0.10.in-addr.arpa', { ...none, ptr: ['n1.cluster.local'] }],
]);

/** A literal table: the handler must not depend on how the directory builds it. */
const backend: DnsBackend = {
  ttl: 60,
  generation: () => 1,
  zoneOf: (name) => ZONES.filter((zone) => name === zone.name || name.endsWith(`.${zone.name}`)).sort((a, b) => b.name.length - a.name.length)[0],
  recordsAt: (name) => NAMES.get(name),
  close: () => {},
};
const CONTEXT = { localAddress: '10.0.0.1', forwarding: false };

function query(packet: Packet): Buffer {
  return dnsPacket.encode({ type: 'query', id: 4242, flags: dnsPacket.RECURSION_DESIRED, ...packet });
}
function ask(name: string, type: string, extra: Partial<Packet> = {}, context = CONTEXT): DnsResult {
  return handleDnsQuery(query({ questions: [{ name, type: type as 'A' }], ...extra }), context, backend);
}
function answer(result: DnsResult): DecodedPacket & { rcode: string } {
  if (!('reply' in result)) throw new Error(`no reply: ${JSON.stringify(result)}`);
  return dnsPacket.decode(result.reply) as DecodedPacket & { rcode: string };
}
const opt = (udpPayloadSize: number, ednsVersion = 0): Answer => ({ type: 'OPT', name: '.', udpPayloadSize, extendedRcode: 0, ednsVersion, flags: 0, flag_do: false, options: [] });

test('A of a node: authoritative, ID and RD echoed, the name as asked (mixed case)', (t) => {
  const reply = answer(ask('N1.Cluster.LOCAL', 'A'));
  t.is(reply.id, 4242);
  t.is(reply.rcode, 'NOERROR');
  t.true(reply.flag_qr);
  t.true(reply.flag_aa);
  t.true(reply.flag_rd);
  t.false(reply.flag_ra, 'no forwarding: no recursion available');
  t.deepEqual(reply.answers?.map((a) => [a.name, a.type, (a as { data: unknown }).data, (a as { ttl: number }).ttl]), [['N1.Cluster.LOCAL', 'A', '10.0.0.11', 60]]);
  t.deepEqual(reply.authorities, []);
});

test('NXDOMAIN inside the zone: rcode 3, AA, the zone SOA in authority with the TTL as minimum', (t) => {
  const reply = answer(ask('nope.cluster.local', 'A'));
  t.is(reply.rcode, 'NXDOMAIN');
  t.true(reply.flag_aa);
  t.deepEqual(reply.answers, []);
  t.is(reply.authorities?.length, 1);
  const soa = reply.authorities![0]! as { name: string; type: string; data: { mname: string; rname: string; serial: number; minimum: number } };
  t.is(soa.type, 'SOA');
  t.is(soa.name, 'cluster.local');
  t.like(soa.data, { mname: 'head.cluster.local', rname: 'hostmaster.cluster.local', serial: 7, minimum: 60 });
});

test('NODATA: an existing name without the type, and an empty non-terminal, answer NOERROR with no answer and the SOA', (t) => {
  for (const [name, type] of [['n1.cluster.local', 'AAAA'], ['n1.cluster.local', 'MX'], ['_tcp.cluster.local', 'SRV']] as const) {
    const reply = answer(ask(name, type));
    t.is(reply.rcode, 'NOERROR', `${name} ${type}`);
    t.true(reply.flag_aa);
    t.deepEqual(reply.answers, []);
    t.is(reply.authorities?.[0]?.type, 'SOA');
  }
});

test('apex: SOA and NS; the NS answer carries the name server address asked (glue)', (t) => {
  const soa = answer(ask('cluster.local', 'SOA'));
  t.is(soa.answers?.[0]?.type, 'SOA');
  t.deepEqual(soa.authorities, []);
  const ns = answer(ask('cluster.local', 'NS'));
  t.deepEqual(ns.answers?.map((a) => (a as { data: string }).data), ['head.cluster.local']);
  t.deepEqual(ns.additionals?.map((a) => [a.name, a.type, (a as { data: string }).data]), [['head.cluster.local', 'A', '10.0.0.1']]);
  const self = answer(ask('head.cluster.local', 'A', {}, { localAddress: '192.0.2.53', forwarding: false }));
  t.deepEqual(self.answers?.map((a) => (a as { data: string }).data), ['192.0.2.53'], "keel's own name is the address the query came to");
});

test('PTR and SRV', (t) => {
  t.deepEqual(answer(ask('11.0.0.10.in-addr.arpa', 'PTR')).answers?.map((a) => (a as { data: string }).data), ['n1.cluster.local']);
  t.is(answer(ask('12.0.0.10.in-addr.arpa', 'PTR')).rcode, 'NXDOMAIN');
  const srv = answer(ask('_ldap._tcp.cluster.local', 'SRV')).answers?.[0] as { data: { port: number; target: string } };
  t.like(srv.data, { port: 389, target: 'n1.cluster.local' });
});

test('outside keel\'s zones: REFUSED without AA; forwarded when upstreams are configured (RA then set on own answers)', (t) => {
  const refused = answer(ask('example.org', 'A'));
  t.is(refused.rcode, 'REFUSED');
  t.false(refused.flag_aa);
  t.deepEqual(refused.questions, [{ name: 'example.org', type: 'A', class: 'IN' }]);
  t.is(answer(ask('1.0.168.192.in-addr.arpa', 'PTR')).rcode, 'REFUSED');
  const forwarding = { localAddress: '10.0.0.1', forwarding: true };
  const forwarded = ask('example.org', 'A', {}, forwarding);
  t.true('forward' in forwarded);
  t.true(answer(ask('n1.cluster.local', 'A', {}, forwarding)).flag_ra);
  // Chaos-class queries (version.bind) are not keel's and are never forwarded.
  const chaos = handleDnsQuery(query({ questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }] }), forwarding, backend);
  t.is(answer(chaos).rcode, 'REFUSED');
  t.is(answer(ask('cluster.local', 'AXFR')).rcode, 'REFUSED', 'no zone transfers');
});

test('EDNS0: OPT answered with keel\'s payload size; an unknown EDNS version gets BADVERS', (t) => {
  const reply = answer(ask('n1.cluster.local', 'A', { additionals: [opt(4096)] }));
  const replyOpt = reply.additionals?.find((a) => a.type === 'OPT') as OptAnswer | undefined;
  t.is(replyOpt?.udpPayloadSize, 1232);
  t.is(replyOpt?.ednsVersion, 0);
  t.is(answer(ask('n1.cluster.local', 'A')).additionals?.length, 0, 'no OPT without one in the query');
  const badvers = answer(ask('n1.cluster.local', 'A', { additionals: [opt(4096, 1)] }));
  t.is((badvers.additionals?.find((a) => a.type === 'OPT') as OptAnswer | undefined)?.extendedRcode, 1, 'extended rcode 16 = BADVERS');
  t.deepEqual(badvers.answers, []);
});

test('truncation: 30 A records (no name compression: 34 bytes each) do not fit 512 bytes (TC, empty sections) but fit an EDNS 1232-byte answer', (t) => {
  const classic = answer(ask('many.cluster.local', 'A'));
  t.true(classic.flag_tc);
  t.deepEqual(classic.answers, []);
  t.is(classic.questions?.length, 1);
  const result = ask('many.cluster.local', 'A', { additionals: [opt(1232)] });
  t.true('reply' in result && result.reply.length > 512 && result.reply.length <= 1232);
  const edns = answer(result);
  t.false(edns.flag_tc);
  t.is(edns.answers?.length, 30);
  const small = answer(ask('many.cluster.local', 'A', { additionals: [opt(100)] }));
  t.true(small.flag_tc, 'an advertised size below 512 counts as 512');
});

test('over TCP the same 30 records come whole, without EDNS: only the message size limits a TCP answer', (t) => {
  const overTcp = answer(handleDnsQuery(query({ questions: [{ name: 'many.cluster.local', type: 'A' }] }), { ...CONTEXT, tcp: true }, backend));
  t.false(overTcp.flag_tc);
  t.is(overTcp.answers?.length, 30);
});

test('dropped: short, undecodable and response packets; answered with an error: other opcodes, question counts', (t) => {
  t.like(handleDnsQuery(Buffer.alloc(5), CONTEXT, backend), { drop: 'malformed' });
  const cut = query({ questions: [{ name: 'n1.cluster.local', type: 'A' }] }).subarray(0, 20);
  t.like(handleDnsQuery(cut, CONTEXT, backend), { drop: 'malformed' });
  const response = query({ questions: [{ name: 'n1.cluster.local', type: 'A' }] });
  response.writeUInt16BE(response.readUInt16BE(2) | 0x8000, 2);
  t.like(handleDnsQuery(response, CONTEXT, backend), { drop: 'response' });
  const notify = query({ questions: [{ name: 'cluster.local', type: 'SOA' }] });
  notify.writeUInt16BE(notify.readUInt16BE(2) | (4 << 11), 2);
  t.is(answer(handleDnsQuery(notify, CONTEXT, backend)).rcode, 'NOTIMP');
  t.is(answer(handleDnsQuery(query({ questions: [] }), CONTEXT, backend)).rcode, 'FORMERR');
  t.is(answer(handleDnsQuery(query({ questions: [{ name: 'a.cluster.local', type: 'A' }, { name: 'b.cluster.local', type: 'A' }] }), CONTEXT, backend)).rcode, 'FORMERR');
});

test('servfail: the forwarded query\'s ID and question, rcode 2', (t) => {
  const decoded = dnsPacket.decode(query({ questions: [{ name: 'example.org', type: 'AAAA' }] }));
  const reply = dnsPacket.decode(servfail(decoded)) as DecodedPacket & { rcode: string };
  t.is(reply.id, 4242);
  t.is(reply.rcode, 'SERVFAIL');
  t.is(Rcode.SERVFAIL, 2);
  t.deepEqual(reply.questions, [{ name: 'example.org', type: 'AAAA', class: 'IN' }]);
});

test('answer cache: a hit carries the request\'s ID and its spelling of the name (0x20); type, flags and address are part of the key', (t) => {
  const cache = new AnswerCache(100);
  const first = query({ questions: [{ name: 'n1.cluster.local', type: 'A' }] });
  const result = handleDnsQuery(first, CONTEXT, backend);
  if (!('reply' in result)) throw new Error('no reply');
  cache.put(first, CONTEXT.localAddress, result.reply);
  const mixed = dnsPacket.encode({ type: 'query', id: 777, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'N1.cLuStEr.LOCAL', type: 'A' }] });
  const hit = cache.get(mixed, CONTEXT.localAddress);
  t.truthy(hit);
  const decoded = dnsPacket.decode(hit!);
  t.is(decoded.id, 777);
  t.deepEqual(decoded.questions, [{ name: 'N1.cLuStEr.LOCAL', type: 'A', class: 'IN' }]);
  t.deepEqual(decoded.answers?.map((a) => [a.name, (a as { data: string }).data]), [['N1.cLuStEr.LOCAL', '10.0.0.11']]);
  const direct = handleDnsQuery(mixed, CONTEXT, backend);
  t.true('reply' in direct && hit!.equals(direct.reply), 'byte for byte what the handler would answer');
  t.is(cache.get(query({ questions: [{ name: 'n1.cluster.local', type: 'AAAA' }] }), CONTEXT.localAddress), undefined);
  t.is(cache.get(dnsPacket.encode({ type: 'query', id: 1, flags: 0, questions: [{ name: 'n1.cluster.local', type: 'A' }] }), CONTEXT.localAddress), undefined, 'RD is part of the key');
  t.is(cache.get(first, '10.9.9.9'), undefined);
  cache.clear();
  t.is(cache.get(first, CONTEXT.localAddress), undefined);
});

test('answer cache: a question whose name is a compression pointer is not cached', (t) => {
  const cache = new AnswerCache(100);
  const request = Buffer.concat([query({ questions: [] }).subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
  request.writeUInt16BE(1, 4);
  cache.put(request, CONTEXT.localAddress, Buffer.alloc(30));
  t.is(cache.get(request, CONTEXT.localAddress), undefined);
});

test('answer cache: EDNS cookies (a fresh one per query) do not split the key; the payload size and other options do', (t) => {
  const cache = new AnswerCache(100);
  const withOptions = (id: number, size: number, options: { code: number; data: Buffer }[]) =>
    dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'n1.cluster.local', type: 'A' }], additionals: [{ ...opt(size), options } as Answer] });
  const first = withOptions(1, 1232, [{ code: 10, data: Buffer.alloc(8, 1) }]);
  const result = handleDnsQuery(first, CONTEXT, backend);
  if (!('reply' in result)) throw new Error('no reply');
  cache.put(first, CONTEXT.localAddress, result.reply);
  const hit = cache.get(withOptions(2, 1232, [{ code: 10, data: Buffer.alloc(8, 2) }]), CONTEXT.localAddress);
  t.is(hit && dnsPacket.decode(hit).id, 2);
  t.is(cache.get(withOptions(3, 4096, [{ code: 10, data: Buffer.alloc(8, 3) }]), CONTEXT.localAddress), undefined, 'another payload size: another truncation limit');
  const subnet = withOptions(4, 1232, [{ code: 8, data: Buffer.from([0, 1, 24, 0, 10, 0, 0]) }]);
  cache.put(subnet, CONTEXT.localAddress, result.reply);
  t.is(cache.get(subnet, CONTEXT.localAddress), undefined, 'client subnet (or any option keel does not know to ignore): never cached');
});
