// Property-based fuzz targets (fast-check) for the code that reads what the network sends:
// the DHCP codec and handlers, the DNS handler, the TFTP request parser and the TFTP transfer core. Each target
// must never throw, hang or grow without bound on any input; test/fuzz-net.test.ts runs a short
// pass of each in `npm test`, test/fuzz/run.ts the long one (docs/security.md, "Fuzzing").
import { readdirSync, readFileSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { parseDhcp, serializeDhcp } from '../../src/net/dhcp/codec.js';
import { handleAuthoritative, type NodeBinding } from '../../src/net/dhcp/handler-authoritative.js';
import { handleProxy } from '../../src/net/dhcp/handler-proxy.js';
import type { RequestContext } from '../../src/net/dhcp/reply.js';
import { AnswerCache } from '../../src/net/dns/answer-cache.js';
import type { DnsBackend } from '../../src/net/dns/backend.js';
import { CLASSIC_UDP_LIMIT, EDNS_UDP_LIMIT, handleDnsQuery } from '../../src/net/dns/handler.js';
import { ErrorCode, Opcode, parseTftp, serializeAck, serializeError, serializeRequest } from '../../src/net/tftp/packets.js';
import { classifyRequest } from '../../src/net/tftp/request.js';
import { Transfer, type TransferStep } from '../../src/net/tftp/transfer.js';

const DHCP_FIXTURES = readdirSync(new URL('../fixtures/dhcp/', import.meta.url))
  .filter((name) => name.endsWith('.bin'))
  .map((name) => readFileSync(new URL(`../fixtures/dhcp/${name}`, import.meta.url)));

const TFTP_SEEDS = [
  serializeRequest({ filename: 'ipxe.efi', mode: 'octet', options: [{ name: 'tsize', value: '0' }, { name: 'blksize', value: '1468' }, { name: 'windowsize', value: '16' }] }),
  serializeRequest({ filename: 'pxelinux.cfg/01-52-54-00-12-34-56', mode: 'netascii', options: [] }),
  serializeRequest({ type: 'wrq', filename: 'x', mode: 'octet', options: [] }),
  serializeAck(7),
  serializeError(ErrorCode.optionRefused, 'no'),
];

/** A real datagram with bytes overwritten, cut or extended, or random bytes: most inputs get past the first checks. */
const datagram = (seeds: readonly Buffer[], maxLength: number) => fc.oneof(
  fc.uint8Array({ maxLength }).map((bytes) => Buffer.from(bytes)),
  fc.record({
    seed: fc.constantFrom(...seeds),
    edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    cut: fc.option(fc.nat({ max: maxLength })),
    tail: fc.uint8Array({ maxLength: 64 }),
  }).map(({ seed, edits, cut, tail }) => {
    const bytes = Buffer.concat([seed.subarray(0, cut ?? seed.length), tail]);
    for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
    return bytes;
  }),
);

const CONTEXT: RequestContext = { serverAddress: '10.0.0.1', localPort: 67, onPxePort: false, source: { address: '10.0.0.9', port: 68 }, httpPort: 8080 };
const BINDING: NodeBinding = {
  nodeUid: '0'.repeat(32), ip: '10.0.0.50', subnetMask: '255.255.255.0', routers: ['10.0.0.1'], dnsServers: ['10.0.0.1'],
  domain: 'cluster', hostname: 'n1', leaseSeconds: 3600,
};

/** parseDhcp never throws; what it parses encodes (or is refused with RangeError) and reads back the same. */
const dhcpCodec = () => fc.property(datagram(DHCP_FIXTURES, 1500), (bytes) => {
  const parsed = parseDhcp(bytes);
  if (!parsed.ok) return typeof parsed.reason === 'string';
  let encoded: Buffer;
  try {
    encoded = serializeDhcp(parsed.packet);
  } catch (error) {
    if (error instanceof RangeError) return true; // e.g. a chaddr longer than 16 bytes: never built by a handler
    throw error;
  }
  const again = parseDhcp(encoded);
  if (!again.ok) throw new Error(`re-encoded packet does not parse: ${again.reason}`);
  if (!serializeDhcp(again.packet).equals(encoded)) throw new Error('encoding is not stable');
  return true;
});

/** Both handlers answer any parsed packet without throwing, and every reply encodes within the client's size. */
const dhcpHandlers = () => fc.property(datagram(DHCP_FIXTURES, 1500), fc.boolean(), fc.boolean(), (bytes, onPxePort, known) => {
  const parsed = parseDhcp(bytes);
  if (!parsed.ok) return true;
  const context = { ...CONTEXT, onPxePort, localPort: onPxePort ? 4011 : 67 };
  for (const result of [handleProxy(parsed.packet, context), handleAuthoritative(parsed.packet, context, known ? BINDING : undefined)]) {
    if ('reply' in result) serializeDhcp(result.reply.packet, { maxLength: 548 });
  }
  return true;
});

const DNS_SEEDS = [
  dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: 'n1.cluster.local', type: 'A' }] }),
  dnsPacket.encode({ type: 'query', id: 2, questions: [{ name: '11.0.0.10.in-addr.arpa', type: 'PTR' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }),
  dnsPacket.encode({ type: 'query', id: 3, questions: [{ name: 'cluster.local', type: 'ANY' as 'A' }] }),
  dnsPacket.encode({ type: 'query', id: 4, questions: [{ name: 'example.org', type: 'AAAA' }] }),
];
const none = { a: [], aaaa: [], ptr: [], srv: [] };
const DNS_BACKEND: DnsBackend = {
  ttl: 60,
  generation: () => 1,
  zoneOf: (name) => (name === 'cluster.local' || name.endsWith('.cluster.local') ? { name: 'cluster.local', serial: 1, nameserver: 'head.cluster.local' } : undefined),
  recordsAt: (name) => (name === 'cluster.local' ? none : name === 'head.cluster.local' ? { ...none, self: true } : name === 'n1.cluster.local' ? { ...none, a: ['10.0.0.11'] } : undefined),
  close: () => {},
};

/**
 * The DNS handler never throws; every reply decodes, answers the query's ID with QR set and fits
 * the client's limit; the answer cache gives back, for the same bytes, exactly that reply.
 */
const dnsHandler = () => fc.property(datagram(DNS_SEEDS, 600), fc.boolean(), (bytes, forwarding) => {
  const result = handleDnsQuery(bytes, { localAddress: '10.0.0.1', forwarding }, DNS_BACKEND);
  if ('drop' in result) return typeof result.detail === 'string';
  if ('forward' in result) return forwarding;
  const reply = dnsPacket.decode(result.reply);
  if (reply.id !== bytes.readUInt16BE(0) || !reply.flag_qr) throw new Error('reply without the query\'s ID or QR');
  if (result.reply.length > EDNS_UDP_LIMIT || (!reply.additionals?.some((r) => r.type === 'OPT') && result.reply.length > CLASSIC_UDP_LIMIT)) throw new Error(`reply of ${result.reply.length} bytes`);
  const cache = new AnswerCache(1);
  cache.put(bytes, '10.0.0.1', result.reply);
  const hit = cache.get(bytes, '10.0.0.1');
  if (hit !== undefined && !hit.equals(result.reply)) throw new Error('the cache answers differently from the handler');
  return true;
});

/** classifyRequest never throws: a read of octet/netascii, a refusal with an ERROR to send, or silence. */
const tftpRequest = () => fc.property(datagram(TFTP_SEEDS, 600), (bytes) => {
  const decision = classifyRequest(bytes);
  switch (decision.kind) {
    case 'read':
      return (decision.request.mode === 'octet' || decision.request.mode === 'netascii') && bytes.readUInt16BE(0) === Opcode.rrq;
    case 'refuse': {
      const reply = parseTftp(decision.reply);
      return reply.ok && reply.packet.type === 'error' && reply.packet.code === decision.code;
    }
    case 'ignore':
      return typeof decision.reason === 'string';
  }
});

type ClientEvent =
  | { kind: 'ack'; block: number }
  | { kind: 'timeout' }
  | { kind: 'datagram'; bytes: Buffer }
  | { kind: 'gone' };

const clientEvent: fc.Arbitrary<ClientEvent> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((block) => ({ kind: 'ack' as const, block })) },
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }).map((block) => ({ kind: 'ack' as const, block })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'timeout' as const }) },
  { weight: 2, arbitrary: datagram(TFTP_SEEDS, 64).map((bytes) => ({ kind: 'datagram' as const, bytes })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'gone' as const }) },
);

/**
 * A transfer fed any sequence of ACKs, timeouts, datagrams and a vanishing client never throws,
 * keeps a timer while it runs, sends nothing once finished and no DATA beyond the file.
 */
const tftpTransfer = () => fc.property(
  fc.record({
    fileSize: fc.integer({ min: 0, max: 100_000 }),
    mode: fc.constantFrom('octet' as const, 'netascii' as const),
    blksize: fc.option(fc.integer({ min: 0, max: 70_000 })),
    windowsize: fc.option(fc.integer({ min: 0, max: 70 })),
    tsize: fc.boolean(),
    events: fc.array(clientEvent, { maxLength: 60 }),
  }),
  ({ fileSize, mode, blksize, windowsize, tsize, events }) => {
    const options = [];
    if (blksize !== null) options.push({ name: 'blksize', value: String(blksize) });
    if (windowsize !== null) options.push({ name: 'windowsize', value: String(windowsize) });
    if (tsize) options.push({ name: 'tsize', value: '0' });
    const file = Buffer.alloc(fileSize, 0x5a);
    let clock = 0;
    const transfer = new Transfer({
      request: { filename: 'f', mode, options },
      fileSize,
      readBlock: (offset, length) => file.subarray(offset, offset + length),
      now: () => clock,
    });
    let finished = false;
    const check = (step: TransferStep) => {
      if (finished && (step.send.length > 0 || step.finished)) throw new Error('sent after the end');
      if (!finished && !step.finished && step.timeoutMs === null) throw new Error('a live transfer without a timer');
      for (const packet of step.send) {
        if (packet.readUInt16BE(0) === Opcode.data && packet.length - 4 > (transfer.negotiated?.blockSize ?? 512)) throw new Error('DATA over the block size');
      }
      if (step.finished) finished = true;
    };
    check(transfer.start());
    for (const event of events) {
      clock += 250;
      if (event.kind === 'ack') check(transfer.onAck(event.block));
      else if (event.kind === 'timeout') {
        clock += 10_000;
        check(transfer.onTimeout());
      } else if (event.kind === 'datagram') check(transfer.onDatagram(event.bytes));
      else check(transfer.onClientGone());
    }
    return true;
  },
);

export type FuzzTarget = 'dhcp-codec' | 'dhcp-handlers' | 'dns-handler' | 'tftp-request' | 'tftp-transfer';

/** Each target's property, typed alike so that runners take any of them. */
export const FUZZ_TARGETS = {
  'dhcp-codec': dhcpCodec,
  'dhcp-handlers': dhcpHandlers,
  'dns-handler': dnsHandler,
  'tftp-request': tftpRequest,
  'tftp-transfer': tftpTransfer,
} as unknown as Record<FuzzTarget, () => fc.IProperty<[unknown]>>;
