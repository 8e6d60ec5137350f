// Request → reply latency from a tcpdump capture on the client's interface: each DHCP request
// (DISCOVER, REQUEST) is paired with the first reply of the matching kind (OFFER; ACK or NAK) with
// the same xid, so the figure is what the client saw on the wire, whichever server answered.
import { readFileSync } from 'node:fs';

const DHCP_MAGIC_OFFSET = 236;
const OPTIONS_OFFSET = 240;
const MESSAGE_TYPE_OPTION = 53;
const REPLY_KIND: Readonly<Record<number, string>> = { 2: 'offer', 5: 'ack', 6: 'ack' };
const REQUEST_KIND: Readonly<Record<number, string>> = { 1: 'offer', 3: 'ack' };

export interface Exchange {
  kind: 'offer' | 'ack';
  /** Seconds (capture clock). */
  sentAt: number;
  /** Undefined when no reply came. */
  latencyMs?: number;
  mac: string;
  /** ACKs: the address given (yiaddr). */
  address?: string;
  nak?: boolean;
}

interface DhcpFrame {
  at: number;
  op: number;
  xid: number;
  type: number;
  mac: string;
  yiaddr: string;
}

function messageType(payload: Buffer): number | undefined {
  for (let i = OPTIONS_OFFSET; i < payload.length;) {
    const code = payload[i]!;
    if (code === 0) { i += 1; continue; }
    if (code === 255) return undefined;
    const length = payload[i + 1];
    if (length === undefined) return undefined;
    if (code === MESSAGE_TYPE_OPTION) return payload[i + 2];
    i += 2 + length;
  }
  return undefined;
}

function* dhcpFrames(path: string): Generator<DhcpFrame> {
  const pcap = readFileSync(path);
  if (pcap.length < 24) return;
  const magic = pcap.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`${path}: not a little-endian classic pcap`);
  const nanos = magic === 0xa1b23c4d;
  for (let offset = 24; offset + 16 <= pcap.length;) {
    const at = pcap.readUInt32LE(offset) + pcap.readUInt32LE(offset + 4) / (nanos ? 1e9 : 1e6);
    const captured = pcap.readUInt32LE(offset + 8);
    const frame = pcap.subarray(offset + 16, offset + 16 + captured);
    offset += 16 + captured;
    if (frame.length < 14 + 20 + 8 + OPTIONS_OFFSET || frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    if (ip[9] !== 17) continue;
    const payload = ip.subarray((ip[0]! & 0x0f) * 4 + 8);
    if (payload.length < OPTIONS_OFFSET || payload.readUInt32BE(DHCP_MAGIC_OFFSET) !== 0x63825363) continue;
    const type = messageType(payload);
    if (type === undefined) continue;
    const mac = [...payload.subarray(28, 34)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    yield { at, op: payload[0]!, xid: payload.readUInt32BE(4), type, mac, yiaddr: [...payload.subarray(16, 20)].join('.') };
  }
}

export function exchanges(path: string): Exchange[] {
  const pending = new Map<string, Exchange>();
  const all: Exchange[] = [];
  for (const frame of dhcpFrames(path)) {
    if (frame.op === 1) {
      const kind = REQUEST_KIND[frame.type] as Exchange['kind'] | undefined;
      if (!kind) continue;
      const key = `${kind} ${frame.xid}`;
      if (pending.has(key)) continue; // a retransmission: latency counts from the first
      const exchange: Exchange = { kind, sentAt: frame.at, mac: frame.mac };
      pending.set(key, exchange);
      all.push(exchange);
    } else {
      const kind = REPLY_KIND[frame.type];
      if (!kind) continue;
      const exchange = pending.get(`${kind} ${frame.xid}`);
      if (!exchange || exchange.latencyMs !== undefined) continue;
      exchange.latencyMs = (frame.at - exchange.sentAt) * 1000;
      if (kind === 'ack') {
        exchange.address = frame.yiaddr;
        exchange.nak = frame.type === 6;
      }
    }
  }
  return all;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
