// GET /metrics: the DHCP and TFTP counters, the boot path's and the API's request counters and the
// boot-phase histograms, as a Prometheus scraper reads them (prom-client renders them).
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { KeelMetrics } from '../src/api/metrics.js';
import type { Reply } from '../src/http/dispatch.js';
import { badRequest } from '../src/http/errors.js';
import type { Request } from '../src/http/route.js';
import { NotFound } from '../src/model/errors.js';
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

test('DHCP counters: per type and reason, latency as a cumulative histogram in seconds', async (t) => {
  const buckets = new Array<number>(LATENCY_BUCKETS_US.length + 1).fill(0);
  buckets[0] = 5; // ≤ 50 µs
  buckets[2] = 3; // ≤ 200 µs
  buckets[LATENCY_BUCKETS_US.length] = 1; // above the last bound
  const stats: DhcpServerStats = {
    received: { DISCOVER: 9, REQUEST: 2 }, sent: { OFFER: 9 }, drops: { 'rate-limited': 2 }, leaseWrites: 0, nodesRegistered: 0,
    latency: { count: 9, sumMicros: 120_000, maxMicros: 100_000, buckets },
  };
  const metrics = new KeelMetrics();
  metrics.addDhcp(() => stats);
  const text = await metrics.render();
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
  t.is(after.get('keel_boot_timelines'), 0, 'the boot families are there from the start');
  t.true((after.get('process_cpu_seconds_total') ?? 0) > 0);
  t.true((after.get('process_start_time_seconds') ?? 0) > 1.7e9);
  t.is((await fetch(`${metricsUrl}/more`)).status, 404);
});

test('boot path and API: requests by kind or method and status class, bytes by kind; phase durations as histograms', async (t) => {
  const metrics = new KeelMetrics();
  const at = { from: '10.0.0.5', startedAt: 1, endedAt: 2 };
  metrics.bootServed({ ...at, kind: 'kernel', status: 200, bytes: 1000, size: 1000 });
  metrics.bootServed({ ...at, kind: 'chunk', status: 206, bytes: 65536, size: 1 << 20 });
  metrics.bootServed({ ...at, kind: 'chunk', status: 206, bytes: 65536, size: 1 << 20 });
  metrics.bootServed({ ...at, kind: 'chunk', status: 416, bytes: 0, size: 1 << 20 });
  metrics.bootServed({ ...at, kind: 'image', status: 304, bytes: 0, size: 5 });
  // Refusals: their status is the one the mount answers with (domain errors through the API's table).
  metrics.bootServed({ ...at, kind: 'chunk', error: new NotFound('No such chunk'), bytes: 0, size: 0 });
  metrics.bootServed({ ...at, kind: 'script', error: badRequest('Malformed ?mac='), bytes: 0, size: 0 });
  metrics.bootServed({ ...at, kind: 'kernel', error: new Error('bug'), bytes: 0, size: 0 });
  metrics.phaseDuration('boot_to_agent', 42);
  metrics.phaseDuration('boot_to_agent', 0.3);

  const reply = (status: number): Reply => ({ status, payload: { success: status < 400 }, headers: {}, close: false });
  const api = metrics.countRequests({ prefix: '/api/v1', dispatch: (req) => (req.method === 'GET' ? reply(200) : Promise.resolve(reply(req.method === 'POST' ? 400 : 201))) });
  const request = (method: string): Request => ({ method, path: '/api/v1/x', params: {}, query: new URLSearchParams(), headers: {}, body: undefined, remoteAddress: '127.0.0.1' });
  const body = { readBody: () => Promise.resolve(undefined) };
  t.is((api.dispatch(request('GET'), body) as Reply).status, 200, 'a synchronous reply stays synchronous');
  t.is((await api.dispatch(request('POST'), body)).status, 400);
  await api.dispatch(request('POST'), body);
  await api.dispatch(request('BREW'), body);

  const text = await metrics.render();
  const values = samples(text);
  t.is(values.get('keel_boot_http_requests_total{kind="kernel",status_class="2xx"}'), 1);
  t.is(values.get('keel_boot_http_requests_total{kind="kernel",status_class="5xx"}'), 1);
  t.is(values.get('keel_boot_http_requests_total{kind="chunk",status_class="2xx"}'), 2);
  t.is(values.get('keel_boot_http_requests_total{kind="chunk",status_class="4xx"}'), 2);
  t.is(values.get('keel_boot_http_requests_total{kind="image",status_class="3xx"}'), 1);
  t.is(values.get('keel_boot_http_requests_total{kind="script",status_class="4xx"}'), 1);
  t.is(values.get('keel_boot_http_sent_bytes_total{kind="chunk"}'), 131072);
  t.is(values.get('keel_boot_http_sent_bytes_total{kind="kernel"}'), 1000);
  t.false(values.has('keel_boot_http_sent_bytes_total{kind="image"}'), 'no bytes, no sample');
  t.is(values.get('keel_api_requests_total{method="GET",status_class="2xx"}'), 1);
  t.is(values.get('keel_api_requests_total{method="POST",status_class="4xx"}'), 2);
  t.is(values.get('keel_api_requests_total{method="other",status_class="2xx"}'), 1, 'unknown methods do not make new label values');
  t.is(values.get('keel_boot_phase_duration_seconds_bucket{le="0.25",phase="boot_to_agent"}'), 0);
  t.is(values.get('keel_boot_phase_duration_seconds_bucket{le="0.5",phase="boot_to_agent"}'), 1);
  t.is(values.get('keel_boot_phase_duration_seconds_bucket{le="30",phase="boot_to_agent"}'), 1);
  t.is(values.get('keel_boot_phase_duration_seconds_bucket{le="60",phase="boot_to_agent"}'), 2);
  t.is(values.get('keel_boot_phase_duration_seconds_count{phase="boot_to_agent"}'), 2);
  t.is(values.get('keel_boot_phase_duration_seconds_sum{phase="boot_to_agent"}'), 42.3);
  t.regex(text, /# TYPE keel_boot_phase_duration_seconds histogram\n/);
  t.regex(text, /# TYPE keel_boot_http_requests_total counter\n/);
});
