// PUT /node/<UID>/exec against a real OpenSSH server (Debian's openssh-server): the test starts its
// own `sshd -D -f <config>` on a loopback port, with the head's public key in an authorized_keys
// under the test's temp dir (never /root/.ssh), and kills it by pid at teardown. Output, stdin,
// exit status and stderr, a long command streamed, a client that goes away ending the remote
// command, a wrong key, an unreachable node and a silent one, the role, the log, and no private key
// anywhere it must not be.
import test, { type ExecutionContext } from 'ava';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureHeadKey, generateKeyPair } from '../src/ssh/keys.js';
import { freePort } from './helpers/free-port.js';
import { startTestHead, type TestHead } from './helpers/head.js';
import { startSshd, waitFor, type Sshd } from './helpers/sshd.js';

const MARKER = '\nkeel-exec-status: ';

/** A head, a node at 127.0.0.1 whose SSH port is the test's sshd, and that sshd trusting the head's key. */
async function setup(t: ExecutionContext): Promise<{ h: TestHead; token: string; sshd: Sshd; node: string; headPublic: string }> {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const head = (await h.call('GET', '/cluster', { token })).json.data as { heads: { uid: string; ssh_public: string }[] };
  const headPublic = head.heads[0]!.ssh_public;
  const sshd = await startSshd(t, headPublic);
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const created = await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:00:00:11', attributes: { _ssh_port: String(sshd.port) } } });
  const node = ((await h.call('GET', `/node/${created.json.data as string}`, { token })).json.data as { name: string; ip: string });
  t.is(node.ip, '127.0.0.1');
  return { h, token, sshd, node: node.name, headPublic };
}

function exec(h: TestHead, token: string, node: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${h.base}/node/${node}/exec`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
}

/** The body split at the last status marker: the command's stdout and keel's status record. */
function split(body: string): { stdout: string; status: { exit: number | null; signal: string | null; stderr: string; stderr_truncated: boolean } } {
  const at = body.lastIndexOf(MARKER);
  if (at < 0) throw new Error(`no status line in ${JSON.stringify(body)}`);
  return { stdout: body.slice(0, at), status: JSON.parse(body.slice(at + MARKER.length)) as never };
}

test('output, stderr and exit status; stdin; raw octet-stream', async (t) => {
  const { h, token, node } = await setup(t);
  const res = await exec(h, token, node, { cmd: 'echo hello; echo oops >&2; id -un; exit 3' });
  t.is(res.status, 200);
  t.is(res.headers.get('content-type'), 'application/octet-stream');
  const { stdout, status } = split(await res.text());
  t.is(stdout, 'hello\nroot\n', 'as root, stdout only');
  t.deepEqual(status, { exit: 3, signal: null, stderr: 'oops\n', stderr_truncated: false });
  const withInput = await exec(h, token, node, { cmd: 'tr a-z A-Z', stdin: 'abc\nxyz\n' });
  t.deepEqual(split(await withInput.text()), { stdout: 'ABC\nXYZ\n', status: { exit: 0, signal: null, stderr: '', stderr_truncated: false } });
  // Binary output comes through byte for byte.
  const binary = await exec(h, token, node, { cmd: 'printf "\\000\\001\\377"' });
  t.deepEqual([...Buffer.from(await binary.arrayBuffer()).subarray(0, 3)], [0, 1, 255]);
  // Logged: who, node, command, exit, duration.
  const headUid = ((await h.call('GET', '/cluster', { token })).json.data as { heads: { uid: string }[] }).heads[0]!.uid;
  const log = (await h.call('GET', `/cluster/head/${headUid}/log?lines=1000`, { token })).json.data as { lines: Record<string, unknown>[] };
  const entry = log.lines.find((e) => e.msg === 'node exec' && e.exit === 3);
  t.like(entry, { who: 'admin', node, cmd: 'echo hello; echo oops >&2; id -un; exit 3', exit: 3, cancelled: false });
  t.is(typeof entry?.duration_ms, 'number');
});

test('a long command is streamed as it runs', async (t) => {
  const { h, token, node } = await setup(t);
  const started = Date.now();
  const res = await exec(h, token, node, { cmd: 'for i in 1 2 3; do echo line$i; sleep 1; done' });
  const reader = res.body!.getReader();
  const first = await reader.read();
  const firstAt = Date.now() - started;
  t.is(Buffer.from(first.value!).toString(), 'line1\n');
  let rest = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += Buffer.from(value).toString();
  }
  const total = Date.now() - started;
  // The command prints line1 at once and ends two seconds later: streamed, line1 came long before the end.
  t.true(total - firstAt >= 1500, `first line after ${firstAt} ms, whole run ${total} ms`);
  t.deepEqual(split(`line1\n${rest}`), { stdout: 'line1\nline2\nline3\n', status: { exit: 0, signal: null, stderr: '', stderr_truncated: false } });
});

test('a client that goes away ends the remote command', async (t) => {
  const { h, token, node, sshd } = await setup(t);
  const pidFile = join(sshd.dir, 'remote.pid');
  const abort = new AbortController();
  const res = await exec(h, token, node, { cmd: `echo $$ > ${pidFile}; echo started; exec sleep 600` }, abort.signal);
  const reader = res.body!.getReader();
  t.is(Buffer.from((await reader.read()).value!).toString(), 'started\n');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.true(existsSync(`/proc/${pid}`), 'running');
  abort.abort();
  await reader.cancel().catch(() => undefined);
  await waitFor(`remote pid ${pid} to end`, () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z', 10_000);
  t.pass();
});

test('a wrong key, a closed port and a silent node fail with the node and the step', async (t) => {
  const { h, token, node, sshd } = await setup(t);
  writeFileSync(sshd.authorizedKeys, `${generateKeyPair('ed25519', 'another').public}\n`);
  const wrongKey = await exec(h, token, node, { cmd: 'true' });
  t.is(wrongKey.status, 502);
  t.is(((await wrongKey.json()) as { reason: string }).reason, `Node ${node}: authenticate failed: the node refused the key for root`);

  const closed = await freePort();
  t.is((await h.call('PATCH', `/node/${node}/attributes`, { token, body: { _ssh_port: String(closed) } })).status, 200);
  const refused = await exec(h, token, node, { cmd: 'true' });
  t.is(refused.status, 502);
  t.regex(((await refused.json()) as { reason: string }).reason, new RegExp(`^Node ${node}: connect failed: 127\\.0\\.0\\.1:${closed}: connect ECONNREFUSED`));

  // Accepts TCP, never says a word of SSH.
  const silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => silent.close());
  const port = (silent.address() as { port: number }).port;
  t.is((await h.call('PATCH', `/node/${node}/attributes`, { token, body: { _ssh_port: String(port) } })).status, 200);
  const started = Date.now();
  const mute = await exec(h, token, node, { cmd: 'true', timeout: 1 });
  const took = Date.now() - started;
  t.is(mute.status, 502);
  t.is(((await mute.json()) as { reason: string }).reason, `Node ${node}: handshake failed: no answer within 1 s`);
  t.true(took < 3000, `${took} ms`);
  t.is((await h.call('PUT', `/node/${node}/exec`, { token, body: { cmd: 'true', timeout: 0 } })).status, 400);
  t.is((await h.call('PUT', `/node/${node}/exec`, { token, body: {} })).json.reason, "Missing required field 'cmd'");
});

test('exec needs a full admin; no private key in the data dir, the log or a command line', async (t) => {
  const { h, token, node, sshd } = await setup(t);
  await h.call('POST', '/admins', { token, body: { name: 'reader', roles: ['role.authuser'], password: 'reader-password' } });
  const reader = (await h.login('reader', 'reader-password')).access_token;
  t.is((await exec(h, reader, node, { cmd: 'true' })).status, 403);
  t.is((await exec(h, '', node, { cmd: 'true' })).status, 401);

  // A run, and a generated pair, so that both private keys could have leaked somewhere.
  t.is(split(await (await exec(h, token, node, { cmd: 'echo ok' })).text()).status.exit, 0);
  const generated = (await h.call('GET', '/sshkey?algorithm=ed25519', { token })).json.data as { private: string };
  const keyFile = join(h.dataDir, 'ssh', 'head_ed25519');
  t.is(statSync(keyFile).mode & 0o777, 0o600);
  const headPrivate = readFileSync(keyFile, 'utf8');
  // The full lines of each key's base64 body after the first (which every OpenSSH key shares):
  // what any copy of the key would contain.
  const secrets = [headPrivate, generated.private].flatMap((key) => key.split('\n').slice(2).filter((line) => line.length === 64));
  t.true(secrets.length >= 4, `${secrets.length} lines`);
  const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
  const leaks = files(h.dataDir).filter((file) => file !== keyFile).filter((file) => {
    const bytes = readFileSync(file);
    return secrets.some((s) => bytes.includes(s));
  });
  t.deepEqual(leaks, []);
  const headUid = ((await h.call('GET', '/cluster', { token })).json.data as { heads: { uid: string }[] }).heads[0]!.uid;
  const log = JSON.stringify((await h.call('GET', `/cluster/head/${headUid}/log?lines=10000`, { token })).json.data);
  t.true(log.includes('node exec'), 'the log was read');
  for (const secret of secrets) t.false(log.includes(secret));
  for (const pid of [process.pid, sshd.pid]) {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    for (const secret of secrets) t.false(cmdline.includes(secret), `/proc/${pid}/cmdline`);
  }
});

test('PUT /localnodes/<id>/script runs with the key sent, which is kept nowhere', async (t) => {
  const { h, token, sshd, node } = await setup(t);
  // Spec 004's flow: a generated pair, its public key on the machine, the machine registered.
  const pair = (await h.call('GET', '/sshkey?algorithm=ecdsa', { token })).json.data as { public: string; private: string };
  writeFileSync(sshd.authorizedKeys, `${pair.public}\n`);
  t.is((await fetch(`${h.base}/localnodes?ip=127.0.0.1&artifactId=a&pingable=true`, { method: 'POST' })).status, 200);
  t.is((await h.call('PATCH', '/localnodes/1', { token, body: { ssh_port: sshd.port } })).status, 200);
  const script = 'echo joined\nid -un\necho warn >&2\n';
  const res = await fetch(`${h.base}/localnodes/1/script`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ script, privateKey: pair.private }) });
  t.is(res.status, 200);
  t.deepEqual(split(await res.text()), { stdout: 'joined\nroot\n', status: { exit: 0, signal: null, stderr: 'warn\n', stderr_truncated: false } });
  // The head's own key is not what got in: this machine trusts only the key sent.
  t.is((await exec(h, token, node, { cmd: 'true' })).status, 502);
  const refused = await h.call('PUT', '/localnodes/1/script', { token, body: { script, privateKey: pair.public } });
  t.is(refused.status, 400);
  t.regex(refused.json.reason!, /not an unencrypted private key/);
  const secrets = pair.private.split('\n').slice(2).filter((line) => line.length === 64);
  t.true(secrets.length >= 2);
  const headUid = ((await h.call('GET', '/cluster', { token })).json.data as { heads: { uid: string }[] }).heads[0]!.uid;
  const log = JSON.stringify((await h.call('GET', `/cluster/head/${headUid}/log?lines=10000`, { token })).json.data);
  t.true(log.includes('"script_bytes":'), 'the run was logged');
  for (const secret of secrets) t.false(log.includes(secret));
  const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
  t.deepEqual(files(h.dataDir).filter((file) => secrets.some((s) => readFileSync(file).includes(s))), []);
});

test('the head key is made once and kept: the same pair after a restart', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-headkey-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = ensureHeadKey(dir, 'h1');
  const again = ensureHeadKey(dir, 'h1');
  t.is(again.public, first.public);
  t.deepEqual(again.privateKey(), first.privateKey());
  t.regex(first.public, /^ssh-ed25519 \S+ keel@h1$/);
  t.is(statSync(join(dir, 'ssh')).mode & 0o777, 0o700);
  t.is(statSync(first.path).mode & 0o777, 0o600);
  t.deepEqual(readdirSync(join(dir, 'ssh')).sort(), ['head_ed25519', 'head_ed25519.pub'], 'no temporary file left');
});
