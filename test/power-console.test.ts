// Serial consoles through the API: capture from a local serial line (a socat pty pair) and from
// IPMI SOL (ipmiconsole against ipmi_sim, whose SOL device is a pty pair or a telnet connection to
// the test), the log in GET /node/<id>/console, the live WebSocket (with and without a valid
// token), keystrokes back to the machine, the ring bound, a serial line's reopen after its far end
// went away, the line settings (termios ioctls seen with strace, read back with stty) and BREAK
// (REST and WebSocket; seen by the machine through ipmi_sim's telnet SOL, and as the
// TIOCSBRK/TIOCCBRK ioctls on a serial line: a pty cannot carry a break). Every process (socat,
// ipmi_sim, ipmiconsole, strace) is stopped by PID.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
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
  const h = await startTestHead(t, { KEEL_CONSOLE_DEVICE_PATTERNS: join(tmpdir(), 'keel-pty-*', 'device-*') });
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

/** socat joining two ptys at fixed link paths (so a second one can stand in for the first); killed by PID. */
async function socatAt(t: ExecutionContext, machine: string, device: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn('socat', [`pty,raw,echo=0,link=${machine}`, `pty,raw,echo=0,link=${device}`], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGTERM');
      await exited;
    }
  };
  t.teardown(stop);
  await until(() => existsSync(machine) && existsSync(device), 'socat to make its ptys');
  return { stop };
}

test('serial line whose far end goes away (socat killed) is reported and reopened when the device is back', async (t) => {
  const { h, token } = await setup(t);
  const dir = mkdtempSync(join(tmpdir(), 'keel-pty-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const machine = join(dir, 'machine');
  const device = join(dir, 'device-reopen');
  const first = await socatAt(t, machine, device);
  const node = await addNode(h, token, '52:54:00:00:20:0c', { console: 'serial', console_device: device });
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  writeFileSync(machine, 'before\r\n');
  await consoleUntil(h, token, node, (c) => c.output.includes('before'), 'captured');

  await first.stop();
  const down = await consoleUntil(h, token, node, (c) => !c.connected && c.output.includes('; retrying]'), 'noticed the line going');
  t.true(down.reason!.startsWith(device), down.reason);
  await socatAt(t, machine, device);
  await consoleUntil(h, token, node, (c) => c.connected, 'reconnected');
  writeFileSync(machine, 'after\r\n');
  const back = await consoleUntil(h, token, node, (c) => c.output.includes('after'), 'captured after the reconnect');
  t.regex(back.output, /before\r\n[\s\S]*\[keel: console line .*; retrying\][\s\S]*after\r\n/);
});

// Serial: strace attaches to this process, and a process has one tracer at a time.
test.serial('serial line settings: baud, data bits, parity, stop bits and flow control set on the line, bad values refused on write', async (t) => {
  const { h, token } = await setup(t);
  const pair = await ptyPair(t);
  const pts = realpathSync(pair.device);
  const strace = await straceIoctls(t);
  const node = await addNode(h, token, '52:54:00:00:20:07', {
    console: 'serial', console_device: pair.device, console_baud: '19200', console_data_bits: '7', console_parity: 'even', console_stop_bits: '2', console_flow: 'rtscts',
  });
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  const trace = await strace.stop();
  // What keel asked of the kernel: a pty keeps the speed, stop bits and flow control (stty below)
  // but forces CS8 without parity (Linux pty_set_termios), so data bits and parity show only here.
  const sets = trace.split('\n').filter((line) => line.includes(`<${pts}>`) && /TCSETS/.test(line));
  t.true(sets.some((line) => /c_cflag=[^,]*\bCS7\b/.test(line) && /c_cflag=[^,]*\bPARENB\b/.test(line) && /c_cflag=[^,]*\bCSTOPB\b/.test(line) && /c_cflag=[^,]*\bCRTSCTS\b/.test(line)),
    `termios with CS7|PARENB|CSTOPB|CRTSCTS written to ${pts}:\n${sets.join('\n')}`);
  t.true(sets.some((line) => /c_cflag=B19200\b/.test(line)), 'B19200 written');
  const stty = execFileSync('stty', ['-a', '-F', pair.device]).toString();
  t.regex(stty, /speed 19200 baud/);
  for (const flag of ['cstopb', 'crtscts', '-ixon', '-ixoff', '-hupcl', 'clocal', '-icanon', '-echo', '-opost']) t.regex(stty, new RegExp(`(^|\\s)${flag}(\\s|$)`, 'm'), flag);

  // A changed setting reopens the line with it (PATCH replaces the attribute map).
  const changed = { console: 'serial', console_device: pair.device, console_baud: '57600', console_flow: 'xonxoff' };
  t.is((await h.call('PATCH', `/node/${node}`, { token, body: { attributes: changed } })).status, 200);
  let after = '';
  await until(() => {
    after = execFileSync('stty', ['-a', '-F', pair.device]).toString();
    return /speed 57600 baud/.test(after);
  }, 'the line reopened at 57600 baud');
  await consoleUntil(h, token, node, (c) => c.connected, 'connected again');
  after = execFileSync('stty', ['-a', '-F', pair.device]).toString();
  for (const flag of ['ixon', 'ixoff', '-cstopb', '-crtscts']) t.regex(after, new RegExp(`(^|\\s)${flag}(\\s|$)`, 'm'), flag);
  // Still a working line, both ways.
  await pair.write('after reopen\r\n');
  await consoleUntil(h, token, node, (c) => c.output.includes('after reopen'), 'captured after the reopen');

  for (const [key, value, reason] of [
    ['console_parity', 'mark', /console_parity must be one of none, even, odd, got 'mark'/],
    ['console_baud', '12345', /console_baud must be one of 1200, .*921600, got '12345'/],
    ['console_data_bits', '9', /console_data_bits must be one of 5, 6, 7, 8/],
    ['console_stop_bits', '1.5', /console_stop_bits must be one of 1, 2/],
    ['console_flow', 'dtrdsr', /console_flow must be one of none, rtscts, xonxoff/],
    ['console_ring_kib', '2', /console_ring_kib must be an integer 4\.\.65536/],
  ] as const) {
    const refused = await h.call('PATCH', `/node/${node}`, { token, body: { attributes: { ...changed, [key]: value } } });
    t.is(refused.status, 400, key);
    t.regex(refused.json.reason ?? '', reason);
  }
  const refusedNode = await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:00:20:08', attributes: { console: 'serial', console_device: pair.device, console_parity: 'space' } } });
  t.is(refusedNode.status, 400);
});

/** strace on this process (the head runs in it), tracing ioctl on every thread: the binding's calls run on libuv's threadpool. */
async function straceIoctls(t: ExecutionContext): Promise<{ stop(): Promise<string> }> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-strace-'));
  const out = join(dir, 'trace');
  const child = spawn('strace', ['-f', '-tt', '-v', '-y', '-e', 'trace=ioctl', '-o', out, '-p', String(process.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid!, 'SIGINT');
      await exited;
    }
    const trace = existsSync(out) ? readFileSync(out, 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    return trace;
  };
  t.teardown(stop);
  await until(() => /Process \d+ attached/.test(stderr) || child.exitCode !== null, 'strace to attach');
  if (child.exitCode !== null) throw new Error(`strace failed: ${stderr}`);
  // Attaching to every thread is reported thread by thread; give it a moment to finish.
  await new Promise((r) => setTimeout(r, 300));
  return { stop };
}

const clock = (line: string) => {
  const [h, m, s] = line.split(/\s+/)[1]!.split(':').map(Number);
  return ((h! * 60 + m!) * 60 + s!) * 1000;
};

test.serial('serial BREAK: the binding holds the line in BREAK for duration_ms (TIOCSBRK … TIOCCBRK); a pty refuses the modem lines, which is reported', async (t) => {
  const { h, token } = await setup(t);
  const pair = await ptyPair(t);
  const node = await addNode(h, token, '52:54:00:00:20:09', { console: 'serial', console_device: pair.device });
  const plain = await addNode(h, token, '52:54:00:00:20:0a', {});
  await consoleUntil(h, token, node, (c) => c.connected, 'connected');
  const pts = realpathSync(pair.device);

  const strace = await straceIoctls(t);
  const sent = await h.call('POST', `/node/${node}/console/break`, { token, body: { duration_ms: 400 } });
  const trace = await strace.stop();
  const onDevice = trace.split('\n').filter((line) => line.includes(`<${pts}>`));
  const setBreak = onDevice.find((line) => /ioctl\(\d+<[^>]+>, TIOCSBRK\) = 0/.test(line));
  const clearBreak = onDevice.find((line) => /ioctl\(\d+<[^>]+>, TIOCCBRK\) = 0/.test(line));
  t.truthy(setBreak, `TIOCSBRK on ${pts}:\n${onDevice.join('\n')}`);
  t.truthy(clearBreak, `TIOCCBRK on ${pts}:\n${onDevice.join('\n')}`);
  const heldMs = clock(clearBreak!) - clock(setBreak!);
  t.true(heldMs >= 390 && heldMs < 2000, `BREAK held ${heldMs} ms`);
  // Measured: a pty takes TIOCSBRK/TIOCCBRK (and does nothing with them) but refuses TIOCMSET, which
  // the binding issues in the same call to keep DTR and RTS up.
  t.true(onDevice.some((line) => /TIOCMSET.*= -1 ENOTTY/.test(line)), 'a pty refuses the modem lines');
  t.is(sent.status, 502);
  t.regex(sent.json.reason ?? '', /^break not sent: .*Inappropriate ioctl for device/);
  const log = await consoleUntil(h, token, node, (c) => c.output.includes('[keel: BREAK from admin not sent: '), 'noted the failed BREAK');
  t.regex(log.output, /\[keel: BREAK from admin not sent: .*Inappropriate ioctl for device.*\]/);

  // The WebSocket's control message takes the same path; a bad one is answered, not typed.
  const ws = await openConsole(t, h, node, { authorization: `Bearer ${token}` });
  ws.send(JSON.stringify({ type: 'break', duration_ms: 20 }));
  await ws.waitFor('"type":"break","ok":false,"reason":"break not sent:', WAIT_MS);
  ws.send(JSON.stringify({ type: 'break', duration_ms: 60_000 }));
  await ws.waitFor('duration_ms must be an integer 10..5000', WAIT_MS);
  ws.send(JSON.stringify({ type: 'reboot' }));
  await ws.waitFor(`unknown control message type 'reboot'`, WAIT_MS);
  // The same text as a binary message is keystrokes.
  ws.send(Buffer.from(JSON.stringify({ type: 'break' })));
  await until(() => pair.received().toString().includes('{"type":"break"}'), 'the binary message typed on the line');
  t.is(pair.received().toString(), '{"type":"break"}', 'no control message reached the line');

  t.is((await h.call('POST', `/node/${node}/console/break`, { token, body: { duration_ms: 1 } })).status, 400);
  t.is((await h.call('POST', `/node/${node}/console/break`, { token, body: { duration_ms: 'long' } })).status, 400);
  const none = await h.call('POST', `/node/${plain}/console/break`, { token });
  t.is(none.status, 409);
  t.regex(none.json.reason ?? '', /no console capture/);
  await h.call('POST', '/admins', { token, body: { name: 'reader', roles: ['role.authuser'], password: 'reader-password' } });
  const reader = (await h.login('reader', 'reader-password')).access_token;
  t.is((await h.call('POST', `/node/${node}/console/break`, { token: reader })).status, 403);
});

interface TelnetMachine {
  port: number;
  /** What the machine received, in order: data bytes (telnet IAC IAC unescaped) and BREAKs (IAC BRK). */
  events(): (string | 'BREAK')[];
  /** Console output from the machine. */
  write(text: string): void;
  close(): Promise<void>;
}

const IAC = 255;
const BRK = 243;

/**
 * The machine end of ipmi_sim's `sol "telnet:host:port"`: ipmi_sim connects here, passes SOL
 * keystrokes as telnet data and a SOL break as IAC BRK (OpenIPMI lanserv/sol.c, sol_tcp_send_break),
 * which a pty could not carry.
 */
async function startTelnetMachine(t: ExecutionContext): Promise<TelnetMachine> {
  const received: (string | 'BREAK')[] = [];
  let socket: Socket | undefined;
  let state: 'data' | 'iac' | 'option' | 'sub' | 'sub-iac' = 'data';
  const push = (byte: number) => {
    const last = received[received.length - 1];
    const ch = String.fromCharCode(byte);
    if (typeof last === 'string' && last !== 'BREAK') received[received.length - 1] = last + ch;
    else received.push(ch);
  };
  const server = createServer((s) => {
    socket = s;
    s.on('error', () => undefined);
    s.on('data', (chunk: Buffer) => {
      for (const byte of chunk) {
        switch (state) {
          case 'data':
            if (byte === IAC) state = 'iac';
            else push(byte);
            break;
          case 'iac':
            if (byte === IAC) push(byte);
            if (byte === BRK) received.push('BREAK');
            state = byte >= 251 && byte <= 254 ? 'option' : byte === 250 ? 'sub' : 'data';
            break;
          case 'option':
            state = 'data';
            break;
          case 'sub':
            if (byte === IAC) state = 'sub-iac';
            break;
          case 'sub-iac':
            state = byte === 240 ? 'data' : 'sub';
            break;
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    socket?.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.teardown(close);
  return {
    port: (server.address() as AddressInfo).port,
    events: () => [...received],
    write: (text) => socket?.write(text),
    close,
  };
}

test('SOL BREAK against ipmi_sim: the BMC sends the break to the machine, a typed & still arrives as &', async (t) => {
  const { h, token } = await setup(t);
  const machine = await startTelnetMachine(t);
  // Port 623 on a loopback address of this test's own (see the SOL test above), distinct from it.
  const host = `127.97.${(process.pid >> 8) & 255}.${(process.pid & 255) || 1}`;
  const sim = await startIpmiSim({ host, port: 623, power: true, solDevice: `telnet:127.0.0.1:${machine.port}` });
  t.teardown(() => sim.stop());
  const node = await addNode(h, token, '52:54:00:00:20:0b', {
    console: 'sol', ipmi_user: SIM_USER, ipmi_pass: SIM_PASSWORD, ipmi_workarounds: 'opensesspriv,solchannelsupport,solpayloadsize',
  }, `ipmi://<ipmi_user>:<ipmi_pass>@${host}`);
  await consoleUntil(h, token, node, (c) => c.output.includes('[SOL established]'), 'established SOL');
  const ws = await openConsole(t, h, node, { authorization: `Bearer ${token}` });
  machine.write('login: ');
  await ws.waitFor('login: ', WAIT_MS);

  // Magic SysRq as an operator types it: BREAK, then the command key.
  ws.send('a & b\r');
  await until(() => machine.events().join('').includes('a & b\r'), 'keystrokes at the machine');
  const sent = await h.call('POST', `/node/${node}/console/break`, { token });
  t.is(sent.status, 200, JSON.stringify(sent.json));
  t.like(sent.json.data as object, { sent: true, kind: 'sol' });
  ws.send('t');
  await until(() => machine.events().includes('BREAK') && machine.events()[machine.events().length - 1] === 't', 'the BREAK and the SysRq key at the machine');
  t.deepEqual(machine.events(), ['a & b\r', 'BREAK', 't'], 'the user\'s & arrives as &, the BREAK as a break, in order');

  // From the WebSocket: the control message, answered in a text message. ipmi_sim queues a break
  // alone and writes it out with the next keystroke (it enables writing only for SOL data), as a
  // SysRq sequence always has one.
  ws.send(JSON.stringify({ type: 'break' }));
  await ws.waitFor('{"type":"break","ok":true', WAIT_MS);
  ws.send('h');
  await until(() => machine.events().length === 5, 'the second BREAK and its key');
  t.deepEqual(machine.events(), ['a & b\r', 'BREAK', 't', 'BREAK', 'h']);
  const log = await getConsole(h, token, node);
  t.is(log.output.split('[keel: BREAK from admin]').length - 1, 2, 'both BREAKs noted in the log');
});
