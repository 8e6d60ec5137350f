// One DNS query in, one answer (or a decision) out, without sockets: RFC 1034/1035 authoritative
// answers from the backend (A, AAAA, PTR, SRV, and SOA and NS at each apex), NXDOMAIN and NODATA
// with the zone's SOA in the authority section (RFC 2308, so resolvers cache the negative answer),
// EDNS0 (RFC 6891) and truncation; names outside keel's zones are forwarded when upstreams are
// configured, else REFUSED. The server (server.ts) owns the sockets, the answer cache and the
// forwarding.
import { isIPv4 } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer, type Question } from 'dns-packet';
import type { DnsBackend, NameRecords, Zone } from './backend.js';

export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
/** RFC 6891 §7: the 12-bit extended RCODE 16, whose upper 8 bits go in the OPT record. */
const BADVERS_UPPER = 1;

/** Largest answer without EDNS (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_LIMIT = 512;
/**
 * The UDP payload size keel advertises and answers up to: the DNS flag day 2020 value, which fits
 * an IPv6 minimum MTU without fragmentation.
 */
export const EDNS_UDP_LIMIT = 1232;
/** A TCP message's two-byte length (RFC 1035 §4.2.2). */
const TCP_MESSAGE_LIMIT = 0xffff;

const QR = 1 << 15;
const OPCODE_SHIFT = 11;
const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const RD = dnsPacket.RECURSION_DESIRED;
const RA = dnsPacket.RECURSION_AVAILABLE;
const CD = dnsPacket.CHECKING_DISABLED;

export interface QueryContext {
  /** The address the query was sent to: the A record of keel's own name. */
  localAddress: string;
  /** Whether names outside keel's zones are forwarded to upstreams (else REFUSED). */
  forwarding: boolean;
  /** Asked over TCP (tcp.ts): answers up to a message's 65,535 bytes, never truncated. */
  tcp?: boolean;
}

export type Outcome = 'answer' | 'nodata' | 'nxdomain' | 'refused' | 'formerr' | 'notimp' | 'badvers';

export type DnsResult =
  /** `cacheable`: the same request bytes (less the ID) from the same local address get the same reply while the backend's generation holds. */
  | { reply: Buffer; outcome: Outcome; cacheable: boolean }
  /** Not keel's: send the request to an upstream. */
  | { forward: DecodedPacket }
  | { drop: 'malformed' | 'response'; detail: string };

export function handleDnsQuery(request: Buffer, context: QueryContext, backend: DnsBackend): DnsResult {
  if (request.length < 12) return { drop: 'malformed', detail: `${request.length} bytes: shorter than a DNS header` };
  // A response arriving at a server is never answered: two servers must not bounce errors forever.
  if ((request.readUInt16BE(2) & QR) !== 0) return { drop: 'response', detail: 'QR bit set' };
  let query: DecodedPacket;
  try {
    query = dnsPacket.decode(request);
  } catch (error) {
    return { drop: 'malformed', detail: (error as Error).message };
  }
  const opcode = (request.readUInt16BE(2) >> OPCODE_SHIFT) & 0xf;
  const questions = query.questions ?? [];
  const opts = (query.additionals ?? []).filter((record): record is OptAnswer => record.type === 'OPT');
  const edns = opts.length === 1 ? opts[0] : undefined;
  const reply = (rcode: number, outcome: Outcome, sections: Sections = EMPTY, flags = 0) =>
    ({ reply: encodeReply(query, questions.slice(0, 1), rcode, flags, sections, edns !== undefined, context.forwarding, context.tcp === true), outcome, cacheable: true });

  if (opcode !== 0) return reply(Rcode.NOTIMP, 'notimp');
  if (questions.length !== 1 || opts.length > 1) return reply(Rcode.FORMERR, 'formerr');
  if (edns !== undefined && edns.ednsVersion !== 0) return reply(Rcode.NOERROR, 'badvers', { ...EMPTY, extendedRcode: BADVERS_UPPER });
  const question = questions[0]!;
  const name = question.name.toLowerCase();
  const zone = question.class === 'IN' || question.class === undefined ? backend.zoneOf(name) : undefined;
  if (zone === undefined) {
    if (context.forwarding && (question.class === 'IN' || question.class === undefined)) return { forward: query };
    return reply(Rcode.REFUSED, 'refused');
  }

  // Zone transfers are not offered: keel is the only server of its zones, there is no secondary to feed.
  if ((question.type as string) === 'AXFR' || (question.type as string) === 'IXFR') return reply(Rcode.REFUSED, 'refused');
  const records = backend.recordsAt(name);
  const soa = () => [soaRecord(zone, backend.ttl)];
  if (records === undefined) return reply(Rcode.NXDOMAIN, 'nxdomain', { ...EMPTY, authorities: soa() }, AA);
  const answers = answersFor(question, name, records, zone, backend.ttl, context);
  if (answers.length === 0) return reply(Rcode.NOERROR, 'nodata', { ...EMPTY, authorities: soa() }, AA);
  // The name server's address beside an NS answer (glue), so the resolver need not ask again.
  const additionals = answers.some((record) => record.type === 'NS')
    ? [{ type: 'A' as const, name: zone.nameserver, ttl: backend.ttl, data: context.localAddress }]
    : [];
  return reply(Rcode.NOERROR, 'answer', { ...EMPTY, answers, additionals }, AA);
}

/** A SERVFAIL for `request` (a forwarded query whose upstream did not answer in time). */
export function servfail(query: DecodedPacket, tcp = false): Buffer {
  const edns = (query.additionals ?? []).some((record) => record.type === 'OPT');
  return encodeReply(query, (query.questions ?? []).slice(0, 1), Rcode.SERVFAIL, 0, EMPTY, edns, true, tcp);
}

interface Sections {
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  extendedRcode?: number;
}
const EMPTY: Sections = { answers: [], authorities: [], additionals: [] };

function answersFor(question: Question, name: string, records: NameRecords, zone: Zone, ttl: number, context: QueryContext): Answer[] {
  const owner = question.name; // as asked: a resolver using 0x20 case randomisation checks it
  const all = (question.type as string) === 'ANY';
  const answers: Answer[] = [];
  if (all || question.type === 'A') {
    for (const ip of records.a) answers.push({ type: 'A', name: owner, ttl, data: ip });
    if (records.self && isIPv4(context.localAddress)) answers.push({ type: 'A', name: owner, ttl, data: context.localAddress });
  }
  if (all || question.type === 'AAAA') for (const ip of records.aaaa) answers.push({ type: 'AAAA', name: owner, ttl, data: ip });
  if (all || question.type === 'PTR') for (const target of records.ptr) answers.push({ type: 'PTR', name: owner, ttl, data: target });
  if (all || question.type === 'SRV') for (const srv of records.srv) answers.push({ type: 'SRV', name: owner, ttl, data: srv });
  if (name === zone.name) {
    if (all || question.type === 'SOA') answers.push({ ...soaRecord(zone, ttl), name: owner });
    if (all || question.type === 'NS') answers.push({ type: 'NS', name: owner, ttl, data: zone.nameserver });
  }
  return answers;
}

function soaRecord(zone: Zone, ttl: number): Answer {
  return {
    type: 'SOA', name: zone.name, ttl,
    // minimum is the negative-caching TTL (RFC 2308 §4).
    data: { mname: zone.nameserver, rname: `hostmaster.${zone.name}`, serial: zone.serial, refresh: 3600, retry: 600, expire: 86400, minimum: ttl },
  };
}

/**
 * The reply to `query`: its ID, RD and CD copied, the question echoed, OPT when the query had one
 * (keel's payload size; no DNSSEC, so DO is not echoed), RA when keel forwards, and TC with the sections left empty when
 * it does not fit the client's limit (512 bytes without EDNS, the advertised size within
 * 512..1232 with it): the client retries over TCP, where only a message's 65,535 bytes limit it.
 */
function encodeReply(query: DecodedPacket, questions: Question[], rcode: number, flags: number, sections: Sections, edns: boolean, recursionAvailable: boolean, tcp: boolean): Buffer {
  const requestOpt = (query.additionals ?? []).find((record): record is OptAnswer => record.type === 'OPT');
  const opt: Answer[] = edns ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_LIMIT, extendedRcode: sections.extendedRcode ?? 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [];
  const header = {
    type: 'response' as const,
    id: query.id,
    flags: flags | rcode | ((query.flags ?? 0) & (RD | CD)) | (recursionAvailable ? RA : 0),
    questions,
  };
  const full = dnsPacket.encode({ ...header, answers: sections.answers, authorities: sections.authorities, additionals: [...sections.additionals, ...opt] });
  const limit = tcp ? TCP_MESSAGE_LIMIT : requestOpt ? Math.min(Math.max(requestOpt.udpPayloadSize, CLASSIC_UDP_LIMIT), EDNS_UDP_LIMIT) : CLASSIC_UDP_LIMIT;
  if (full.length <= limit) return full;
  return dnsPacket.encode({ ...header, flags: header.flags | TC, answers: [], authorities: [], additionals: opt });
}
