// DHCP's expected conditions are logged once per interval with a count, never per packet and
// without a stack trace (issue 19, item 10): a flood from random MACs used to write one ≈ 930-byte
// line with a stack per packet.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { Invalid } from '../src/model/errors.js';
import type { DhcpBackend } from '../src/net/dhcp/backend.js';
import { startLoopbackDhcp } from './helpers/dhcp-loopback.js';

const discover = readFileSync(new URL('./fixtures/dhcp/udhcpc-01-to-server.bin', import.meta.url));
const CHADDR_OFFSET = 28;

/** A cluster in which no MAC is known, and registering one fails the way a full pool does. */
function backend(acceptNewNodes: boolean): DhcpBackend {
  return {
    modeFor: () => ({ mode: 'authoritative', network: {} }),
    binding: () => undefined,
    acceptNewNodes: () => acceptNewNodes,
    registerNode: () => Promise.reject(new Invalid('No free address left in network net1')),
    close: () => {},
  };
}

for (const [acceptNewNodes, condition, message] of [
  [false, 'unknown-node', 'DHCP request from an unknown MAC ignored (accept_new_nodes is off)'],
  [true, 'register-failed', 'DHCP could not register a new node'],
] as const) {
  test(`1,000 DISCOVERs from random MACs (${condition}): one line, then one with the count an interval later, no stack`, async (t) => {
    const lines: Record<string, unknown>[] = [];
    let offset = 0;
    const { server, client, port: base } = await startLoopbackDhcp(t, {
      directory: () => backend(acceptNewNodes), portOffset: 4000 + (acceptNewNodes ? 2 : 0),
      log: pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }),
      clock: () => Date.now() + offset,
    });
    const send = async (count: number, first: number) => {
      for (let i = 0; i < count; i++) {
        const packet = Buffer.from(discover);
        packet.writeUInt32BE(first + i, CHADDR_OFFSET + 2);
        client.send(packet, base, '127.0.0.1');
        if (i % 100 === 99) await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const dropped = () => server.stats().drops[condition] ?? 0;
    const waitForDrops = async (n: number) => {
      const deadline = Date.now() + 5000;
      while (dropped() < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    };

    await send(1000, 0x10000);
    await waitForDrops(1000);
    t.is(dropped(), 1000);
    const ofCondition = () => lines.filter((line) => line.msg === message);
    t.is(ofCondition().length, 1);
    t.like(ofCondition()[0], { condition, repeated: 0 });

    offset += 61_000;
    await send(1, 0x20000);
    await waitForDrops(1001);
    t.is(ofCondition().length, 2);
    t.like(ofCondition()[1], { condition, repeated: 999 });
    for (const line of lines) {
      t.is(line.err, undefined, 'no error object (and so no stack) in an expected condition');
      t.true(JSON.stringify(line).length < 400, JSON.stringify(line));
    }
    if (acceptNewNodes) t.is(ofCondition()[0]!.reason, 'No free address left in network net1');
  });
}
