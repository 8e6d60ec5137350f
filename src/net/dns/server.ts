// The DNS server: one UDP socket on dns.bind:dns.port (dgram-native: each query's destination
// address, so that an answer leaves from the address it was sent to on a multi-homed head, and
// keel's own A record is that address; one recvmmsg/sendmmsg per batch), an answer cache, the
// forwarding of names outside keel's zones to upstreams, counters and rate-limited log lines. What
// to answer is handler.ts's (pure); what the cluster holds is the backend's. The same port over
// TCP (tcp.ts) answers the resolvers that retry there after a truncated answer, forwarding over TCP.
import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import type { Logger } from 'pino';
import { createSocket, type Datagram, type OutgoingDatagram, type UdpSocket } from 'dgram-native';
import dnsPacket, { type DecodedPacket } from 'dns-packet';
import { AnswerCache } from './answer-cache.js';
import type { DnsBackend } from './backend.js';
import { handleDnsQuery, servfail, type Outcome } from './handler.js';
import { DEFAULT_TCP_LIMITS, DnsTcpListener, type DnsTcpLimits } from './tcp.js';

/** A UDP address and port: a client, or an upstream server. */
export interface UdpPeer {
  address: string;
  port: number;
}

export interface DnsServerOptions {
  bindAddress: string;
  /** 0: any free port (tests); read back with address(). */
  port: number;
  backend: DnsBackend;
  /** Where names outside keel's zones go, in turn; empty: they are REFUSED. */
  upstreams: readonly UdpPeer[];
  log: Logger;
  /** An upstream that has not answered by then: the client gets SERVFAIL. */
  forwardTimeoutMs?: number;
  /** Forwarded queries waiting for an upstream at once (UDP and TCP together); beyond, SERVFAIL at once. */
  maxOutstanding?: number;
  tcp?: DnsTcpLimits;
}

export const DEFAULT_FORWARD_TIMEOUT_MS = 2000;
export const DEFAULT_MAX_OUTSTANDING = 1024;
/** Distinct requests whose answers are kept (≈ 300 bytes each; dropped all at once when full or when the cluster changes). */
const ANSWER_CACHE_LIMIT = 50_000;
/** A malformed packet is logged at most once per this interval, with how many came since. */
const MALFORMED_LOG_INTERVAL_MS = 60_000;
const SWEEP_INTERVAL_MS = 100;

export interface DnsServerStats {
  /** Datagrams received on the DNS port. */
  received: number;
  /** Answers sent by outcome (answer, nodata, nxdomain, refused, formerr, notimp, badvers, forwarded, servfail). */
  answered: Record<string, number>;
  /** Datagrams not answered, by reason (malformed, response, truncated, upstream-mismatch). */
  drops: Record<string, number>;
  /** Answers taken from the answer cache. */
  cacheHits: number;
  forwarded: number;
  forwardTimeouts: number;
  /** Forwarded queries refused at once because maxOutstanding were waiting. */
  forwardOverflows: number;
  /** Queries received over TCP (counted apart from `received`, which counts datagrams). */
  tcpQueries: number;
  /** TCP connections closed at once because the most were open. */
  tcpRefused: number;
}

interface Outstanding {
  query: DecodedPacket;
  client: UdpPeer;
  localAddress: string;
  upstream: UdpPeer;
  deadline: number;
}

export class DnsServer {
  private readonly socket: UdpSocket;
  /** Forwarded queries leave from this socket (ephemeral port), so that upstream answers come apart from queries. */
  private readonly upstreamSocket: UdpSocket | undefined;
  private readonly outstanding = new Map<number, Outstanding>();
  private nextUpstream = 0;
  private readonly cache = new AnswerCache(ANSWER_CACHE_LIMIT);
  private cacheGeneration = -1;
  private pending: OutgoingDatagram[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private malformedLog = { loggedAt: -Infinity, since: 0 };
  private readonly timeoutMs: number;
  private readonly maxOutstanding: number;
  private readonly tcp: DnsTcpListener;
  /** TCP queries waiting for an upstream. */
  private tcpForwards = 0;
  private readonly counters: DnsServerStats = {
    received: 0, answered: {}, drops: {}, cacheHits: 0, forwarded: 0, forwardTimeouts: 0, forwardOverflows: 0, tcpQueries: 0, tcpRefused: 0,
  };

  constructor(private readonly options: DnsServerOptions) {
    this.timeoutMs = options.forwardTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS;
    this.maxOutstanding = options.maxOutstanding ?? DEFAULT_MAX_OUTSTANDING;
    // No GSO: answers are independent datagrams to different clients.
    this.socket = createSocket({
      bindAddress: options.bindAddress, port: options.port, reuseAddr: true, pktinfo: true,
      batchSize: 64, maxDatagramSize: 4096, recvBufferSize: 4 << 20, gso: false,
    });
    this.socket.on('batch', (datagrams: Datagram[]) => {
      for (const datagram of datagrams) this.receive(datagram);
      this.flush();
    });
    this.socket.on('error', (error) => options.log.warn({ err: error }, 'DNS socket error'));
    if (options.upstreams.length > 0) {
      try {
        this.upstreamSocket = createSocket({ bindAddress: '0.0.0.0', port: 0, pktinfo: false, batchSize: 64, maxDatagramSize: 4096, gso: false });
      } catch (error) {
        void this.socket.close();
        throw error;
      }
      this.upstreamSocket.on('batch', (datagrams: Datagram[]) => {
        for (const datagram of datagrams) this.fromUpstream(datagram);
        this.flush();
      });
      this.upstreamSocket.on('error', (error) => options.log.warn({ err: error }, 'DNS upstream socket error'));
    }
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS).unref();
    // The UDP port's number, also when the UDP socket took any free one.
    this.tcp = new DnsTcpListener(options.bindAddress, this.socket.address().port, (request, localAddress) => this.answerTcp(request, localAddress),
      options.tcp ?? DEFAULT_TCP_LIMITS, () => (this.counters.tcpRefused += 1));
  }

  /** Resolves when the TCP listener is up too; rejects when its port cannot be bound (UDP goes on answering). */
  ready(): Promise<void> {
    return this.tcp.ready();
  }

  address(): { address: string; port: number } {
    return this.socket.address();
  }

  stats(): DnsServerStats {
    return structuredClone(this.counters);
  }

  /** Closes the sockets and the backend (its change-feed subscription); waiting forwarded queries are dropped. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.outstanding.clear();
    this.options.backend.close();
    await Promise.all([this.socket.close(), this.upstreamSocket?.close(), this.tcp.close().catch(() => {})]);
  }

  /** One query from a TCP connection: answered as over UDP, without the size limit or the answer cache; forwarded over TCP. */
  private async answerTcp(request: Buffer, localAddress: string): Promise<Buffer | undefined> {
    this.counters.tcpQueries += 1;
    const result = handleDnsQuery(request, { localAddress, forwarding: this.upstreamSocket !== undefined, tcp: true }, this.options.backend);
    if ('drop' in result) {
      this.drop(result.drop);
      return undefined;
    }
    if (!('forward' in result)) {
      this.counters.answered[result.outcome] = (this.counters.answered[result.outcome] ?? 0) + 1;
      return result.reply;
    }
    if (this.outstanding.size + this.tcpForwards >= this.maxOutstanding) {
      this.counters.forwardOverflows += 1;
      return servfail(result.forward, true);
    }
    const upstream = this.options.upstreams[this.nextUpstream++ % this.options.upstreams.length]!;
    this.counters.forwarded += 1;
    this.tcpForwards += 1;
    try {
      const reply = await askOverTcp(upstream, request, this.timeoutMs);
      if (reply !== undefined && reply.length >= 12 && reply.readUInt16BE(0) === request.readUInt16BE(0) && sameQuestion(reply, result.forward)) {
        this.counters.answered.forwarded = (this.counters.answered.forwarded ?? 0) + 1;
        return reply;
      }
      this.counters.forwardTimeouts += 1;
    } finally {
      this.tcpForwards -= 1;
    }
    this.counters.answered.servfail = (this.counters.answered.servfail ?? 0) + 1;
    return servfail(result.forward, true);
  }

  private receive(datagram: Datagram): void {
    this.counters.received += 1;
    if (datagram.truncated) {
      this.drop('truncated');
      return;
    }
    const localAddress = datagram.localAddress ?? this.options.bindAddress;
    const generation = this.options.backend.generation();
    if (generation !== this.cacheGeneration) {
      this.cache.clear();
      this.cacheGeneration = generation;
    }
    // The same question asked at the same address gets the same answer until the cluster changes.
    const cached = this.cache.get(datagram.data, localAddress);
    if (cached !== undefined) {
      this.counters.cacheHits += 1;
      this.answer(cached, datagram, localAddress, 'cached');
      return;
    }
    const result = handleDnsQuery(datagram.data, { localAddress, forwarding: this.upstreamSocket !== undefined }, this.options.backend);
    if ('drop' in result) {
      this.drop(result.drop);
      if (result.drop === 'malformed') this.logMalformed(datagram, result.detail);
      return;
    }
    if ('forward' in result) {
      this.forward(result.forward, datagram, localAddress);
      return;
    }
    if (result.cacheable) this.cache.put(datagram.data, localAddress, result.reply);
    this.answer(result.reply, datagram, localAddress, result.outcome);
  }

  private answer(reply: Buffer, to: UdpPeer, localAddress: string, outcome: Outcome | 'cached' | 'forwarded' | 'servfail'): void {
    const datagram: OutgoingDatagram = { data: reply, address: to.address, port: to.port };
    if (localAddress !== '0.0.0.0') datagram.sourceAddress = localAddress;
    this.pending.push(datagram);
    if (outcome !== 'cached') this.counters.answered[outcome] = (this.counters.answered[outcome] ?? 0) + 1;
  }

  private forward(query: DecodedPacket, datagram: Datagram, localAddress: string): void {
    if (this.outstanding.size >= this.maxOutstanding) {
      this.counters.forwardOverflows += 1;
      this.answer(servfail(query), datagram, localAddress, 'servfail');
      return;
    }
    // A fresh random ID per forwarded query (the client's may collide with another client's, and
    // a guessable one lets an off-path attacker forge the upstream's answer).
    let id: number;
    do id = randomInt(0x10000);
    while (this.outstanding.has(id));
    const upstream = this.options.upstreams[this.nextUpstream++ % this.options.upstreams.length]!;
    const bytes = Buffer.from(datagram.data);
    bytes.writeUInt16BE(id, 0);
    this.outstanding.set(id, { query, client: { address: datagram.address, port: datagram.port }, localAddress, upstream, deadline: Date.now() + this.timeoutMs });
    this.counters.forwarded += 1;
    try {
      this.upstreamSocket!.send(bytes, upstream.port, upstream.address);
    } catch (error) {
      // No route to the upstream (or the like): the client gets the sweep's SERVFAIL at the deadline.
      this.options.log.debug({ err: error, upstream }, 'DNS forward could not be sent');
    }
  }

  private fromUpstream(datagram: Datagram): void {
    const data = datagram.data;
    const waiting = data.length >= 12 ? this.outstanding.get(data.readUInt16BE(0)) : undefined;
    // Only the upstream asked, with the question asked, may answer (RFC 5452 §9.1).
    if (waiting === undefined || datagram.address !== waiting.upstream.address || datagram.port !== waiting.upstream.port || !sameQuestion(data, waiting.query)) {
      this.drop('upstream-mismatch');
      return;
    }
    this.outstanding.delete(data.readUInt16BE(0));
    const reply = Buffer.from(data);
    reply.writeUInt16BE(waiting.query.id ?? 0, 0);
    this.answer(reply, waiting.client, waiting.localAddress, 'forwarded');
  }

  /** SERVFAIL to every forwarded query whose upstream let its deadline pass. */
  private sweep(): void {
    const now = Date.now();
    for (const [id, waiting] of this.outstanding) {
      if (waiting.deadline > now) continue;
      this.outstanding.delete(id);
      this.counters.forwardTimeouts += 1;
      this.answer(servfail(waiting.query), waiting.client, waiting.localAddress, 'servfail');
    }
    this.flush();
  }

  /** Sends every pending answer: one sendmmsg for the answers to one receive batch. */
  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      const { failed } = this.socket.sendBatch(batch);
      for (let i = 0; i < failed.length; i++) this.drop('send-failed');
    } catch {
      // The socket is closed (the server is stopping): nothing more to send.
    }
  }

  private drop(reason: string): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }

  /** Garbage on the wire must not become a flood of log lines: one line per interval, with the count since the last. */
  private logMalformed(datagram: Datagram, detail: string): void {
    const now = Date.now();
    if (now - this.malformedLog.loggedAt < MALFORMED_LOG_INTERVAL_MS) {
      this.malformedLog.since += 1;
      return;
    }
    this.options.log.warn({ source: datagram.address, port: datagram.port, reason: detail, repeated: this.malformedLog.since }, 'malformed DNS packet dropped');
    this.malformedLog = { loggedAt: now, since: 0 };
  }
}

function sameQuestion(response: Buffer, query: DecodedPacket): boolean {
  let decoded: DecodedPacket;
  try {
    decoded = dnsPacket.decode(response);
  } catch {
    return false;
  }
  const asked = query.questions?.[0];
  const got = decoded.questions?.[0];
  return decoded.type === 'response' && asked !== undefined && got !== undefined
    && got.name.toLowerCase() === asked.name.toLowerCase() && got.type === asked.type && got.class === asked.class;
}

/** One framed query to `upstream` over a new TCP connection and its framed answer; undefined on any failure or after `timeoutMs`. */
function askOverTcp(upstream: UdpPeer, request: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: upstream.address, port: upstream.port });
    let received = Buffer.alloc(0);
    const finish = (reply: Buffer | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on('error', () => finish(undefined));
    socket.on('close', () => finish(undefined));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 2 && received.length >= 2 + received.readUInt16BE(0)) finish(Buffer.from(received.subarray(2, 2 + received.readUInt16BE(0))));
    });
    const frame = Buffer.allocUnsafe(2 + request.length);
    frame.writeUInt16BE(request.length, 0);
    request.copy(frame, 2);
    socket.write(frame);
  });
}
