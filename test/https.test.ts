// HTTPS for the API (docs/security.md, "HTTPS"): the CA and server certificate made at first start,
// checked by real clients (curl with and without --cacert, Node's fetch, a wss:// console), the CA
// published at /cluster/cabundle, kept across a kill -9 and a restart, re-issued when the names
// change or the expiry nears, configured certificates served as given and refused with a clear
// reason when unusable, and the boot path left on plain HTTP.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { Agent, fetch as undiciFetch, WebSocket } from 'undici';
import { loadConfig } from '../src/config.js';
import { CA_CERT_FILE, ensureTlsCertificates, serverNames, TLS_DIR, type TlsCertificates } from '../src/http/tls.js';
import { RecentLog } from '../src/log.js';
import { startHead } from '../src/serve.js';
import { freePort } from './helpers/free-port.js';
import { startTestHead, type TestHead } from './helpers/head.js';
import { serveKeel } from './helpers/keel-serve.js';

const run = promisify(execFile);
const WAIT_MS = 30_000;

async function httpsHead(t: ExecutionContext, env: Record<string, string> = {}): Promise<{ h: TestHead; port: number; ca: string; https: string }> {
  const port = await freePort();
  const h = await startTestHead(t, { KEEL_HTTPS_ENABLED: 'true', KEEL_HTTPS_PORT: String(port), ...env });
  return { h, port, ca: join(h.dataDir, TLS_DIR, CA_CERT_FILE), https: `https://127.0.0.1:${port}/api/v1` };
}

/** curl as a user runs it: its exit code (0, or 60 for a certificate it cannot verify), status and body. */
async function curl(url: string, ...args: string[]): Promise<{ code: number; status: number; body: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', ...args, url]);
    const cut = stdout.lastIndexOf('\n');
    return { code: 0, status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut), stderr };
  } catch (err) {
    const failed = err as { code: number; stderr: string };
    return { code: failed.code, status: 0, body: '', stderr: failed.stderr };
  }
}

/** The certificate a TLS server presents on 127.0.0.1:port (not verified: the test checks it). */
function peerCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (cert) resolve(cert);
      else reject(new Error('no peer certificate'));
    });
    socket.once('error', reject);
  });
}

const trusting = (caPem: string) => new Agent({ connect: { ca: [...rootCertificates, caPem] } });

test('first start makes a CA and a server certificate: curl and fetch verify it with the CA and refuse it without; /cluster/cabundle and the head give the CA', async (t) => {
  const { h, port, ca, https } = await httpsHead(t);
  const tlsDir = join(h.dataDir, TLS_DIR);
  t.is(statSync(join(tlsDir, 'ca.key')).mode & 0o777, 0o600, 'the CA key is the owner\'s alone');
  t.is(statSync(join(tlsDir, 'server.key')).mode & 0o777, 0o600);
  t.is(statSync(tlsDir).mode & 0o777, 0o700);

  // curl, a real TLS peer: with the CA, by address and by name; without it, refused (60: peer certificate cannot be authenticated).
  const verified = await curl(`${https}/cluster/time`, '--cacert', ca);
  t.is(verified.code, 0, verified.stderr);
  t.is(verified.status, 200);
  t.true((JSON.parse(verified.body) as { success: boolean }).success);
  const byName = await curl(`https://localhost:${port}/api/v1/cluster/time`, '--cacert', ca);
  t.is(byName.status, 200, byName.stderr);
  const unverified = await curl(`${https}/cluster/time`);
  t.is(unverified.code, 60, unverified.stderr);

  // Node's fetch: the same.
  const caPem = readFileSync(ca, 'utf8');
  const login = await undiciFetch(`${https}/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass: 'initial-secret-pw' }), dispatcher: trusting(caPem) });
  t.is(login.status, 200);
  const refused = await fetch(`${https}/cluster/time`).then(() => undefined, (err: Error & { cause?: { code?: string } }) => err.cause?.code);
  t.is(refused, 'SELF_SIGNED_CERT_IN_CHAIN');

  // The cabundle (fetched over the verified channel) is the CA, and it verifies what the listener serves.
  const bundle = (await (await undiciFetch(`${https}/cluster/cabundle`, { dispatcher: trusting(caPem) })).json()) as { data: { pem: string; certificates: { sha256_fingerprint: string; subject: string }[] } };
  t.is(bundle.data.pem, caPem);
  const caCert = new X509Certificate(bundle.data.pem);
  t.is(bundle.data.certificates.length, 1);
  t.is(bundle.data.certificates[0]!.sha256_fingerprint, caCert.fingerprint256);
  t.regex(bundle.data.certificates[0]!.subject, /CN=keel CA head-test/);
  const served = await peerCertificate(port);
  t.true(served.verify(caCert.publicKey), 'the served certificate is signed by the published CA');
  t.is(served.checkIP('127.0.0.1'), '127.0.0.1');
  t.is(served.checkHost('head-test'), 'head-test');
  t.is(served.checkHost('localhost'), 'localhost');

  // Spec 003's ca_pem on the head object; the plain HTTP port still serves the API.
  const { access_token: token } = await h.login();
  const head = await h.call('GET', '/cluster/head/head-test', { token });
  t.is((head.json.data as { ca_pem?: string }).ca_pem, caPem);
  t.is((head.json.data as { https_port?: number }).https_port, port);
});

test('a wss:// console connects through the HTTPS port', async (t) => {
  const { h, port, ca } = await httpsHead(t);
  const { access_token: token } = await h.login();
  // A terminal server on loopback as the node's console line.
  let line: Socket | undefined;
  let typed = '';
  const terminal = createServer((socket) => {
    line = socket;
    socket.on('data', (chunk: Buffer) => (typed += chunk.toString()));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => terminal.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    line?.destroy();
    terminal.close();
  });
  const created = await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:00:24:15', attributes: { console: 'tcp', console_address: `127.0.0.1:${(terminal.address() as AddressInfo).port}` } } });
  t.is(created.status, 200, JSON.stringify(created.json));
  const node = created.json.data as string;

  const ws = new WebSocket(`wss://127.0.0.1:${port}/api/v1/node/${node}/console?token=${token}`, { dispatcher: trusting(readFileSync(ca, 'utf8')) } as never);
  t.teardown(() => ws.close());
  let received = '';
  ws.binaryType = 'arraybuffer';
  ws.onmessage = (event) => {
    received += typeof event.data === 'string' ? event.data : Buffer.from(event.data as ArrayBuffer).toString();
  };
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve());
    ws.addEventListener('error', () => reject(new Error('wss console refused')));
  });
  const deadline = Date.now() + WAIT_MS;
  while (line === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  line!.write('login: ');
  ws.send('root\r');
  while ((!received.includes('login: ') || !typed.includes('root\r')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.true(received.includes('login: '), `console output over wss: ${JSON.stringify(received)}`);
  t.is(typed, 'root\r', 'keystrokes over wss reach the line');
});

test('the boot path stays plain HTTP while HTTPS is on; a script fetched over HTTPS chains over HTTPS', async (t) => {
  const { h, port, ca } = await httpsHead(t);
  const plain = `http://127.0.0.1:${h.head.httpPort}`;
  const script = await fetch(`${plain}/boot/ipxe?mac=52:54:00:00:24:16`);
  t.is(script.status, 200);
  const text = await script.text();
  t.true(text.startsWith('#!ipxe'), text);
  t.true(text.includes(`chain --replace --autofree ${plain}/boot/ipxe?mac=52:54:00:00:24:16`), text);
  t.false(text.includes('https://'), 'what firmware is told to fetch next is plain HTTP');
  const cabundle = await h.call('GET', '/cluster/cabundle');
  t.is(cabundle.status, 200, 'the CA can be fetched over plain HTTP too, to be checked against the fingerprint keel logs');
  // An iPXE that trusts keel's CA and fetched its script over HTTPS stays on HTTPS.
  const secure = await undiciFetch(`https://127.0.0.1:${port}/boot/ipxe?mac=52:54:00:00:24:16`, { dispatcher: trusting(readFileSync(ca, 'utf8')) });
  t.true((await secure.text()).includes(`chain --replace --autofree https://127.0.0.1:${port}/boot/ipxe?mac=52:54:00:00:24:16`));
});

test('the CA and the server certificate survive kill -9 and a restart; new names re-issue the server certificate under the same CA', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-https-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const env = { KEEL_HTTPS_ENABLED: 'true', KEEL_HTTPS_PORT: String(port) };
  const caFile = join(dataDir, TLS_DIR, CA_CERT_FILE);
  const servedBy = async () => {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      try {
        return await peerCertificate(port);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const first = await serveKeel(t, dataDir, env);
  const firstCert = await servedBy();
  const caPem = readFileSync(caFile, 'utf8');
  await first.kill();

  const second = await serveKeel(t, dataDir, env);
  const secondCert = await servedBy();
  t.is(readFileSync(caFile, 'utf8'), caPem, 'same CA');
  t.is(secondCert.fingerprint256, firstCert.fingerprint256, 'same names, far from expiry: the same server certificate');
  const check = await curl(`https://127.0.0.1:${port}/api/v1/cluster/time`, '--cacert', caFile);
  t.is(check.status, 200, check.stderr);
  await second.kill();

  const third = await serveKeel(t, dataDir, { ...env, KEEL_HTTPS_EXTRA_NAMES: 'boot.example.org,192.0.2.7' });
  const thirdCert = await servedBy();
  t.is(readFileSync(caFile, 'utf8'), caPem, 'same CA');
  t.not(thirdCert.fingerprint256, firstCert.fingerprint256, 're-issued');
  t.is(thirdCert.checkHost('boot.example.org'), 'boot.example.org');
  t.is(thirdCert.checkIP('192.0.2.7'), '192.0.2.7');
  t.true(thirdCert.verify(new X509Certificate(caPem).publicKey));
  await third.kill();
});

test('a server certificate within 30 days of its end is re-issued at start; the CA is kept', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-https-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const names = serverNames({ headName: 'h1', hostname: 'h1', domain: 'cluster.local', addresses: ['127.0.0.1', '::1', 'fe80::1'], extra: [] });
  t.deepEqual(names.map((n) => n.value), ['h1', 'h1.cluster.local', 'localhost', '127.0.0.1', '::1'], 'link-local addresses left out');
  const make = (now: Date) => ensureTlsCertificates({ dataDir, headName: 'h1', names, configured: { certFile: null, keyFile: null, caFile: null }, now });
  const start = new Date();
  const first = await make(start);
  t.is(first.change, 'new-ca');
  const again = await make(new Date(start.getTime() + 700 * 86_400_000));
  t.is(again.change, 'none', '125 days left: kept');
  const renewed = await make(new Date(start.getTime() + 800 * 86_400_000));
  t.is(renewed.change, 'new-server-certificate', '25 days left: re-issued');
  t.is(renewed.caPem, first.caPem);
  t.true(renewed.notAfter.getTime() > first.notAfter.getTime());
});

/** A certificate made for a configured-files test: another head's generated CA and server certificate, copied nowhere. */
async function otherCertificate(t: ExecutionContext): Promise<TlsCertificates & { caFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-https-own-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const names = serverNames({ headName: 'boot-lb', hostname: 'boot-lb', domain: 'example.org', addresses: ['127.0.0.1'], extra: [] });
  const made = await ensureTlsCertificates({ dataDir: dir, headName: 'boot-lb', names, configured: { certFile: null, keyFile: null, caFile: null } });
  return { ...made, caFile: join(dir, TLS_DIR, CA_CERT_FILE) };
}

test('configured certificate, key and CA files are served and published as given; no CA is generated', async (t) => {
  const own = await otherCertificate(t);
  const { h, port, https } = await httpsHead(t, { KEEL_HTTPS_CERT_FILE: own.certFile, KEEL_HTTPS_KEY_FILE: own.keyFile, KEEL_HTTPS_CA_FILE: own.caFile });
  const served = await peerCertificate(port);
  t.is(served.fingerprint256, new X509Certificate(readFileSync(own.certFile)).fingerprint256);
  t.is(served.checkHost('boot-lb.example.org'), 'boot-lb.example.org');
  const check = await curl(`${https}/cluster/cabundle`, '--cacert', own.caFile);
  t.is(check.status, 200, check.stderr);
  t.is((JSON.parse(check.body) as { data: { pem: string } }).data.pem, own.caPem);
  t.throws(() => statSync(join(h.dataDir, TLS_DIR)), { code: 'ENOENT' }, 'nothing generated');
});

test('an unusable configured certificate stops start-up with a reason naming the key and the file', async (t) => {
  const own = await otherCertificate(t);
  const other = await otherCertificate(t);
  const attempt = async (env: Record<string, string>) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'keel-https-bad-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    const config = loadConfig({ env: { KEEL_SERVER_DATA_DIR: dataDir, KEEL_SERVER_BIND: '127.0.0.1', KEEL_BOOT_ASSETS_DIR: '', KEEL_HTTPS_ENABLED: 'true', KEEL_HTTPS_PORT: String(await freePort()), ...env }, file: '/dev/null' });
    const recentLog = new RecentLog();
    const error = await t.throwsAsync(startHead({ config: { ...config, http: { ...config.http, port: 0 }, tftp: { ...config.tftp, port: 0 } }, log: pino({ level: 'silent' }), recentLog }));
    t.throws(() => statSync(join(dataDir, 'data.mdb')), { code: 'ENOENT' }, 'refused before the store was opened');
    return error?.message ?? '';
  };
  t.is(await attempt({ KEEL_HTTPS_CERT_FILE: '/nonexistent/server.pem', KEEL_HTTPS_KEY_FILE: own.keyFile }), 'https.cert_file /nonexistent/server.pem: no such file');
  t.is(await attempt({ KEEL_HTTPS_CERT_FILE: own.certFile, KEEL_HTTPS_KEY_FILE: other.keyFile }), `https.key_file ${other.keyFile} is not the private key of the certificate in https.cert_file ${own.certFile}`);
  t.regex(await attempt({ KEEL_HTTPS_CERT_FILE: own.certFile }), /^https.cert_file and https.key_file go together/);
  t.is(await attempt({ KEEL_HTTPS_CERT_FILE: own.keyFile, KEEL_HTTPS_KEY_FILE: own.keyFile }), `https.cert_file ${own.keyFile}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);

  // `keel serve` prints the reason and exits non-zero.
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-https-bad-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const serve = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--data-dir', dataDir, '--bind', '127.0.0.1', '--http-port', String(await freePort()), '--https-enabled', 'true', '--https-port', String(await freePort())], {
    env: { ...process.env, KEEL_HTTPS_CERT_FILE: '/nonexistent/server.pem', KEEL_HTTPS_KEY_FILE: own.keyFile, KEEL_ADMIN_PASSWORD: 'unused-password' },
    timeout: 60_000,
  }).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
  t.not(serve.code, 0);
  t.true(serve.stderr.includes('https.cert_file /nonexistent/server.pem: no such file'), serve.stderr);
});

test('the CLI trusts a head\'s CA with --ca or $KEEL_CA: login, JSON calls and a streamed upload over HTTPS', async (t) => {
  const { h, port, ca } = await httpsHead(t);
  const dir = mkdtempSync(join(tmpdir(), 'keel-https-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const image = join(dir, 'rootfs.squashfs');
  const content = Buffer.concat([Buffer.from('hsqs'), randomBytes(1024 * 1024)]);
  writeFileSync(image, content);
  const keel = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { env: { ...process.env, KEEL_PASSWORD: 'initial-secret-pw', XDG_CONFIG_HOME: dir, ...env }, timeout: 120_000 })
      .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (err: { code: number; stdout: string; stderr: string }) => err);
  const url = `https://127.0.0.1:${port}`;

  const untrusted = await keel(['image', 'import', image, '--name', 'Secure', '--url', url]);
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /self-signed certificate in certificate chain/);

  const imported = await keel(['image', 'import', image, '--name', 'Secure', '--url', url, '--ca', ca]);
  t.is(imported.code, 0, imported.stderr);
  t.like(JSON.parse(imported.stdout) as object, { name: 'Secure', content: { size: content.length } });
  const replaced = await keel(['image', 'import', image, '--name', 'Secure', '--replace', '--url', url], { KEEL_CA: ca });
  t.is(replaced.code, 0, replaced.stderr);
  const { access_token: token } = await h.login();
  const stored = await fetch(`${h.base}/image/Secure/content`, { headers: { authorization: `Bearer ${token}` } });
  t.deepEqual(Buffer.from(await stored.arrayBuffer()), content);

  const notPem = await keel(['image', 'import', image, '--name', 'Secure', '--url', url, '--ca', image]);
  t.is(notPem.code, 1);
  t.is(notPem.stderr, `--ca ${image}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)\n`);
});
