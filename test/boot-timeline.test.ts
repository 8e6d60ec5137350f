// The boot timeline recorder (src/boot/timeline.ts) on a fake clock: phases in order with their
// durations, when a new boot starts (a boot storm with retry scripts and DHCP retransmissions
// reads as one boot per real boot), the phase-duration observations for /metrics, address
// learning for proxy mode, and the memory bounds (events per boot, nodes, unknown sources counted only).
import test from 'ava';
import { fileReplyStatus } from '../src/boot/routes.js';
import { planFileResponse } from '../src/http/ranges.js';
import { BootTimelines, type BootTimelineView, type DhcpReplyEvent, type PhaseDuration, type ServedReply } from '../src/boot/timeline.js';

const MAC = '52:54:00:12:34:58';
const NODE = 'uid-node-1';
const NODE_IP = '10.0.0.5';

function recorder(options: { maxEvents?: number; maxNodes?: number; macs?: Record<string, string>; ips?: Record<string, string> } = {}) {
  let now = Date.parse('2026-12-07T12:00:00Z');
  const observed: Array<[PhaseDuration, number]> = [];
  const macs: Record<string, string> = options.macs ?? { [MAC]: NODE };
  const ips: Record<string, string> = options.ips ?? { [NODE_IP]: NODE };
  const timelines = new BootTimelines({
    nodes: { byMac: (mac) => macs[mac], byAddress: (address) => ips[address] },
    clock: () => now,
    maxEvents: options.maxEvents,
    maxNodes: options.maxNodes,
    onPhaseDuration: (duration, seconds) => observed.push([duration, seconds]),
  });
  return {
    timelines,
    observed,
    /** Move the clock by `ms`. */
    advance(ms: number) {
      now += ms;
    },
    now: () => now,
  };
}

const dhcp = (type: string, client: DhcpReplyEvent['client'], yiaddr = NODE_IP, mac = MAC, ciaddr = '0.0.0.0'): DhcpReplyEvent => ({ mac, type, yiaddr, ciaddr, client });

/** A /boot file reply of `size` bytes, sent whole, that took `ms` and ended now. */
function served(now: number, kind: ServedReply['kind'], size: number, ms: number, from = NODE_IP, of?: ServedReply['kind']): ServedReply {
  return { kind, of, from, startedAt: now - ms, endedAt: now, status: 200, bytes: size, size };
}

const phaseNames = (boot: BootTimelineView | null) => boot?.phases.map((phase) => phase.phase);

test('a UEFI boot in authoritative mode: phases in order with durations, the total, and one observation per phase duration', (t) => {
  const r = recorder();
  const { timelines } = r;
  timelines.dhcpReplied(dhcp('OFFER', 'firmware'));
  r.advance(200);
  timelines.dhcpReplied(dhcp('ACK', 'firmware'));
  r.advance(1_500);
  timelines.tftpTransferEnded({ address: NODE_IP, file: 'ipxe.efi', outcome: 'complete', bytes: 1_000_000, durationMs: 1_000, retransmits: 2 });
  r.advance(2_000);
  timelines.dhcpReplied(dhcp('OFFER', 'ipxe'));
  r.advance(100);
  timelines.dhcpReplied(dhcp('ACK', 'ipxe'));
  r.advance(400);
  timelines.scriptServed(MAC, NODE_IP, undefined); // t = 4.2 s
  r.advance(3_000);
  timelines.httpServed(served(r.now(), 'kernel', 8_000_000, 2_500)); // 0.5 s → 3.0 s after the script
  r.advance(1_000);
  timelines.httpServed(served(r.now(), 'initramfs', 20_000_000, 900));
  r.advance(10_000);
  timelines.httpServed(served(r.now(), 'image', 300_000_000, 9_000));
  r.advance(20_000);
  timelines.agentContact(NODE); // t = 38.2 s
  r.advance(60_000);
  timelines.agentContact(NODE); // later reports do not move the boot

  const { boot, previous } = timelines.timelines(NODE);
  t.is(previous, null);
  if (!boot) throw new Error('no timeline');
  t.deepEqual(phaseNames(boot), ['dhcp', 'tftp', 'script', 'kernel', 'initramfs', 'image', 'agent']);
  t.is(boot.started_at, '2026-12-07T12:00:00.000Z');
  t.is(boot.started_by, 'dhcp');
  t.is(boot.reached, 'agent');
  t.is(boot.total_seconds, 38.2);
  const phase = Object.fromEntries(boot.phases.map((p) => [p.phase, p]));
  t.like(phase.dhcp, { duration_seconds: 3.8, count: 4, mode: 'authoritative', ip: NODE_IP, client: 'ipxe' });
  t.like(phase.tftp, { start: '2026-12-07T12:00:00.700Z', duration_seconds: 1, bytes: 1_000_000, file: 'ipxe.efi', outcome: 'complete', retransmits: 2 });
  t.like(phase.kernel, { start: '2026-12-07T12:00:04.700Z', duration_seconds: 2.5, bytes: 8_000_000, complete: true });
  t.like(phase.image, { duration_seconds: 9, mode: 'whole', complete: true });
  t.like(phase.agent, { start: '2026-12-07T12:00:38.200Z', duration_seconds: 0, count: 1 });
  t.deepEqual(boot.events.map((event) => event.event), ['dhcp-offer', 'dhcp-ack', 'tftp', 'dhcp-offer', 'dhcp-ack', 'script', 'kernel', 'initramfs', 'image', 'agent']);
  t.deepEqual(r.observed, [['dhcp_to_script', 4.2], ['script_to_kernel', 3], ['image_fetch', 9], ['boot_to_agent', 38.2]]);
});

test('a boot storm with retries: retry scripts and repeated DHCP stay one boot until a boot script was served', (t) => {
  const r = recorder();
  const { timelines } = r;
  // The node has no boot config yet: its iPXE asks again every 30 s; its firmware retries DHCP too.
  timelines.dhcpReplied(dhcp('OFFER', 'ipxe'));
  timelines.dhcpReplied(dhcp('OFFER', 'ipxe')); // a retransmitted DISCOVER, answered again
  r.advance(100);
  timelines.dhcpReplied(dhcp('ACK', 'ipxe'));
  for (let i = 0; i < 5; i++) {
    r.advance(i === 0 ? 500 : 30_000);
    timelines.scriptServed(MAC, NODE_IP, 'node n0 has no _boot_config attribute');
  }
  r.advance(5_000);
  timelines.dhcpReplied(dhcp('OFFER', 'ipxe')); // reset by hand: still before any boot script
  r.advance(10_000);
  timelines.scriptServed(MAC, NODE_IP, undefined);
  let { boot, previous } = timelines.timelines(NODE);
  t.is(previous, null, 'one boot so far');
  const script = boot!.phases.find((phase) => phase.phase === 'script')!;
  t.like(script, { count: 6, retries: 5 });
  t.false('problem' in script, 'the boot script cleared the problem');
  const retry = boot!.events.find((event) => event.event === 'retry-script')!;
  t.is(retry.repeated, 4, 'five retry scripts, one event');
  t.is(boot!.events.filter((event) => event.event === 'dhcp-offer')[0]!.repeated, 1);
  t.deepEqual(r.observed, [['dhcp_to_script', 135.6]], 'dhcp → script counts from the boot\'s first DHCP');

  // Past the script: the next DHCP from a boot client is a new boot; the last one becomes `previous`.
  r.advance(60_000);
  timelines.dhcpReplied(dhcp('OFFER', 'firmware'));
  ({ boot, previous } = timelines.timelines(NODE));
  t.is(previous!.reached, 'script');
  t.deepEqual(phaseNames(boot), ['dhcp']);
  t.is(boot!.total_seconds, 0);
  // A third boot: only two are kept.
  timelines.scriptServed(MAC, NODE_IP, undefined);
  r.advance(1_000);
  timelines.dhcpReplied(dhcp('OFFER', 'firmware'));
  ({ boot, previous } = timelines.timelines(NODE));
  t.deepEqual(phaseNames(previous), ['dhcp', 'script']);
  t.deepEqual(phaseNames(boot), ['dhcp']);
});

test('the booted system\'s own DHCP client is an event of the boot, not a new one; a long pause before the script is', (t) => {
  const r = recorder();
  const { timelines } = r;
  timelines.dhcpReplied(dhcp('OFFER', 'ipxe'));
  timelines.scriptServed(MAC, NODE_IP, undefined);
  r.advance(5_000);
  timelines.dhcpReplied(dhcp('ACK', 'other')); // the initramfs's udhcpc
  let { boot, previous } = timelines.timelines(NODE);
  t.is(previous, null);
  t.deepEqual(boot!.events.map((event) => event.event), ['dhcp-offer', 'script', 'dhcp-ack']);
  t.like(boot!.phases.find((phase) => phase.phase === 'dhcp'), { count: 1, duration_seconds: 0 });

  // Another node stuck on retry scripts, then off for an hour: its next DHCP is a new boot.
  const other = recorder();
  other.timelines.dhcpReplied(dhcp('OFFER', 'ipxe'));
  other.timelines.scriptServed(MAC, NODE_IP, 'no boot config');
  other.advance(60 * 60_000);
  other.timelines.dhcpReplied(dhcp('OFFER', 'firmware'));
  ({ boot, previous } = other.timelines.timelines(NODE));
  t.is(previous!.reached, 'script');
  t.deepEqual(phaseNames(boot), ['dhcp']);
  // That boot never got further; a report a day later (the node started from its disk) is not its agent.
  other.advance(24 * 60 * 60_000);
  other.timelines.agentContact(NODE);
  t.deepEqual(phaseNames(other.timelines.timelines(NODE).boot), ['dhcp']);
  t.deepEqual(other.observed, []);
});

test('a chunked image fetch: manifest and chunks make the image phase; its duration is known at the agent\'s first report', (t) => {
  const r = recorder();
  const { timelines } = r;
  timelines.dhcpReplied(dhcp('OFFER', 'ipxe'));
  timelines.scriptServed(MAC, NODE_IP, undefined);
  r.advance(1_000);
  timelines.httpServed(served(r.now(), 'manifest', 2_000, 1, NODE_IP, 'image'));
  for (let i = 0; i < 100; i++) {
    r.advance(50);
    timelines.httpServed(served(r.now(), 'chunk', 4 << 20, 40));
  }
  // A chunk the client gave up on: counted in bytes, not complete.
  timelines.httpServed({ ...served(r.now(), 'chunk', 4 << 20, 10), bytes: 1024 });
  r.advance(3_000);
  timelines.agentContact(NODE);
  const { boot } = timelines.timelines(NODE);
  const image = boot!.phases.find((phase) => phase.phase === 'image')!;
  t.like(image, { mode: 'chunked', chunks: 101, count: 102, bytes: 2_000 + 100 * (4 << 20) + 1024, duration_seconds: 5.001 });
  t.deepEqual(boot!.events.map((event) => event.event), ['dhcp-offer', 'script', 'image-manifest', 'agent'], 'chunks are not events each');
  t.deepEqual(r.observed.map(([name]) => name), ['dhcp_to_script', 'image_fetch', 'boot_to_agent']);
  t.is(r.observed[1]![1], 5.001);
});

test('proxy mode: the address a node fetched its script from (or a 4011 ACK named) finds it for TFTP and HTTP', (t) => {
  const r = recorder({ ips: {} }); // the site's DHCP gave the address: the model does not know it
  const { timelines } = r;
  const siteAddress = '192.0.2.77';
  timelines.dhcpReplied(dhcp('OFFER', 'firmware', '0.0.0.0'));
  timelines.dhcpReplied(dhcp('ACK', 'firmware', '0.0.0.0', MAC, siteAddress)); // port 4011: the client has its address
  r.advance(100);
  timelines.tftpTransferEnded({ address: siteAddress, file: 'ipxe.efi', outcome: 'complete', bytes: 10, durationMs: 5, retransmits: 0 });
  const { boot } = timelines.timelines(NODE);
  t.deepEqual(phaseNames(boot), ['dhcp', 'tftp']);
  t.like(boot!.phases[0], { mode: 'proxy', ip: siteAddress, count: 2 });
  t.deepEqual(boot!.events.map((event) => event.event), ['proxy-offer', 'proxy-ack', 'tftp']);

  // Another node's script fetched from a new address moves the learning; the old address is unknown again.
  const moved = recorder({ ips: {} });
  moved.timelines.scriptServed(MAC, '192.0.2.10', undefined);
  moved.timelines.scriptServed(MAC, '192.0.2.11', undefined);
  moved.timelines.httpServed(served(moved.now(), 'kernel', 100, 10, '192.0.2.10'));
  moved.timelines.httpServed(served(moved.now(), 'kernel', 100, 10, '192.0.2.11'));
  t.is(moved.timelines.timelines(NODE).boot!.phases.find((phase) => phase.phase === 'kernel')!.count, 1);
  t.is(moved.timelines.unknownSources().http, 1);
});

test('bounded: unknown sources are counted, not kept; events per boot and nodes are capped', (t) => {
  const r = recorder({ maxEvents: 5, maxNodes: 3, macs: { [MAC]: NODE, 'aa:00:00:00:00:01': 'n1', 'aa:00:00:00:00:02': 'n2', 'aa:00:00:00:00:03': 'n3' } });
  const { timelines } = r;
  timelines.dhcpReplied(dhcp('OFFER', 'firmware', NODE_IP, '02:00:00:00:00:99'));
  timelines.tftpTransferEnded({ address: '198.51.100.1', file: 'undionly.kpxe', outcome: 'complete', bytes: 1, durationMs: 1, retransmits: 0 });
  timelines.httpServed(served(r.now(), 'kernel', 1, 1, '198.51.100.1'));
  timelines.httpServed(served(r.now(), 'kernel', 1, 1, '198.51.100.1')); // remembered as unknown: no second lookup, still counted
  timelines.scriptServed('02:00:00:00:00:99', '198.51.100.1', undefined);
  timelines.agentContact('no-timeline-node');
  t.deepEqual(timelines.unknownSources(), { dhcp: 1, tftp: 1, http: 3 });
  t.is(timelines.size, 0);

  timelines.dhcpReplied(dhcp('OFFER', 'firmware'));
  for (let i = 0; i < 10; i++) timelines.tftpTransferEnded({ address: NODE_IP, file: `file-${i}`, outcome: 'complete', bytes: 10, durationMs: 1, retransmits: 0 });
  const { boot } = timelines.timelines(NODE);
  t.is(boot!.events.length, 5);
  t.is(boot!.events_dropped, 6);
  t.like(boot!.phases.find((phase) => phase.phase === 'tftp'), { count: 10, bytes: 100, file: 'file-9' }, 'phases still count what the events list dropped');

  // Three more nodes boot: the node whose boot started longest ago is forgotten.
  for (const mac of ['aa:00:00:00:00:01', 'aa:00:00:00:00:02', 'aa:00:00:00:00:03']) {
    r.advance(1_000);
    timelines.dhcpReplied(dhcp('OFFER', 'firmware', '0.0.0.0', mac));
  }
  t.is(timelines.size, 3);
  t.deepEqual(timelines.timelines(NODE), { boot: null, previous: null });
  t.not(timelines.timelines('n1').boot, null);
});

test('the status the boot path reports for a file reply is the one the sender plans (Range, If-None-Match, If-Range)', (t) => {
  const file = { size: 1000, sha256: 'ab'.repeat(32), mtime: 1_700_000_000, stable: true, piece: () => Buffer.alloc(0), close: () => undefined };
  const cases: Array<Record<string, string>> = [
    {}, { range: 'bytes=0-99' }, { range: 'bytes=-10' }, { range: 'bytes=900-' }, { range: 'bytes=1000-' }, { range: 'bytes=-0' }, { range: 'bytes=5-1' },
    { range: 'items=0-1' }, { range: 'bytes=0-1,5-6' }, { 'if-none-match': `"${'ab'.repeat(32)}"` }, { 'if-none-match': '"other"', range: 'bytes=0-1' },
    { 'if-range': '"other"', range: 'bytes=0-1' }, { 'if-range': `"${'ab'.repeat(32)}"`, range: 'bytes=2000-' },
  ];
  const statuses = cases.map((headers) => fileReplyStatus(file, headers));
  t.deepEqual(statuses, cases.map((headers) => planFileResponse(file, headers).status));
  t.deepEqual([...new Set(statuses)].sort(), [200, 206, 304, 416]);
});
