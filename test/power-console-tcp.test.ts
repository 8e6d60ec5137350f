// Terminal servers as console lines (console=tcp, console_address=host:port): a raw TCP port and a
// telnet one played by the test (what a serial concentrator exposes), with reconnects and the
// telnet negotiation; and QEMU's own `-serial tcp:…,server,telnet` with a Linux kernel on it, whose
// messages land in GET /node/<id>/console and which answers keel's BREAK + `h` with the Magic SysRq
// help (Debian's kernel and keel's initramfs from images/build.sh, booted with -kernel: the network
// boot through keel is test/e2e's). QEMU is killed by PID.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { freePort } from './helpers/free-port.js';
import { startTestHead, type TestHead } from './helpers/head.js';
import { defaultAssets } from './e2e/assets.js';
import { connectWs, type WsConnection } from './power/ws-client.js';

const WAIT_MS = 30_000;
/** images/build.sh's bound in test/e2e/assets.ts (a cold build fetches a kernel and a Debian root). */
const ASSETS_BUILD_MS = 15 * 60_000;
/** A kernel under TCG on a shared machine, up to its first console messages and its initramfs shell. */
const KERNEL_WAIT_MS = 180_000;

interface ConsoleReply {
  kind: string;
  connected: boolean;
  reason?: string;
  output: string;
}

async function setup(t: ExecutionContext) {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  return { h, token };
}

async function addNode(h: TestHead, token: string, mac: string, attributes: Record<string, string>): Promise<string> {
  const res = await h.call('POST', '/nodes', { token, body: { mac, attributes } });
  if (res.status !== 200) throw new Error(JSON.stringify(res.json));
  return res.json.data as string;
}

async function consoleUntil(h: TestHead, token: string, node: string, done: (c: ConsoleReply) => boolean, what: string, waitMs = WAIT_MS): Promise<ConsoleReply> {
  const deadline = Date.now() + waitMs;
  let last: ConsoleReply | undefined;
  while (Date.now() < deadline) {
    const res = await h.call('GET', `/node/${node}/console?kib=256`, { token });
    last = res.json.data as ConsoleReply;
    if (res.status === 200 && done(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`console never ${what}; last: ${JSON.stringify(last)?.slice(-3000)}`);
}

async function until(check: () => boolean, what: string, waitMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function openConsole(t: ExecutionContext, h: TestHead, node: string, token: string): Promise<WsConnection> {
  const ws = await connectWs(`${h.base.replace('http:', 'ws:')}/node/${node}/console`, { authorization: `Bearer ${token}` });
  if (!ws.upgraded) throw new Error(`upgrade refused: ${ws.status} ${ws.body}`);
  t.teardown(() => ws.close());
  return ws;
}

/** A terminal server's port: records what each connection received, writes to the newest one. */
interface TerminalServer {
  port: number;
  connections: number;
  received(): Buffer;
  write(bytes: string | Buffer): void;
  /** Drop the current connection (the concentrator restarting). */
  drop(): void;
}

async function startTerminalServer(t: ExecutionContext, greeting?: Buffer): Promise<TerminalServer> {
  let current: Socket | undefined;
  const sockets = new Set<Socket>();
  let received = Buffer.alloc(0);
  const state = { connections: 0 };
  const server = createServer((socket) => {
    sockets.add(socket);
    state.connections++;
    current = socket;
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    if (greeting) socket.write(greeting);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return state.connections;
    },
    received: () => received,
    write: (bytes) => current?.write(bytes),
    drop: () => current?.destroy(),
  };
}

test('raw TCP terminal server: output captured, keystrokes byte for byte, reconnect after the server drops the line, no BREAK', async (t) => {
  const { h, token } = await setup(t);
  const server = await startTerminalServer(t);
  const node = await addNode(h, token, '52:54:00:00:21:01', { console: 'tcp', console_address: `127.0.0.1:${server.port}` });
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  t.is(server.connections, 1);
  server.write(Buffer.from([0x42, 0x49, 0x4f, 0x53, 0xff, 0x0d, 0x0a]));
  const first = await consoleUntil(h, token, node, (c) => c.output.startsWith('BIOS'), 'captured the output');
  t.is(first.kind, 'tcp');
  const exact = await h.call('GET', `/node/${node}/console?encoding=base64`, { token });
  t.deepEqual([...Buffer.from((exact.json.data as ConsoleReply).output, 'base64')], [0x42, 0x49, 0x4f, 0x53, 0xff, 0x0d, 0x0a], 'raw: 0xff is data');
  const ws = await openConsole(t, h, node, token);
  ws.send(Buffer.from([0x72, 0xff, 0x0d]));
  await until(() => server.received().length >= 3, 'keystrokes at the server');
  t.deepEqual([...server.received()], [0x72, 0xff, 0x0d]);

  server.drop();
  await consoleUntil(h, token, node, (c) => c.output.includes('connection closed by the terminal server; retrying]'), 'noted the drop');
  await until(() => server.connections === 2, 'keel to reconnect');
  await consoleUntil(h, token, node, (c) => c.connected, 'connected again');
  server.write('after reconnect\r\n');
  await consoleUntil(h, token, node, (c) => c.output.includes('after reconnect'), 'captured after the reconnect');

  const refused = await h.call('POST', `/node/${node}/console/break`, { token });
  t.is(refused.status, 409);
  t.regex(refused.json.reason ?? '', /raw TCP console cannot carry a BREAK/);

  // Unusable addresses are the status' reason; a bad protocol is refused on write.
  await h.call('PATCH', `/node/${node}`, { token, body: { attributes: { console: 'tcp', console_address: 'concentrator-7' } } });
  const bad = await consoleUntil(h, token, node, (c) => c.kind === 'none' && c.reason !== undefined, 'refused the address');
  t.regex(bad.reason!, /console_address must be host:port/);
  const protocol = await h.call('PATCH', `/node/${node}`, { token, body: { attributes: { console: 'tcp', console_address: `127.0.0.1:${server.port}`, console_protocol: 'ssh' } } });
  t.is(protocol.status, 400);
  t.regex(protocol.json.reason ?? '', /console_protocol must be one of raw, telnet/);
});

const IAC = 0xff;
const [WILL, WONT, DO] = [251, 252, 253];
const [ECHO, SGA, TTYPE, LINEMODE] = [1, 3, 24, 34];

test('telnet terminal server: options negotiated, IAC escaped both ways, BREAK as IAC BRK', async (t) => {
  const { h, token } = await setup(t);
  // What telnet servers open with: they echo, suppress go-ahead, ask for a terminal type and linemode.
  const greeting = Buffer.from([IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, TTYPE, IAC, DO, LINEMODE]);
  const server = await startTerminalServer(t, greeting);
  const node = await addNode(h, token, '52:54:00:00:21:02', { console: 'tcp', console_address: `127.0.0.1:${server.port}`, console_protocol: 'telnet' });
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  await until(() => server.received().length >= 12, 'the answers to the options');
  t.deepEqual([...server.received()], [IAC, DO, ECHO, IAC, DO, SGA, IAC, WONT, TTYPE, IAC, WONT, LINEMODE], 'accepted echo and SGA, refused the rest');
  // Asked again: not answered again (no negotiation loop).
  server.write(Buffer.from([IAC, WILL, ECHO, IAC, DO, TTYPE]));
  server.write(Buffer.from([IAC, 250 /* SB */, TTYPE, 1, IAC, 240 /* SE */, 0x6f, 0x6b, IAC, IAC, IAC, 0xf1 /* NOP */, 0x0d, 0x0a]));
  const out = await consoleUntil(h, token, node, (c) => c.output.startsWith('ok'), 'captured the output');
  t.is(out.connected, true);
  const exact = await h.call('GET', `/node/${node}/console?encoding=base64`, { token });
  t.deepEqual([...Buffer.from((exact.json.data as ConsoleReply).output, 'base64')], [0x6f, 0x6b, 0xff, 0x0d, 0x0a], 'IAC IAC is one 0xff, commands and subnegotiations are not output');
  const before = server.received().length;
  const ws = await openConsole(t, h, node, token);
  ws.send(Buffer.from([0x61, 0xff, 0x62]));
  await until(() => server.received().length >= before + 4, 'keystrokes at the server');
  t.deepEqual([...server.received().subarray(before)], [0x61, IAC, IAC, 0x62], 'a typed 0xff is sent as IAC IAC, and nothing was re-negotiated');

  const sent = await h.call('POST', `/node/${node}/console/break`, { token });
  t.is(sent.status, 200, JSON.stringify(sent.json));
  await until(() => server.received().length >= before + 6, 'the BREAK at the server');
  t.deepEqual([...server.received().subarray(before + 4)], [IAC, 243], 'IAC BRK');
  ws.send('t');
  await until(() => server.received().length >= before + 7, 'the SysRq key');
  t.is(server.received()[before + 6], 0x74);
});

test('QEMU -serial tcp,telnet: kernel messages captured, BREAK + h makes the kernel print the Magic SysRq help', async (t) => {
  // A cold images/build.sh (test/e2e/assets.ts) takes up to 15 min; then the boot has its own bound.
  t.timeout(ASSETS_BUILD_MS + 6 * 60_000);
  const assets = await defaultAssets();
  t.timeout(6 * 60_000);
  const { h, token } = await setup(t);
  const port = await freePort();
  const qemu = spawn('qemu-system-x86_64', [
    '-accel', 'tcg', '-m', '512', '-smp', '1', '-display', 'none', '-nic', 'none', '-no-reboot',
    '-kernel', assets.vmlinuz, '-initrd', assets.initramfs,
    // No keel.image=: keel's initramfs prints why and starts a shell, and the kernel stays up.
    '-append', 'console=ttyS0,115200 sysrq_always_enabled panic=0',
    '-serial', `tcp:127.0.0.1:${port},server=on,wait=off,telnet=on`,
    '-monitor', 'none',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let qemuErr = '';
  qemu.stderr!.on('data', (chunk: Buffer) => (qemuErr += chunk.toString()));
  const exited = new Promise<void>((resolve) => qemu.once('exit', () => resolve()));
  t.teardown(async () => {
    if (qemu.exitCode === null && qemu.signalCode === null) {
      process.kill(qemu.pid!, 'SIGKILL');
      await exited;
    }
  });
  const node = await addNode(h, token, '52:54:00:00:21:03', { console: 'tcp', console_address: `127.0.0.1:${port}`, console_protocol: 'telnet' });
  try {
    await consoleUntil(h, token, node, (c) => c.output.includes('Linux version'), 'showed the kernel booting', KERNEL_WAIT_MS);
    await consoleUntil(h, token, node, (c) => c.output.includes('starting a shell'), 'reached the initramfs shell', KERNEL_WAIT_MS);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nQEMU: ${qemuErr}`);
  }
  t.false((await consoleUntil(h, token, node, () => true, 'answered')).output.includes('sysrq: HELP'));

  const ws = await openConsole(t, h, node, token);
  const sent = await h.call('POST', `/node/${node}/console/break`, { token });
  t.is(sent.status, 200, JSON.stringify(sent.json));
  // The kernel takes the next key within 5 s of a break as the SysRq command.
  ws.send('h');
  const log = await consoleUntil(h, token, node, (c) => /sysrq: HELP : .*show-memory-usage\(m\)/.test(c.output), 'showed the SysRq help', WAIT_MS);
  t.regex(log.output, /\[keel: BREAK from admin\][\s\S]*sysrq: HELP/);
});
