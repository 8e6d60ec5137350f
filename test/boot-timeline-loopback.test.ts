// A node's boot as keel records it, driven on loopback with real peers: OVMF's captured DHCP
// DISCOVER and REQUEST (test/fixtures/dhcp) to a DHCP server on `lo`, a TFTP read of ipxe.efi with
// tftp-hpa's client, the /boot GETs iPXE and keel's initramfs make (script, kernel, initramfs,
// image whole, then chunk by chunk on the second boot), and the agent's PUT /node/putstatus. What
// is checked is what an operator reads: GET /node/<id>/boot (phases in order, durations within
// the wall time the test took) and the new /metrics families.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createSocket as createNodeSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { pino } from 'pino';
import type { BootTimelineView } from '../src/boot/timeline.js';
import { parseDhcp, serializeDhcp } from '../src/net/dhcp/codec.js';
import { DhcpDirectory } from '../src/net/dhcp/directory.js';
import { Option, setOption } from '../src/net/dhcp/options.js';
import { DhcpServer } from '../src/net/dhcp/server.js';
import { LeaseStore } from '../src/store/leases.js';
import { seededBuffer } from './helpers/seeded-bytes.js';
import { startTestHead, type TestHead } from './helpers/head.js';

const MAC = '52:54:00:12:34:58'; // the MAC of the OVMF captures
const fixture = (name: string) => readFileSync(new URL(`./fixtures/dhcp/${name}.bin`, import.meta.url));

/** The captured packet with its server identifier and requested address moved to this test's server and node. */
function toThisServer(packet: Buffer, server: string, requested: string): Buffer {
  const parsed = parseDhcp(packet);
  if (!parsed.ok) throw new Error(parsed.reason);
  setOption(parsed.packet.options, Option.serverId, server);
  setOption(parsed.packet.options, Option.requestedIp, requested);
  return serializeDhcp(parsed.packet, { maxLength: 1500 });
}

/** A UDP port free on 127.0.0.1 right now, for the DHCP server this test starts. */
async function freeUdpPort(): Promise<number> {
  const socket = createNodeSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Prometheus sample lines → value by `name{labels}`. */
function samples(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return values;
}

async function upload(h: TestHead, token: string, path: string, bytes: Buffer): Promise<void> {
  const res = await fetch(`${h.base}${path}`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: new Uint8Array(bytes) });
  if (res.status !== 200) throw new Error(`upload ${path}: ${res.status} ${await res.text()}`);
}

/** GET a /boot URL as the node would, reading the whole body; its byte count. */
async function bootGet(h: TestHead, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${h.head.httpPort}/boot${path}`);
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET /boot${path}: ${res.status} ${body.toString()}`);
  return body.length;
}

test('a boot on loopback: DHCP, TFTP, script, kernel, initramfs, image, agent — in order, with sane durations, twice', async (t) => {
  const wallStart = Date.now();
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  // The node's address is 127.0.0.1, where this test's TFTP, HTTP and putstatus come from.
  t.is((await h.call('POST', '/nets', { token, body: { name: 'lo', first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8, dhcp_mode: 'authoritative' } })).status, 200);
  const kernel = await seededBuffer(1, 700_000);
  const initramfs = await seededBuffer(2, 1_300_000);
  const image = await seededBuffer(3, 2_500_000); // three chunks of the default 1 MiB
  t.is((await h.call('POST', '/images', { token, body: { name: 'img' } })).status, 200);
  await upload(h, token, '/image/img/content', image);
  const config = await h.call('POST', '/bootconfigs', { token, body: { name: 'ram', boot_style: 'rwram', image: 'img' } });
  t.is(config.status, 200, JSON.stringify(config.json));
  const configUid = config.json.data as string;
  await upload(h, token, `/bootconfig/${configUid}/kernel`, kernel);
  await upload(h, token, `/bootconfig/${configUid}/initramfs`, initramfs);
  const node = await h.call('POST', '/nodes', { token, body: { mac: MAC, attributes: { _boot_config: 'ram' } } });
  const nodeUid = node.json.data as string;
  const ipxeEfi = await seededBuffer(4, 300_000);
  await h.head.model.chunks.putFile('tftp/ipxe.efi', Readable.from([ipxeEfi]));

  const dataDir = mkdtempSync(join(tmpdir(), 'keel-boot-timeline-'));
  const serverPort = await freeUdpPort();
  const dhcp = new DhcpServer({
    interfaces: ['lo'], directory: new DhcpDirectory(h.head.model), leases: new LeaseStore(h.head.store), httpPort: h.head.httpPort,
    log: pino({ level: 'silent' }), serverPort, pxePort: await freeUdpPort(), bootEvents: h.head.bootTimelines,
  });
  const client = createNodeSocket('udp4');
  t.teardown(async () => {
    client.close();
    await dhcp.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));

  let manifestBytes = 0;
  const boot = async (chunked: boolean) => {
    const before = dhcp.stats();
    // OVMF's PXE: DISCOVER → OFFER, REQUEST → ACK (the lease is written before the ACK leaves).
    client.send(fixture('qemu-ovmf-01-to-server'), serverPort, '127.0.0.1');
    await until('the DISCOVER', () => (dhcp.stats().received.DISCOVER ?? 0) > (before.received.DISCOVER ?? 0));
    client.send(toThisServer(fixture('qemu-ovmf-03-to-server'), '127.0.0.1', '127.0.0.1'), serverPort, '127.0.0.1');
    await until('the lease', () => dhcp.stats().leaseWrites > before.leaseWrites);
    // The firmware fetches the boot file the offer named.
    const local = join(dataDir, `ipxe-${String(chunked)}.efi`);
    await promisify(execFile)('tftp', ['-m', 'binary', '127.0.0.1', String(h.head.tftpPort), '-c', 'get', 'ipxe.efi', local], { timeout: 20_000 });
    t.is(statSync(local).size, ipxeEfi.length);
    // iPXE: its script, then what the script loads.
    const script = await (await fetch(`http://127.0.0.1:${h.head.httpPort}/boot/ipxe?mac=${MAC}`)).text();
    t.regex(script, /\nkernel http:\/\/127\.0\.0\.1:\d+\/boot\/bootconfig\//, script);
    t.is(await bootGet(h, `/bootconfig/${configUid}/kernel`), kernel.length);
    t.is(await bootGet(h, `/bootconfig/${configUid}/initramfs`), initramfs.length);
    if (chunked) {
      const manifestText = await (await fetch(`http://127.0.0.1:${h.head.httpPort}/boot/bootconfig/${configUid}/image/manifest`)).text();
      manifestBytes = Buffer.byteLength(manifestText);
      const manifest = JSON.parse(manifestText) as { chunks: string[] };
      for (const chunk of manifest.chunks) await bootGet(h, `/chunks/${chunk}`);
    } else {
      t.is(await bootGet(h, `/bootconfig/${configUid}/image`), image.length);
    }
    // The node agent's first report.
    t.is((await h.call('PUT', '/node/putstatus', { body: { status: { uptime: 3 } } })).status, 200);
  };

  await boot(false);
  await boot(true);
  const wallSeconds = (Date.now() - wallStart) / 1000;

  const reply = await h.call('GET', `/node/${MAC}/boot`, { token });
  t.is(reply.status, 200, JSON.stringify(reply.json));
  const data = reply.json.data as { node: string; name: string; boot: BootTimelineView; previous: BootTimelineView };
  t.is(data.node, nodeUid);
  for (const [which, timeline] of [['previous', data.previous], ['last', data.boot]] as const) {
    t.deepEqual(timeline.phases.map((phase) => phase.phase), ['dhcp', 'tftp', 'script', 'kernel', 'initramfs', 'image', 'agent'], which);
    t.is(timeline.started_by, 'dhcp');
    t.is(timeline.reached, 'agent');
    t.true(timeline.total_seconds > 0 && timeline.total_seconds < wallSeconds, `${which}: total ${timeline.total_seconds} s within the test's ${wallSeconds} s`);
    let previousStart = timeline.started_at;
    for (const phase of timeline.phases) {
      t.true(phase.start >= previousStart, `${which}: ${phase.phase} starts after the phase before`);
      t.true(phase.duration_seconds >= 0 && phase.duration_seconds <= timeline.total_seconds, `${which}: ${phase.phase} lasted ${phase.duration_seconds} s`);
      previousStart = phase.start;
    }
    const byName = Object.fromEntries(timeline.phases.map((phase) => [phase.phase, phase]));
    t.like(byName.dhcp, { mode: 'authoritative', ip: '127.0.0.1', client: 'firmware', count: 2 }, which);
    t.like(byName.tftp, { file: 'ipxe.efi', outcome: 'complete', bytes: ipxeEfi.length, count: 1 }, which);
    t.like(byName.script, { count: 1 }, which);
    t.like(byName.kernel, { bytes: kernel.length, complete: true }, which);
    t.like(byName.initramfs, { bytes: initramfs.length, complete: true }, which);
    t.deepEqual(timeline.events.map((event) => event.event).slice(0, 3), ['dhcp-offer', 'dhcp-ack', 'tftp'], which);
  }
  t.like(data.previous.phases.find((phase) => phase.phase === 'image'), { mode: 'whole', bytes: image.length, complete: true });
  t.like(data.boot.phases.find((phase) => phase.phase === 'image'), { mode: 'chunked', chunks: 3, count: 4, bytes: manifestBytes + image.length });
  t.true(data.boot.started_at > data.previous.updated_at, 'the second boot began after the first one\'s last event');

  // Bad input: an unknown node is a 404 with a reason; no token is a 401.
  const missing = await h.call('GET', '/node/no-such-node/boot', { token });
  t.is(missing.status, 404);
  t.truthy(missing.json.reason);
  t.is((await h.call('GET', `/node/${nodeUid}/boot`)).status, 401);

  // A chunk no file has, and a TFTP read from an address no node has, are counted, not kept.
  t.is((await fetch(`http://127.0.0.1:${h.head.httpPort}/boot/chunks/${'0'.repeat(64)}`)).status, 404);
  await promisify(execFile)('curl', ['-s', '-o', '/dev/null', '--interface', '127.0.0.99', `tftp://127.0.0.1:${h.head.tftpPort}/ipxe.efi`]);
  const metrics = samples(await (await fetch(`http://127.0.0.1:${h.head.httpPort}/metrics`)).text());
  t.is(metrics.get('keel_boot_http_requests_total{kind="script",status_class="2xx"}'), 2);
  t.is(metrics.get('keel_boot_http_requests_total{kind="kernel",status_class="2xx"}'), 2);
  t.is(metrics.get('keel_boot_http_requests_total{kind="image",status_class="2xx"}'), 1);
  t.is(metrics.get('keel_boot_http_requests_total{kind="manifest",status_class="2xx"}'), 1);
  t.is(metrics.get('keel_boot_http_requests_total{kind="chunk",status_class="2xx"}'), 3);
  t.is(metrics.get('keel_boot_http_requests_total{kind="chunk",status_class="4xx"}'), 1);
  t.is(metrics.get('keel_boot_http_sent_bytes_total{kind="kernel"}'), 2 * kernel.length);
  t.is(metrics.get('keel_boot_http_sent_bytes_total{kind="chunk"}'), image.length);
  t.is(metrics.get('keel_api_requests_total{method="PUT",status_class="2xx"}'), 2 + 2 + 1, 'two putstatus, two kernel/initramfs uploads, one image upload');
  t.is(metrics.get('keel_api_requests_total{method="GET",status_class="4xx"}'), 2);
  for (const phase of ['dhcp_to_script', 'script_to_kernel', 'image_fetch', 'boot_to_agent']) {
    t.is(metrics.get(`keel_boot_phase_duration_seconds_count{phase="${phase}"}`), 2, phase);
    t.true(metrics.get(`keel_boot_phase_duration_seconds_sum{phase="${phase}"}`)! < 2 * wallSeconds, phase);
  }
  t.is(metrics.get('keel_boot_timelines'), 1);
  t.is(metrics.get('keel_boot_events_unknown_source_total{source="tftp"}'), 1);
  // The refused chunk came from the node: its last boot shows it.
  const after = (await h.call('GET', `/node/${nodeUid}/boot`, { token })).json.data as { boot: BootTimelineView };
  t.like(after.boot.phases.find((phase) => phase.phase === 'image'), { chunks: 3, refused: 1 });
});
