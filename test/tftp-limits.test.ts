// TFTP admission limits (issue 19, items 2 and 4; docs/security.md): the window memory budget
// bounds what stalled max-window transfers hold, and per-address caps keep a flood of requests
// from one address from starving another. Traffic on loopback only (127.0.0.0/8 gives the
// distinct client addresses).
import test from 'ava';
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Opcode, serializeAck, serializeRequest } from '../src/net/tftp/packets.js';
import { seededBuffer } from './helpers/seeded-bytes.js';
import { createFixture, curl, runClient, sha256, startServer, type Fixture } from './tftp/fixture.js';

let fixture: Fixture;
test.before(async () => {
  fixture = await createFixture();
});
test.after.always(() => fixture?.close());

const MiB = 1024 * 1024;

/** Opens `count` UDP sockets on `address`, closed at teardown (an open socket keeps its transfer stalled, not ended by ICMP). */
async function clientSockets(t: { teardown(fn: () => unknown): void }, address: string, count: number): Promise<Socket[]> {
  const sockets = await Promise.all(Array.from({ length: count }, () => new Promise<Socket>((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, address, () => resolve(socket));
  })));
  t.teardown(() => {
    for (const socket of sockets) socket.close();
  });
  return sockets;
}

/** Resident set of process `pid` in bytes. */
function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) * 1024;
}

test('500 stalled transfers at blksize 65464 × windowsize 64 keep the server under 300 MB while another client is served', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'keel-tftp-window-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const big = await seededBuffer(9, 8 * MiB);
  writeFileSync(join(root, 'big.bin'), big);
  // Its own process, so that its RSS is the server's alone.
  const server = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'tftp/serve.ts'), '--bind', '0.0.0.0', '--root', root], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (server.exitCode === null) process.kill(server.pid!, 'SIGKILL');
  });
  const lines = createInterface({ input: server.stdout! });
  const port = (JSON.parse((await lines[Symbol.asyncIterator]().next()).value as string) as { port: number }).port;
  const baseline = rssOf(server.pid!);

  // 20 addresses × 25 transfers: the per-address caps do not bind, the global budget does.
  const stalled: Socket[] = [];
  for (let a = 0; a < 20; a++) stalled.push(...(await clientSockets(t, `127.0.0.${10 + a}`, 25)));
  let acknowledged = 0;
  const request = serializeRequest({ filename: 'big.bin', mode: 'octet', options: [{ name: 'blksize', value: '65464' }, { name: 'windowsize', value: '64' }] });
  const allAcknowledged = new Promise<void>((resolve) => {
    for (const socket of stalled) {
      // ACK the OACK once, then stay silent: the server sends one window and waits.
      socket.once('message', (reply, from) => {
        if (reply[1] === Opcode.oack) socket.send(serializeAck(0), from.port, from.address);
        if (++acknowledged === stalled.length) resolve();
      });
    }
  });
  for (const socket of stalled) socket.send(request, port, '127.0.0.1');
  await Promise.race([allAcknowledged, new Promise((resolve) => setTimeout(resolve, 15_000))]);
  t.is(acknowledged, 500);

  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf(server.pid!))), 50);
  t.teardown(() => clearInterval(sampler));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const run = await runClient(t, 'curl', ['--max-time', '20', ...curl(port, 'big.bin', 1468)]);
  await new Promise((resolve) => setTimeout(resolve, 500));
  clearInterval(sampler);
  t.is(run.exitCode, 0, run.output);
  t.is(sha256(run.data ?? Buffer.alloc(0)), sha256(big));
  t.log(`server RSS ${(baseline / MiB).toFixed(0)} MB at start, peak ${(peak / MiB).toFixed(0)} MB with 500 stalled transfers`);
  t.true(peak < 300 * MiB, `peak RSS ${(peak / MiB).toFixed(0)} MB`);
});

test('a flood of requests from one address never starves another', async (t) => {
  const { server, port } = startServer(t, fixture, { maxTransfers: 256 });
  // 2,000 RRQs from one address, never acknowledged: without the per-address cap they take every slot.
  const [flood] = await clientSockets(t, '127.0.0.2', 1);
  const request = serializeRequest({ filename: 'small.bin', mode: 'octet', options: [] });
  for (let burst = 0; burst < 20; burst++) {
    for (let i = 0; i < 100; i++) flood!.send(request, port, '127.0.0.1');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  const during = server.stats();
  t.true(during.activeTransfers <= 64, `${during.activeTransfers} transfers running`);
  t.true(during.sourceBusyDrops > 0);

  // Another address, while the flood's transfers are still waiting for ACKs.
  const runs = await Promise.all(['small.bin', 'f.bin'].map((name) => runClient(t, 'curl', ['--max-time', '10', ...curl(port, name, 1468)])));
  for (const [i, name] of ['small.bin', 'f.bin'].entries()) {
    t.is(runs[i]!.exitCode, 0, runs[i]!.output);
    t.is(sha256(runs[i]!.data ?? Buffer.alloc(0)), sha256(fixture.files.get(name)!));
  }
  t.is(server.stats().outcomes.complete, 2);
});
