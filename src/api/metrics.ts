// GET /metrics: the head's counters in Prometheus' text exposition format (version 0.0.4), for a
// scraper on the management network, through prom-client with one registry per head (no global
// registry). Public like /boot: counters only, no names, MACs or secrets (a Prometheus server
// cannot log in for a JWT). The DHCP and TFTP servers keep their own counters (stats()), read at
// each scrape; the boot path, the API and the boot timelines report here as they go.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import type { BootTimelines, PhaseDuration, ServedReply } from '../boot/timeline.js';
import { fileReplyStatus } from '../boot/routes.js';
import type { DhcpServerStats } from '../net/dhcp/server.js';
import { LATENCY_BUCKETS_US } from '../net/dhcp/server.js';
import type { DnsServerStats } from '../net/dns/server.js';
import type { TftpServerStats } from '../net/tftp/server.js';
import type { Mount, Reply } from '../http/dispatch.js';
import { toHttpError } from '../http/errors.js';
import { FileReply, textReply } from '../http/file-reply.js';
import type { Route } from '../http/route.js';
import { Router } from '../http/router.js';
import { VERSION } from '../version.js';
import { DOMAIN_ERROR_STATUSES } from './errors.js';

export const METRICS_PREFIX = '/metrics';

/** Upper bounds (s) of the boot phase duration histograms: from a fast DHCP exchange to a slow image over a busy link. */
export const PHASE_BUCKETS_SECONDS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600] as const;

/** Methods counted by name; anything else is `other` (a label's values must stay few). */
const COUNTED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** camelCase field → snake_case metric name part. */
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * The DHCP server's reply latency: it counts its own buckets (µs, per bucket), so this histogram
 * only renders them (cumulative, in seconds) at each scrape instead of observing values.
 */
const DHCP_LATENCY = 'keel_dhcp_reply_latency_seconds';
const DHCP_LATENCY_HELP = 'Time from receiving a DHCP request to sending its reply.';
class ServerCountedHistogram extends Histogram {
  constructor(registry: Registry, private readonly latency: () => DhcpServerStats['latency']) {
    super({ name: DHCP_LATENCY, help: DHCP_LATENCY_HELP, buckets: LATENCY_BUCKETS_US.map((bound) => bound / 1e6), registers: [registry] });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.rendered();
  }

  /** What the registry renders a histogram from (prom-client asks this rather than get(); not in its typings). */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.rendered();
  }

  private rendered(): MetricObjectWithValues<MetricValueWithName<string>> {
    const latency = this.latency();
    const values: MetricValueWithName<string>[] = [];
    let cumulative = 0;
    LATENCY_BUCKETS_US.forEach((bound, i) => {
      cumulative += latency.buckets[i]!;
      values.push({ metricName: `${DHCP_LATENCY}_bucket`, labels: { le: bound / 1e6 }, value: cumulative });
    });
    values.push(
      { metricName: `${DHCP_LATENCY}_bucket`, labels: { le: '+Inf' }, value: latency.count },
      { metricName: `${DHCP_LATENCY}_sum`, labels: {}, value: latency.sumMicros / 1e6 },
      { metricName: `${DHCP_LATENCY}_count`, labels: {}, value: latency.count },
    );
    // prom-client's typings declare `type` a numeric enum; at run time (and in the exposition) it is the string.
    return { name: DHCP_LATENCY, help: DHCP_LATENCY_HELP, type: 'histogram' as unknown as MetricObjectWithValues<MetricValueWithName<string>>['type'], aggregator: 'sum', collect: () => undefined, values };
  }
}

/** A counter whose values someone else keeps: set from `read` at each scrape. */
function readCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Array<[LabelValues<L>, number]>): Counter<L> {
  return new Counter<L>({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

/** One more in `counts` for `what` and the class of `status` (index 1 to 5: 1xx to 5xx). */
function countBy(counts: Map<string, number[]>, what: string, status: number): void {
  let row = counts.get(what);
  if (row === undefined) {
    row = [0, 0, 0, 0, 0, 0];
    counts.set(what, row);
  }
  row[Math.min(5, Math.floor(status / 100))]! += 1;
}

/** Rows of countBy as samples labelled `label` and `status_class`. */
function byStatusClass<L extends string>(label: L, counts: Map<string, number[]>): Array<[LabelValues<L | 'status_class'>, number]> {
  const samples: Array<[LabelValues<L | 'status_class'>, number]> = [];
  for (const [what, row] of counts) {
    row.forEach((count, index) => {
      if (count > 0) samples.push([{ [label]: what, status_class: `${index}xx` } as LabelValues<L | 'status_class'>, count]);
    });
  }
  return samples;
}

const byLabel = <L extends string>(label: L, counts: Record<string, number>): Array<[LabelValues<L>, number]> =>
  Object.entries(counts).map(([key, value]) => [{ [label]: key } as LabelValues<L>, value]);

/** The head's metrics: one prom-client registry, the families that exist from the start, and those of the servers as they start. */
export class KeelMetrics {
  private readonly registry = new Registry();
  /** The servers' counters, read once at the start of each scrape for all their families. */
  private readonly sources: { dhcp?: () => DhcpServerStats; tftp?: () => TftpServerStats; dns?: () => DnsServerStats } = {};
  private scraped: { dhcp?: DhcpServerStats; tftp?: TftpServerStats; dns?: DnsServerStats } = {};
  /**
   * Requests by `kind status_class` (/boot) and `method status_class` (API), and /boot bytes by
   * kind: plain numbers on the request path, handed to prom-client at each scrape. Its inc()
   * hashes the label set on every call (≈ 1–2 µs measured, most of the recording's cost per
   * request); a Map lookup and an addition cost tens of ns. Bounded: few kinds, methods, classes.
   */
  private readonly bootRequests = new Map<string, number[]>();
  private readonly bootBytes = new Map<string, number>();
  private readonly apiRequests = new Map<string, number[]>();
  private readonly phaseDurations: Histogram<'phase'>;

  constructor() {
    const registers = [this.registry];
    // process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds and the rest of prom-client's process and Node.js families.
    collectDefaultMetrics({ register: this.registry });
    new Gauge({ name: 'keel_build_info', help: 'The running keel version.', labelNames: ['version'], registers }).set({ version: VERSION }, 1);
    readCounter(this.registry, 'keel_boot_http_requests_total', 'Requests answered under /boot, by route kind and status class.', ['kind', 'status_class'], () => byStatusClass('kind', this.bootRequests));
    readCounter(this.registry, 'keel_boot_http_sent_bytes_total', 'Body bytes sent under /boot, by route kind.', ['kind'], () => byLabel('kind', Object.fromEntries(this.bootBytes)));
    readCounter(this.registry, 'keel_api_requests_total', 'Requests answered under /api/v1, by method and status class.', ['method', 'status_class'], () => byStatusClass('method', this.apiRequests));
    this.phaseDurations = new Histogram({
      name: 'keel_boot_phase_duration_seconds', help: 'Boot phase durations from the boot timelines (docs/boot-timeline.md), one observation per boot.',
      labelNames: ['phase'], buckets: [...PHASE_BUCKETS_SECONDS], registers,
    });
  }

  /** The DHCP server's families (only while it runs: call once it has started). */
  addDhcp(stats: () => DhcpServerStats): void {
    const registry = this.registry;
    this.sources.dhcp = stats;
    const read = () => this.scraped.dhcp ?? stats();
    readCounter(registry, 'keel_dhcp_received_total', 'DHCP requests parsed, by message type.', ['type'], () => byLabel('type', read().received));
    readCounter(registry, 'keel_dhcp_sent_total', 'DHCP replies sent, by message type.', ['type'], () => byLabel('type', read().sent));
    readCounter(registry, 'keel_dhcp_dropped_total', 'DHCP requests not answered, by reason.', ['reason'], () => byLabel('reason', read().drops));
    readCounter(registry, 'keel_dhcp_lease_writes_total', 'DHCP leases committed to the store.', [], () => [[{}, read().leaseWrites]]);
    readCounter(registry, 'keel_dhcp_nodes_registered_total', 'Nodes registered by DHCP (accept_new_nodes).', [], () => [[{}, read().nodesRegistered]]);
    new ServerCountedHistogram(registry, () => read().latency);
  }

  /** The TFTP server's families (only while it runs). */
  addTftp(stats: () => TftpServerStats): void {
    const registry = this.registry;
    this.sources.tftp = stats;
    const read = () => this.scraped.tftp ?? stats();
    new Gauge({ name: 'keel_tftp_active_transfers', help: 'TFTP transfers running now.', registers: [registry], collect() { this.set(read().activeTransfers); } });
    readCounter(registry, 'keel_tftp_transfers_total', 'TFTP transfers ended, by outcome.', ['outcome'], () => byLabel('outcome', read().outcomes));
    // Every other field is a plain counter (TftpServerStats in src/net/tftp/server.ts says what each counts).
    const { activeTransfers: _active, outcomes: _outcomes, ...counters } = stats();
    for (const field of Object.keys(counters) as Array<keyof typeof counters>) {
      readCounter(registry, `keel_tftp_${snake(field)}_total`, `TFTP server counter ${field}.`, [], () => [[{}, read()[field]]]);
    }
  }

  /** The DNS server's families (only while it runs; DnsServerStats in src/net/dns/server.ts says what each counts). */
  addDns(stats: () => DnsServerStats): void {
    const registry = this.registry;
    this.sources.dns = stats;
    const read = () => this.scraped.dns ?? stats();
    readCounter(registry, 'keel_dns_received_total', 'DNS datagrams received.', [], () => [[{}, read().received]]);
    readCounter(registry, 'keel_dns_answered_total', 'DNS answers sent, by outcome.', ['outcome'], () => byLabel('outcome', read().answered));
    readCounter(registry, 'keel_dns_dropped_total', 'DNS datagrams not answered, by reason.', ['reason'], () => byLabel('reason', read().drops));
    readCounter(registry, 'keel_dns_cache_hits_total', 'DNS answers taken from the answer cache.', [], () => [[{}, read().cacheHits]]);
    readCounter(registry, 'keel_dns_forwarded_total', 'DNS queries forwarded to an upstream.', [], () => [[{}, read().forwarded]]);
    readCounter(registry, 'keel_dns_forward_timeouts_total', 'Forwarded DNS queries that got no upstream answer in time (SERVFAIL).', [], () => [[{}, read().forwardTimeouts]]);
    readCounter(registry, 'keel_dns_forward_overflows_total', 'DNS queries refused because the most forwarded queries were waiting.', [], () => [[{}, read().forwardOverflows]]);
    readCounter(registry, 'keel_dns_tcp_queries_total', 'DNS queries received over TCP.', [], () => [[{}, read().tcpQueries]]);
    readCounter(registry, 'keel_dns_tcp_refused_total', 'DNS TCP connections closed at once because the most were open.', [], () => [[{}, read().tcpRefused]]);
  }

  /** The boot timelines' own figures: nodes followed, events from unknown sources. */
  addTimelines(timelines: BootTimelines): void {
    const registers = [this.registry];
    new Gauge({ name: 'keel_boot_timelines', help: 'Nodes with a boot timeline in memory.', registers, collect() { this.set(timelines.size); } });
    readCounter(this.registry, 'keel_boot_events_unknown_source_total', 'Boot events from a MAC or address no node has (counted, not kept), by where they came from.', ['source'], () => byLabel('source', timelines.unknownSources()));
  }

  /** A /boot reply is done (BootPathEvents.served). */
  bootServed(served: ServedReply): void {
    const status = served.status ?? toHttpError(served.error, DOMAIN_ERROR_STATUSES)?.status ?? 500;
    countBy(this.bootRequests, served.kind, status);
    if (served.bytes > 0) this.bootBytes.set(served.kind, (this.bootBytes.get(served.kind) ?? 0) + served.bytes);
  }

  /** A boot timeline learned a phase duration (TimelineOptions.onPhaseDuration). */
  phaseDuration(phase: PhaseDuration, seconds: number): void {
    this.phaseDurations.observe({ phase }, seconds);
  }

  /** `api`, counting every reply by method and status class. */
  countRequests(api: Mount): Mount {
    const count = (method: string, headers: Readonly<Record<string, string>>, reply: Reply): Reply => {
      // A file download's status is decided when it is sent (Range, conditional requests).
      const status = reply.file instanceof FileReply ? fileReplyStatus(reply.file.content, headers) : reply.status;
      countBy(this.apiRequests, COUNTED_METHODS.has(method) ? method : 'other', status);
      return reply;
    };
    return {
      prefix: api.prefix,
      dispatch: (req, body) => {
        const reply = api.dispatch(req, body);
        return reply instanceof Promise ? reply.then((done) => count(req.method, req.headers, done)) : count(req.method, req.headers, reply);
      },
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: the servers' counters read once, then every family rendered. */
  async render(): Promise<string> {
    this.scraped = { dhcp: this.sources.dhcp?.(), tftp: this.sources.tftp?.(), dns: this.sources.dns?.() };
    try {
      return await this.registry.metrics();
    } finally {
      this.scraped = {};
    }
  }
}

export function buildMetricsRouter(metrics: KeelMetrics): Router<Route> {
  const route: Route = {
    method: 'GET', path: '/', access: 'public', summary: 'Counters in Prometheus text format (DHCP, TFTP, boot path, API, boot phases, process)',
    handler: async () => textReply(await metrics.render(), metrics.contentType),
  };
  return new Router([route]);
}
