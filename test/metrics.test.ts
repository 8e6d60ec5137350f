// GET /metrics: the DHCP and TFTP counters as a Prometheus scraper reads them.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { renderMetrics } from '../src/api/metrics.js';
import { LATENCY_BUCKETS_US, type DhcpServerStats } from '../src/net/dhcp/server.js';
import { startTestHead } from './helpers/head.js';

/** `name{labels} value` → value, for every sample line; also checks each line's syntax. */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    values.set(match[1]!, Number(match[2]!.replace('+Inf', 'Infinity')));
  }
  return values;
}

test('DHCP counters: per type and reason, latency as a cumulative histogram in seconds', (t) => {
  const buckets = new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0);
  buckets[0] = 5; // ≤ 50 µs
  buckets[2] = 3; // ≤ 200 µs
  buckets[LATENCY_BUCKETS_US.length] = 1; // above the last bound
  const stats: DhcpServerStats = {
    received: { DISCOVER: 9, REQUEST: 2 }, sent: { OFFER: 9 }, drops: { 'rate-limited': 2 }, leaseWrites: 0, nodesRegistered: 0,
    latency: { count: 9, sumMicros: 120_000, maxMicros: 100_000, buckets },
  };
  const text = renderMetrics({ dhcp: () => stats });
  const values = samples(text);
  t.is(values.get('keel_dhcp_received_total{type="DISCOVER"}'), 9);
  t.is(values.get('keel_dhcp_received_total{type="REQUEST"}'), 2);
  t.is(values.get('keel_dhcp_sent_total{type="OFFER"}'), 9);
  t.is(values.get('keel_dhcp_dropped_total{reason="rate-limited"}'), 2);
  t.is(values.get('keel_dhcp_reply_latency_seconds_bucket{le="0.00005"}'), 5);
  t.is(values.get('keel_dhcp_reply_latency_seconds_bucket{le="0.0001"}'), 5);
  t.is(values.get('keel_dhcp_reply_latency_seconds_bucket{le="0.0002"}'), 8);
  t.is(values.get('keel_dhcp_reply_latency_seconds_bucket{le="0.05"}'), 8);
  t.is(values.get('keel_dhcp_reply_latency_seconds_bucket{le="+Inf"}'), 9);
  t.is(values.get('keel_dhcp_reply_latency_seconds_sum'), 0.12);
  t.is(values.get('keel_dhcp_reply_latency_seconds_count'), 9);
  t.regex(text, /# TYPE keel_dhcp_reply_latency_seconds histogram\n/);
  t.false(text.includes('keel_tftp_'), 'no TFTP families without a TFTP server');
});

test('a running head serves its TFTP counters at /metrics without a login', async (t) => {
  const h = await startTestHead(t);
  const metricsUrl = `http://127.0.0.1:${h.head.httpPort}/metrics`;
  const before = samples(await (await fetch(metricsUrl)).text());
  t.is(before.get('keel_tftp_read_requests_total'), 0);
  t.is(before.has('keel_dhcp_received_total'), false, 'DHCP is off in the test head');

  // curl exits 68 (CURLE_TFTP_NOTFOUND) when the server answers ERROR 1.
  const fetchMissing = await promisify(execFile)('curl', ['-s', '-o', '/dev/null', `tftp://127.0.0.1:${h.head.tftpPort}/no-such-file`]).then(() => 0, (error: { code: number }) => error.code);
  t.is(fetchMissing, 68);

  const response = await fetch(metricsUrl);
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const after = samples(await response.text());
  t.is(after.get('keel_tftp_read_requests_total'), 1);
  t.is(after.get('keel_tftp_not_found_total'), 1);
  t.is(after.get('keel_tftp_active_transfers'), 0);
  t.true((after.get('process_resident_memory_bytes') ?? 0) > 1e6);
  t.is([...after.keys()].filter((key) => key.startsWith('keel_build_info{version=')).length, 1);
  t.is((await fetch(`${metricsUrl}/more`)).status, 404);
});
