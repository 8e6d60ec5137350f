// The DHCP server: owns the sockets (ports 67 and 4011 on each named interface, SO_BINDTODEVICE),
// parses, rate-limits per MAC, picks the handler by the mode of the subnet the request came from
// (the arrival interface's address, or the relay's giaddr), writes leases before their ACK leaves,
// and replies from the arrival interface's address. Handlers stay pure (handler-*.ts).
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { createSocket, type Datagram, type OutgoingDatagram, type UdpSocket } from 'dgram-native';
import type { DhcpReplyEvent } from '../../boot/timeline.js';
import { DomainError } from '../../model/errors.js';
import { StoreConflict, StoreOutOfSpace } from '../../store/errors.js';
import type { LeaseStore } from '../../store/leases.js';
import { parseDhcp, serializeDhcp, type DhcpPacket } from './codec.js';
import type { DhcpBackend } from './backend.js';
import { bootClientOf } from './boot-client.js';
import { handleAuthoritative, type AuthoritativeResult, type LeaseChange } from './handler-authoritative.js';
import { DHCP_SERVER_PORT, MESSAGE_TYPE_NAMES, messageTypeOf, PXE_PORT, type HandlerResult, type OutgoingReply, type RequestContext } from './reply.js';
import { handleProxy } from './handler-proxy.js';
import { Option, getOption } from './options.js';

export interface DhcpServerOptions {
  interfaces: readonly string[];
  /** The cluster as DHCP sees it (directory.ts over the model). */
  directory: DhcpBackend;
  leases: LeaseStore;
  /** HTTP port of the head, for iPXE script and HTTP boot URLs. */
  httpPort: number;
  log: Logger;
  /** Port numbers (tests and benchmarks may move them off 67/4011). */
  serverPort?: number;
  pxePort?: number;
  /** Per-MAC token bucket: `burst` requests at once, refilled at `perSecond`. */
  rateLimit?: { burst: number; perSecond: number };
  clock?: () => number;
  /** Told of every reply queued for sending (the boot timelines, src/boot/timeline.ts). */
  bootEvents?: { dhcpReplied(reply: DhcpReplyEvent): void };
}

/** Upper bounds (µs) of the latency histogram buckets; the last bucket is everything above. */
export const LATENCY_BUCKETS_US = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000] as const;

export interface DhcpServerStats {
  /** Parsed requests by message type (DISCOVER, REQUEST, …; BOOTP for none). */
  received: Record<string, number>;
  /** Replies sent by message type. */
  sent: Record<string, number>;
  /** Requests not answered, by reason (not-pxe, unknown-node, rate-limited, malformed, …). */
  drops: Record<string, number>;
  leaseWrites: number;
  nodesRegistered: number;
  /** Receive → send of answered requests, µs; `buckets[i]` counts ≤ LATENCY_BUCKETS_US[i], the last one the rest. */
  latency: { count: number; sumMicros: number; maxMicros: number; buckets: number[] };
}

/** An expected condition (below) is logged at most once per this interval, with how often it recurred. */
const CONDITION_LOG_INTERVAL_MS = 60_000;

/**
 * Conditions a DHCP server meets in normal life — garbage on the wire, unknown or misconfigured
 * nodes, a full pool or disk — and their log line. A flood of them (50,000 packets from random
 * MACs) must not become a flood of log lines: each is logged once per interval, whatever the MAC
 * or source, with the number of times it recurred since its previous line.
 */
const CONDITIONS = {
  'malformed': { level: 'warn', msg: 'malformed DHCP packet dropped' },
  'no-local-address': { level: 'warn', msg: 'DHCP request on an interface without an IPv4 address: not answered' },
  'node-misconfigured': { level: 'warn', msg: 'DHCP request from a node that cannot be given an address here' },
  'unknown-node': { level: 'info', msg: 'DHCP request from an unknown MAC ignored (accept_new_nodes is off)' },
  'register-failed': { level: 'warn', msg: 'DHCP could not register a new node' },
  'lease-write-failed': { level: 'error', msg: 'DHCP lease could not be written' },
  'reply-too-large': { level: 'error', msg: 'DHCP reply could not be encoded' },
  'send-failed': { level: 'warn', msg: 'DHCP reply could not be sent' },
} as const;
type Condition = keyof typeof CONDITIONS;

/** When a condition was last logged and how often it occurred since, unlogged. */
interface ConditionLog {
  loggedAt: number;
  repeated: number;
}
const DEFAULT_RATE_LIMIT = { burst: 20, perSecond: 10 };
/** Option 57 is the whole IP datagram: the DHCP message gets it less IP (20) and UDP (8) headers. */
const IP_UDP_HEADERS = 28;
const RFC2131_MIN_MESSAGE = 576;

/** A reply waiting for the next flush (one sendmmsg per socket for all replies of a receive batch). */
interface PendingReply {
  socket: UdpSocket;
  datagram: OutgoingDatagram;
  /** Message type name, for the `sent` counter. */
  type: string;
  /** performance.now() when the request was received. */
  receivedAt: number;
}

export class DhcpServer {
  private readonly sockets: { socket: UdpSocket; port: number }[] = [];
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** The expected conditions met, for logging each once per CONDITION_LOG_INTERVAL_MS. */
  private readonly conditions = new Map<Condition, ConditionLog>();
  private readonly registering = new Set<string>();
  private pending: PendingReply[] = [];
  private flushScheduled = false;
  /** Set by close(): nothing more is sent or registered. */
  private closing = false;
  /** Lease writes and node registrations not yet settled. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly clock: () => number;
  private readonly rate: { burst: number; perSecond: number };
  private readonly counters: DhcpServerStats = {
    received: {}, sent: {}, drops: {}, leaseWrites: 0, nodesRegistered: 0,
    latency: { count: 0, sumMicros: 0, maxMicros: 0, buckets: new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0) },
  };

  constructor(private readonly options: DhcpServerOptions) {
    this.clock = options.clock ?? Date.now;
    this.rate = options.rateLimit ?? DEFAULT_RATE_LIMIT;
    const ports = [options.serverPort ?? DHCP_SERVER_PORT, options.pxePort ?? PXE_PORT];
    try {
      for (const name of options.interfaces) {
        for (const port of ports) {
          // One socket per interface and port, bound to the device: a request is only ever seen on
          // an interface named in the config, and the reply leaves by it.
          // No GSO: replies are independent datagrams of different sizes and destinations.
          const socket = createSocket({ port, interface: name, reuseAddr: true, broadcast: true, pktinfo: true, batchSize: 64, recvBufferSize: 4 << 20, gso: false });
          socket.on('batch', (datagrams: Datagram[]) => {
            // All replies to one receive batch leave together, in one sendmmsg.
            for (const datagram of datagrams) this.receive(socket, port, datagram);
            this.flush();
          });
          socket.on('error', (error) => options.log.warn({ err: error, interface: name, port }, 'DHCP socket error'));
          this.sockets.push({ socket, port });
        }
      }
    } catch (error) {
      for (const { socket } of this.sockets) void socket.close();
      throw error;
    }
    this.sweeper = setInterval(() => this.sweep(), CONDITION_LOG_INTERVAL_MS).unref();
  }

  stats(): DhcpServerStats {
    return structuredClone(this.counters);
  }

  /** Closes the sockets and the directory (its change-feed subscription). */
  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    await Promise.all(this.sockets.map(({ socket }) => socket.close()));
    // Lease writes and registrations under way end before the caller closes the store they use;
    // their replies are not sent (the sockets are closed).
    await Promise.all(this.inFlight);
    this.options.directory.close();
  }

  /** Keeps `work` in inFlight until it settles, for close() to wait on. */
  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    const settled = () => void this.inFlight.delete(work);
    work.then(settled, settled);
    return work;
  }

  private receive(socket: UdpSocket, port: number, datagram: Datagram): void {
    const start = performance.now();
    const parsed = parseDhcp(datagram.data);
    if (!parsed.ok) {
      this.drop('malformed');
      if (this.due('malformed')) this.report('malformed', { source: datagram.address, port: datagram.port, reason: parsed.reason });
      return;
    }
    const request = parsed.packet;
    const type = messageTypeOf(request);
    const typeName = type === undefined ? 'BOOTP' : (MESSAGE_TYPE_NAMES[type] ?? `TYPE${type}`);
    this.counters.received[typeName] = (this.counters.received[typeName] ?? 0) + 1;
    if (datagram.localAddress === undefined || datagram.localAddress === '0.0.0.0') {
      this.drop('no-local-address');
      if (this.due('no-local-address')) this.report('no-local-address', { interface: datagram.ifname });
      return;
    }
    if (!this.takeToken(request.chaddr)) {
      this.drop('rate-limited');
      return;
    }
    const onPxePort = port === (this.options.pxePort ?? PXE_PORT);
    const context: RequestContext = {
      serverAddress: datagram.localAddress,
      localPort: port,
      onPxePort,
      source: { address: datagram.address, port: datagram.port },
      httpPort: this.options.httpPort,
    };
    const send = (reply: OutgoingReply) => this.send(socket, datagram, request, reply, start);
    // Port 4011 is PXE boot server discovery: proxy semantics whatever the subnet's mode.
    const subnet = onPxePort ? { mode: 'proxy' as const } : this.options.directory.modeFor(request.giaddr !== '0.0.0.0' ? request.giaddr : datagram.localAddress);
    if (subnet.mode === 'proxy') {
      this.finish(handleProxy(request, context), send);
      return;
    }
    const binding = this.options.directory.binding(request.chaddr, subnet.network);
    if (binding !== undefined && 'problem' in binding) {
      this.drop('node-misconfigured');
      if (this.due('node-misconfigured')) this.report('node-misconfigured', { mac: request.chaddr, problem: binding.problem });
      return;
    }
    if (binding === undefined && type !== undefined && this.options.directory.acceptNewNodes()) {
      this.register(request.chaddr, () => {
        this.receive(socket, port, datagram);
        this.flush();
      });
      return;
    }
    const result = handleAuthoritative(request, context, binding);
    if ('drop' in result && result.drop === 'unknown-node' && this.due('unknown-node')) this.report('unknown-node', { mac: request.chaddr });
    this.finish(result, send);
  }

  /** Registers `mac` once, then handles the request again (the client's retransmissions meanwhile are dropped). */
  private register(mac: string, retry: () => void): void {
    if (this.registering.has(mac)) {
      this.drop('registering');
      return;
    }
    this.registering.add(mac);
    this.track(this.options.directory.registerNode(mac)).then(
      (node) => {
        this.counters.nodesRegistered += 1;
        this.options.log.info({ mac, node: node.name, ip: node.ip }, 'DHCP registered a new node (accept_new_nodes)');
        this.registering.delete(mac);
        if (!this.closing) retry();
      },
      (error: unknown) => {
        this.registering.delete(mac);
        this.drop('register-failed');
        if (this.due('register-failed')) this.report('register-failed', { mac, ...errorFields(error) });
      },
    );
  }

  private finish(result: HandlerResult | AuthoritativeResult, send: (reply: OutgoingReply) => void): void {
    const lease = (result as AuthoritativeResult).lease;
    if ('drop' in result) {
      this.drop(result.drop);
      if (lease) void this.track(this.writeLease(lease));
      return;
    }
    if (!lease) {
      send(result.reply);
      return;
    }
    // An ACK promises the address: it leaves only once the lease is on disk. Leases committed
    // together resolve together: their ACKs share the flush scheduled by the first.
    this.track(this.writeLease(lease)).then(
      (written) => {
        if (!written) {
          this.drop('lease-write-failed');
          return;
        }
        if (this.closing) return;
        send(result.reply);
        this.scheduleFlush();
      },
      () => this.drop('lease-write-failed'),
    );
  }

  private async writeLease(change: LeaseChange): Promise<boolean> {
    try {
      if (change.op === 'release') {
        await this.options.leases.remove(change.mac);
      } else {
        const now = Math.floor(this.clock() / 1000);
        await this.options.leases.put({ mac: change.mac, ip: change.ip, nodeUid: change.nodeUid, granted: now, expires: now + change.leaseSeconds });
      }
      this.counters.leaseWrites += 1;
      return true;
    } catch (error) {
      if (this.due('lease-write-failed')) this.report('lease-write-failed', { mac: change.mac, ...errorFields(error) });
      return false;
    }
  }

  /** Encodes a reply and queues it for the next flush. */
  private send(socket: UdpSocket, datagram: Datagram, request: DhcpPacket, reply: OutgoingReply, receivedAt: number): void {
    const maxMessage = getOption(request.options, Option.maxMessageSize) ?? RFC2131_MIN_MESSAGE;
    let bytes: Buffer;
    try {
      bytes = serializeDhcp(reply.packet, { maxLength: maxMessage - IP_UDP_HEADERS });
    } catch (error) {
      this.drop('reply-too-large');
      if (this.due('reply-too-large')) this.report('reply-too-large', { mac: request.chaddr, err: error });
      return;
    }
    // Broadcasts must leave by the arrival interface; every reply comes from its address.
    const broadcast = reply.address === '255.255.255.255';
    const outgoing: OutgoingDatagram = { data: bytes, port: reply.port, address: reply.address, sourceAddress: datagram.localAddress };
    if (broadcast) outgoing.ifindex = datagram.ifindex;
    const type = messageTypeOf(reply.packet);
    const typeName = type === undefined ? 'BOOTP' : (MESSAGE_TYPE_NAMES[type] ?? `TYPE${type}`);
    this.pending.push({ socket, datagram: outgoing, type: typeName, receivedAt });
    this.options.bootEvents?.dhcpReplied({ mac: request.chaddr, type: typeName, yiaddr: reply.packet.yiaddr, ciaddr: reply.packet.ciaddr, client: clientKind(request) });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Sends every pending reply: one sendBatch per socket. */
  private flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    let start = 0;
    while (start < pending.length) {
      // Runs of the same socket (usually the whole list).
      const socket = pending[start]!.socket;
      let end = start + 1;
      while (end < pending.length && pending[end]!.socket === socket) end++;
      const run = pending.slice(start, end);
      let failed: { index: number; error: Error }[];
      try {
        failed = socket.sendBatch(run.map((reply) => reply.datagram)).failed;
      } catch (error) {
        // The socket is closed (the server is stopping): nothing of this run was sent.
        failed = run.map((_, index) => ({ index, error: error as Error }));
      }
      const failedAt = new Set(failed.map((failure) => failure.index));
      for (const failure of failed) {
        this.drop('send-failed');
        if (this.due('send-failed')) this.report('send-failed', { to: run[failure.index]!.datagram.address, reason: failure.error.message });
      }
      const now = performance.now();
      for (let i = 0; i < run.length; i++) if (!failedAt.has(i)) this.countSent(run[i]!, now);
      start = end;
    }
  }

  private countSent(reply: PendingReply, now: number): void {
    this.counters.sent[reply.type] = (this.counters.sent[reply.type] ?? 0) + 1;
    const micros = (now - reply.receivedAt) * 1000;
    const latency = this.counters.latency;
    latency.count += 1;
    latency.sumMicros += micros;
    if (micros > latency.maxMicros) latency.maxMicros = micros;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_US.length && micros > LATENCY_BUCKETS_US[bucket]!) bucket++;
    latency.buckets[bucket]! += 1;
  }

  private drop(reason: string): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }

  private takeToken(mac: string): boolean {
    const now = this.clock();
    const bucket = this.buckets.get(mac) ?? { tokens: this.rate.burst, at: now };
    bucket.tokens = Math.min(this.rate.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rate.perSecond);
    bucket.at = now;
    this.buckets.set(mac, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /**
   * Whether `condition` is to be logged now: its first occurrence, or the first one an interval
   * after its last line. Otherwise the occurrence is counted, for the next line. Nothing is
   * allocated on the way (this runs per packet in a flood).
   */
  private due(condition: Condition): boolean {
    const seen = this.conditions.get(condition);
    if (seen === undefined) return true;
    if (this.clock() - seen.loggedAt >= CONDITION_LOG_INTERVAL_MS) return true;
    seen.repeated++;
    return false;
  }

  /** Logs `condition` with `fields` and `repeated`: how often it occurred since its previous line. */
  private report(condition: Condition, fields: Record<string, unknown>): void {
    const seen = this.conditions.get(condition);
    const { level, msg } = CONDITIONS[condition];
    this.options.log[level]({ ...fields, condition, repeated: seen?.repeated ?? 0 }, msg);
    if (seen === undefined) this.conditions.set(condition, { loggedAt: this.clock(), repeated: 0 });
    else {
      seen.loggedAt = this.clock();
      seen.repeated = 0;
    }
  }

  /** Forgets full token buckets and expired log stamps, so the maps stay as small as the active clients. */
  private sweep(): void {
    const now = this.clock();
    for (const [mac, bucket] of this.buckets) if (bucket.tokens + ((now - bucket.at) / 1000) * this.rate.perSecond >= this.rate.burst) this.buckets.delete(mac);
    // A condition that recurred since its line gets a summary line now, rather than at its next occurrence (which may never come).
    for (const [condition, seen] of this.conditions) {
      if (now - seen.loggedAt < CONDITION_LOG_INTERVAL_MS) continue;
      if (seen.repeated === 0) this.conditions.delete(condition);
      else this.report(condition, {});
    }
  }
}

/** Who sent `request`, as the boot timelines tell a network-boot client from a booted system's DHCP client. */
function clientKind(request: DhcpPacket): DhcpReplyEvent['client'] {
  const client = bootClientOf(request.chaddr, request.options);
  return client === undefined ? 'other' : client.ipxe ? 'ipxe' : 'firmware';
}

/**
 * An error as log fields: the refusals of the model and the store (a full pool, a full disk) are
 * expected and logged by their message; anything else is a bug and keeps its stack.
 */
function errorFields(error: unknown): Record<string, unknown> {
  const expected = error instanceof DomainError || error instanceof StoreOutOfSpace || error instanceof StoreConflict;
  return expected ? { reason: error.message } : { err: error };
}
