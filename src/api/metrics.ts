// GET /metrics: the head's counters in Prometheus' text exposition format (version 0.0.4), for a
// scraper on the management network. Public like /boot: counters only, no names, MACs or secrets
// (a Prometheus server cannot log in for a JWT). The servers keep their own counters (stats());
// this module only renders them.
import type { DhcpServerStats } from '../net/dhcp/server.js';
import { LATENCY_BUCKETS_US } from '../net/dhcp/server.js';
import type { TftpServerStats } from '../net/tftp/server.js';
import { textReply } from '../http/file-reply.js';
import type { Route } from '../http/route.js';
import { Router } from '../http/router.js';
import { VERSION } from '../version.js';

export const METRICS_PREFIX = '/metrics';
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Where the counters come from; a server that is not running is absent. Filled in as servers start. */
export interface MetricsSources {
  dhcp?: () => DhcpServerStats;
  tftp?: () => TftpServerStats;
}

/** One metric family: HELP, TYPE and its samples. */
class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: Array<[labels: Record<string, string>, value: number, suffix?: string]>): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value, suffix = ''] of samples) this.lines.push(`${name}${suffix}${formatLabels(labels)} ${value}`);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

function formatLabels(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([key, value]) => `${key}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

/** camelCase field → snake_case metric name part. */
const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const byLabel = (label: string, counts: Record<string, number>): Array<[Record<string, string>, number]> =>
  Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => [{ [label]: key }, value]);

function renderDhcp(out: Exposition, stats: DhcpServerStats): void {
  out.family('keel_dhcp_received_total', 'counter', 'DHCP requests parsed, by message type.', byLabel('type', stats.received));
  out.family('keel_dhcp_sent_total', 'counter', 'DHCP replies sent, by message type.', byLabel('type', stats.sent));
  out.family('keel_dhcp_dropped_total', 'counter', 'DHCP requests not answered, by reason.', byLabel('reason', stats.drops));
  out.family('keel_dhcp_lease_writes_total', 'counter', 'DHCP leases committed to the store.', [[{}, stats.leaseWrites]]);
  out.family('keel_dhcp_nodes_registered_total', 'counter', 'Nodes registered by DHCP (accept_new_nodes).', [[{}, stats.nodesRegistered]]);
  // The server counts per bucket; Prometheus buckets are cumulative, in seconds.
  const { latency } = stats;
  const samples: Array<[Record<string, string>, number, string]> = [];
  let cumulative = 0;
  LATENCY_BUCKETS_US.forEach((bound, i) => {
    cumulative += latency.buckets[i]!;
    samples.push([{ le: String(bound / 1e6) }, cumulative, '_bucket']);
  });
  samples.push([{ le: '+Inf' }, latency.count, '_bucket'], [{}, latency.sumMicros / 1e6, '_sum'], [{}, latency.count, '_count']);
  out.family('keel_dhcp_reply_latency_seconds', 'histogram', 'Time from receiving a DHCP request to sending its reply.', samples);
}

function renderTftp(out: Exposition, stats: TftpServerStats): void {
  const { activeTransfers, outcomes, ...counters } = stats;
  out.family('keel_tftp_active_transfers', 'gauge', 'TFTP transfers running now.', [[{}, activeTransfers]]);
  out.family('keel_tftp_transfers_total', 'counter', 'TFTP transfers ended, by outcome.', byLabel('outcome', outcomes));
  // Every other field is a plain counter (TftpServerStats in src/net/tftp/server.ts says what each counts).
  for (const [field, value] of Object.entries(counters)) {
    if (typeof value === 'number') out.family(`keel_tftp_${snake(field)}_total`, 'counter', `TFTP server counter ${field}.`, [[{}, value]]);
  }
}

export function renderMetrics(sources: MetricsSources): string {
  const out = new Exposition();
  out.family('keel_build_info', 'gauge', 'The running keel version.', [[{ version: VERSION }, 1]]);
  const usage = process.cpuUsage();
  out.family('process_cpu_seconds_total', 'counter', 'User and system CPU time of the keel process.', [[{}, (usage.user + usage.system) / 1e6]]);
  out.family('process_resident_memory_bytes', 'gauge', 'Resident set size of the keel process.', [[{}, process.memoryUsage.rss()]]);
  out.family('process_start_time_seconds', 'gauge', 'When the keel process started, in Unix seconds.', [[{}, Math.round(Date.now() / 1000 - process.uptime())]]);
  if (sources.dhcp) renderDhcp(out, sources.dhcp());
  if (sources.tftp) renderTftp(out, sources.tftp());
  return out.text();
}

export function buildMetricsRouter(sources: MetricsSources): Router<Route> {
  const route: Route = {
    method: 'GET', path: '/', access: 'public', summary: 'Counters in Prometheus text format (DHCP, TFTP, process)',
    handler: () => textReply(renderMetrics(sources), CONTENT_TYPE),
  };
  return new Router([route]);
}
