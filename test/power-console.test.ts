// Serial consoles through the API: capture from a local serial line (a socat pty pair) and from
// IPMI SOL (ipmiconsole against ipmi_sim, whose SOL device is a pty pair), the log in
// GET /node/<id>/console, the live WebSocket (with and without a valid token), keystrokes back to
// the machine, and the ring bound. Every process (socat, ipmi_sim, ipmiconsole) is stopped by PID.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestHead, type TestHead } from './helpers/head.js';
import { SIM_PASSWORD, SIM_USER, startIpmiSim } from './power/ipmi-sim.js';
import { startPtyPair, type PtyPair } from './power/pty-pair.js';
import { connectWs, type WsConnection } from './power/ws-client.js';

/** Generous: the machine is shared with other developers' benchmarks. */
const WAIT_MS = 30_000;

interface ConsoleReply {
  kind: string;
  connected: boolean;
  reason?: string;
  stored_bytes: number;
  bytes: number;
  encoding: string;
  output: string;
}

async function setup(t: ExecutionContext) {
  // The serial lines here are socat ptys (startPtyPair), which the default patterns refuse.
  const h = await startTestHead(t, { KEEL_CONSOLE_DEVICE_PATTERNS: join(tmpdir(), 'keel-pty-*', 'device') });
  const { access_token: token } = await h.login();
  return { h, token };
}

async function ptyPair(t: ExecutionContext): Promise<PtyPair> {
  const pair = await startPtyPair();
  t.teardown(() => pair.stop());
  return pair;
}

async function addNode(h: TestHead, token: string, mac: string, attributes: Record<string, string>, powerUri?: string): Promise<string> {
  const res = await h.call('POST', '/nodes', { token, body: { mac, attributes, ...(powerUri ? { power_uri: powerUri } : {}) } });
  if (res.status !== 200) throw new Error(JSON.stringify(res.json));
  return res.json.data as string;
}

const getConsole = async (h: TestHead, token: string, node: string, query = '') => {
  const res = await h.call('GET', `/node/${node}/console${query}`, { token });
  if (res.status !== 200) throw new Error(`GET console: ${res.status} ${JSON.stringify(res.json)}`);
  return res.json.data as ConsoleReply;
};

/** Poll GET /node/<id>/console until `done` holds (bounded). */
async function consoleUntil(h: TestHead, token: string, node: string, done: (c: ConsoleReply) => boolean, what: string, query = ''): Promise<ConsoleReply> {
  const deadline = Date.now() + WAIT_MS;
  let last: ConsoleReply | undefined;
  while (Date.now() < deadline) {
    last = await getConsole(h, token, node, query);
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`console never ${what}; last: ${JSON.stringify(last)}`);
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function openConsole(t: ExecutionContext, h: TestHead, node: string, headers: Record<string, string>, query = ''): Promise<WsConnection> {
  const ws = await connectWs(`${h.base.replace('http:', 'ws:')}/node/${node}/console${query}`, headers);
  if (!ws.upgraded) throw new Error(`upgrade refused: ${ws.status} ${ws.body}`);
  t.teardown(() => ws.close());
  return ws;
}

test('serial console through a pty: output in GET /node/<id>/console and the WebSocket, keystrokes to the line', async (t) => {
  const { h, token } = await setup(t);
  const pair = await ptyPair(t);
  const node = await addNode(h, token, '52:54:00:00:20:01', { console: 'serial', console_device: pair.device, console_baud: '9600' });
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  t.regex(execFileSync('stty', ['-F', pair.device]).toString(), /speed 9600 baud/, 'the line runs at console_baud');

  const ws = await openConsole(t, h, node, { authorization: `Bearer ${token}` });
  await pair.write('BIOS POST ok\r\nkeel-node login: ');
  await ws.waitFor('keel-node login: ', WAIT_MS);
  const logged = await consoleUntil(h, token, node, (c) => c.output.includes('keel-node login: '), 'showed the login prompt');
  t.is(logged.kind, 'serial');
  t.true(logged.output.includes('BIOS POST ok\r\nkeel-node login: '));

  ws.send('root\r');
  await until(() => pair.received().toString().includes('root\r'), 'keystrokes on the machine end');
  t.is(pair.received().toString(), 'root\r', 'the machine got exactly what was typed');

  // Exact bytes, including ones that are not UTF-8.
  const binary = Buffer.from([0xff, 0x00, 0x1b, 0x5b, 0x41]);
  await pair.write(binary);
  await until(() => ws.received().subarray(-5).equals(binary), 'raw bytes on the WebSocket');
  const exact = await consoleUntil(h, token, node, (c) => Buffer.from(c.output, 'base64').subarray(-5).equals(binary), 'stored the raw bytes', '?encoding=base64');
  t.is(exact.encoding, 'base64');
  t.true(Buffer.from(exact.output, 'base64').equals(Buffer.concat([Buffer.from('BIOS POST ok\r\nkeel-node login: '), binary])));
  const small = await getConsole(h, token, node, '?kib=1&encoding=base64');
  t.true(Buffer.from(small.output, 'base64').length <= 1024);
  t.is((await h.call('GET', `/node/${node}/console?kib=0`, { token })).status, 400);
  t.is((await h.call('GET', `/node/${node}/console?encoding=hex`, { token })).status, 400);

  // Capture stops when the node no longer asks for it: the WebSocket is closed, the log stays.
  await h.call('PATCH', `/node/${node}`, { token, body: { attributes: { console: 'none' } } });
  t.is(await Promise.race([ws.closed, new Promise<number>((r) => setTimeout(() => r(-1), WAIT_MS))]), 1001);
  const after = await getConsole(h, token, node);
  t.is(after.kind, 'none');
  t.true(after.output.includes('keel-node login: '));
});

test('WebSocket console: a missing, bad or insufficient token is refused before the upgrade', async (t) => {
  const { h, token } = await setup(t);
  const pair = await ptyPair(t);
  const node = await addNode(h, token, '52:54:00:00:20:02', { console: 'serial', console_device: pair.device });
  const plain = await addNode(h, token, '52:54:00:00:20:03', {});
  await h.call('POST', '/admins', { token, body: { name: 'reader', roles: ['role.authuser'], password: 'reader-password' } });
  const reader = (await h.login('reader', 'reader-password')).access_token;
  const url = (id: string, query = '') => `${h.base.replace('http:', 'ws:')}/node/${id}/console${query}`;
  const refused = async (target: string, headers: Record<string, string>) => {
    const result = await connectWs(target, headers);
    if (result.upgraded) {
      result.close();
      return { status: 101, reason: '' };
    }
    return { status: result.status, reason: (JSON.parse(result.body) as { reason: string }).reason };
  };

  t.is((await refused(url(node), {})).status, 401);
  t.is((await refused(url(node), { authorization: 'Bearer not.a.token' })).status, 401);
  t.is((await refused(url(node, '?token=not.a.token'), {})).status, 401);
  const forbidden = await refused(url(node), { authorization: `Bearer ${reader}` });
  t.is(forbidden.status, 403);
  t.regex(forbidden.reason, /role\.poweradmin/);
  t.is((await refused(url('52:54:00:99:99:99'), { authorization: `Bearer ${token}` })).status, 404);
  const noCapture = await refused(url(plain), { authorization: `Bearer ${token}` });
  t.is(noCapture.status, 409);
  t.regex(noCapture.reason, /no console capture/);
  t.is((await h.call('GET', `/node/${node}/console`, { token: reader })).status, 403, 'the log needs poweradmin too');

  // A valid token, in the header or (for browsers) the query: upgraded, and live output flows.
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  const ws = await openConsole(t, h, node, {}, `?token=${encodeURIComponent(token)}`);
  await pair.write('hello websocket\r\n');
  await ws.waitFor('hello websocket', WAIT_MS);
  t.pass();
});

test('the ring log keeps exactly the newest console_ring_kib bytes per node', async (t) => {
  const { h, token } = await setup(t);
  const pair = await ptyPair(t);
  const other = await ptyPair(t);
  const node = await addNode(h, token, '52:54:00:00:20:04', { console: 'serial', console_device: pair.device, console_ring_kib: '4' });
  const neighbour = await addNode(h, token, '52:54:00:00:20:05', { console: 'serial', console_device: other.device, console_ring_kib: '4' });
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  await consoleUntil(h, token, neighbour, (c) => c.connected, 'connected');
  await other.write('neighbour output\r\n');

  let written = '';
  for (let i = 0; i < 300; i++) {
    const line = `line ${String(i).padStart(4, '0')} ${'x'.repeat(30)}\r\n`;
    written += line;
    await pair.write(line);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 30));
  }
  t.true(written.length > 3 * 4096);
  const full = await consoleUntil(h, token, node, (c) => c.output.endsWith('line 0299 ' + 'x'.repeat(30) + '\r\n'), 'showed the last line');
  t.is(full.bytes, 4096, 'exactly the bound');
  t.is(full.stored_bytes, 4096);
  t.is(full.output, written.slice(-4096), 'the newest bytes, in order');
  const neighbourLog = await getConsole(h, token, neighbour);
  t.is(neighbourLog.output, 'neighbour output\r\n', 'other nodes keep their own logs');

  // A deleted node's log goes with it.
  t.is((await h.call('DELETE', `/node/${neighbour}`, { token })).status, 200);
  t.is((await h.call('GET', `/node/${neighbour}/console`, { token })).status, 404);
});

/** The ipmiconsole processes whose argv names this BMC address. */
function ipmiconsolePids(host: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((d) => {
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      return argv[0]?.endsWith('ipmiconsole') && argv.some((a) => a === `--hostname=${host}`) ? [Number(d)] : [];
    } catch {
      return [];
    }
  });
}

test('SOL console against ipmi_sim: output captured and live, keystrokes to the machine, ipmiconsole stopped by PID', async (t) => {
  const { h, token } = await setup(t);
  const pair = await ptyPair(t);
  // FreeIPMI 1.6.10's ipmiconsole cannot reach another port than 623 (getaddrinfo: "Servname not
  // supported for ai_socktype"): a loopback address of this test's own on port 623.
  const host = `127.98.${(process.pid >> 8) & 255}.${(process.pid & 255) || 1}`;
  const sim = await startIpmiSim({ host, port: 623, power: true, solDevice: pair.device });
  t.teardown(() => sim.stop());
  const node = await addNode(h, token, '52:54:00:00:20:06', {
    console: 'sol', ipmi_user: SIM_USER, ipmi_pass: SIM_PASSWORD,
    // ipmi_sim: opensesspriv for the session; without solchannelsupport it segfaults on SOL activation.
    ipmi_workarounds: 'opensesspriv,solchannelsupport,solpayloadsize',
  }, `ipmi://<ipmi_user>:<ipmi_pass>@${host}`);
  await consoleUntil(h, token, node, (c) => c.output.includes('[SOL established]'), 'established SOL');

  const pids = ipmiconsolePids(host);
  t.is(pids.length, 1, 'one ipmiconsole for the node');
  const argv = readFileSync(`/proc/${pids[0]}/cmdline`, 'utf8');
  t.false(argv.includes(SIM_PASSWORD), 'no password in argv');
  t.false(argv.includes(SIM_USER), 'no user name in argv');

  const ws = await openConsole(t, h, node, { authorization: `Bearer ${token}` });
  await pair.write('Linux version 6.1 over SOL\r\n');
  await ws.waitFor('Linux version 6.1 over SOL', WAIT_MS);
  await consoleUntil(h, token, node, (c) => c.output.includes('Linux version 6.1 over SOL'), 'captured SOL output');
  t.is((await getConsole(h, token, node)).kind, 'sol');

  ws.send('uptime & date\r');
  // ipmiconsole's escape character is '&': keel doubles it, so the machine gets it once.
  await until(() => pair.received().toString().includes('uptime & date\r'), 'SOL keystrokes on the machine end');
  t.pass();

  // Capture off: ipmiconsole is stopped by PID.
  await h.call('PATCH', `/node/${node}`, { token, body: { attributes: { console: 'none' } } });
  await until(() => !existsSync(`/proc/${pids[0]}`) || readFileSync(`/proc/${pids[0]}/stat`, 'utf8').includes(') Z '), 'ipmiconsole to exit');
  t.deepEqual(ipmiconsolePids(host), []);
});
