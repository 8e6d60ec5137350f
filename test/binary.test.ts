// The single binary as a user gets it: dist/keel, built here by ./build.sh (the one SEA build of
// `npm test`), copied alone into an empty directory and run with an environment that has no node:
// PATH is an empty directory (checked: `command -v node` fails in it), no NODE_OPTIONS or
// NODE_PATH, and no node_modules in the directory or any parent (checked). HOME and
// XDG_CACHE_HOME point into the test's directory, so the addon cache starts empty.
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bootLab, startVm } from './dhcp/boot-lab.js';
import { prepareCluster, startKeelInNamespace } from './dhcp/keel-in-netns.js';
import { freePort } from './helpers/free-port.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const work = mkdtempSync(join(tmpdir(), `keel-binary-${process.pid}-`));
const keel = join(work, 'keel');
const emptyBin = join(work, 'bin');
const ADMIN_PASSWORD = 'binary-test-password';

/** The environment of every run: nothing from ours; `cache` is the test's own addon cache. */
function envWith(cache: string): NodeJS.ProcessEnv {
  return { PATH: emptyBin, HOME: work, XDG_CACHE_HOME: cache };
}

test.before(() => {
  const build = spawnSync('./build.sh', { cwd: root, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`./build.sh failed (${build.status ?? build.signal}):\n${build.stdout}\n${build.stderr}`);
  mkdirSync(emptyBin);
  copyFileSync(join(root, 'dist', 'keel'), keel);
  chmodSync(keel, 0o755);
});

test.after.always(() => rmSync(work, { recursive: true, force: true }));

function run(args: string[], cache: string) {
  return spawnSync(keel, args, { cwd: work, env: envWith(cache), encoding: 'utf8', timeout: 30_000 });
}

/** The directory the binary extracted its addons to: <cache>/keel/<build id>. */
function extractedDir(cache: string): string {
  const builds = readdirSync(join(cache, 'keel'));
  if (builds.length !== 1) throw new Error(`expected one build directory in ${cache}/keel, found ${builds.join(', ')}`);
  return join(cache, 'keel', builds[0]!);
}

test('the environment has no node and no node_modules', (t) => {
  const which = spawnSync('/bin/sh', ['-c', 'command -v node'], { env: envWith(join(work, 'unused')), encoding: 'utf8' });
  t.not(which.status, 0, `node found on the test PATH: ${which.stdout}`);
  for (let dir = work; ; dir = dirname(dir)) {
    t.false(existsSync(join(dir, 'node_modules')), `${dir}/node_modules would be reachable`);
    if (dirname(dir) === dir) break;
  }
});

test('keel version prints the version, extracting the addons once into a private cache', (t) => {
  const cache = join(work, 'cache-version');
  const first = run(['version'], cache);
  t.is(first.status, 0, first.stderr);
  t.is(first.stdout.trim(), version);

  const dir = extractedDir(cache);
  t.is(statSync(dir).mode & 0o777, 0o700);
  t.is(statSync(join(cache, 'keel')).mode & 0o777, 0o700);
  const files = readdirSync(dir).sort();
  for (const addon of ['lmdb.node', 'msgpackr-extract.node', 'uws.node']) t.true(files.includes(addon), `${addon} not extracted: ${files.join(', ')}`);
  t.false(files.some((f) => f.endsWith('.tmp')), `temporary files left: ${files.join(', ')}`);

  const inode = statSync(join(dir, 'uws.node')).ino;
  const second = run(['version'], cache);
  t.is(second.status, 0, second.stderr);
  t.is(second.stdout.trim(), version);
  t.is(statSync(join(dir, 'uws.node')).ino, inode, 'the second run rewrote the cached addon');
});

test('keel refuses an addon cache that others can write to', (t) => {
  const cache = join(work, 'cache-open');
  mkdirSync(join(cache, 'keel'), { recursive: true });
  chmodSync(join(cache, 'keel'), 0o777);
  const result = run(['version'], cache);
  t.not(result.status, 0);
  t.regex(result.stderr, /writable by group or others/);
  t.deepEqual(readdirSync(join(cache, 'keel')).flatMap((d) => readdirSync(join(cache, 'keel', d))), [], 'addons were extracted anyway');
});

function exited(child: ChildProcess, ms: number): Promise<number | string | undefined> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode ?? undefined);
    const timer = setTimeout(() => resolve(undefined), ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal ?? undefined);
    });
  });
}

test('keel serve answers the API, stores and lists objects, and exits on SIGTERM', async (t) => {
  const port = await freePort();
  const dataDir = join(work, 'data');
  const child = spawn(keel, ['serve', '--data-dir', dataDir, '--bind', '127.0.0.1', '--http-port', String(port), '--tftp-port', String(port)], {
    cwd: work,
    env: { ...envWith(join(work, 'cache-serve')), KEEL_ADMIN_PASSWORD: ADMIN_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  let response: Response | undefined;
  for (let attempt = 0; attempt < 100 && !response; attempt++) {
    if (child.exitCode !== null) break;
    response = await fetch(`http://127.0.0.1:${port}/api/v1/cluster/time`).catch(() => undefined);
    if (!response) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!response) return t.fail(`no answer from keel serve within 10 s (exit ${child.exitCode}):\n${output}`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /application\/json/);
  const body = (await response.json()) as { success?: unknown };
  t.is(body.success, true);

  // Objects in and out: allocation and listings decode LMDB keys (lmdb-js's ordered-binary, whose
  // string reader the bundle must not break: it once looped forever here, see scripts/bundle.mjs).
  const api = async (method: string, path: string, token?: string, json?: unknown) => {
    const reply = await fetch(`http://127.0.0.1:${port}/api/v1${path}`, {
      method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: json === undefined ? undefined : JSON.stringify(json),
    });
    return { status: reply.status, json: (await reply.json()) as { success: boolean; data?: unknown; reason?: string } };
  };
  const login = await api('POST', '/login', undefined, { user: 'admin', pass: ADMIN_PASSWORD });
  t.is(login.status, 200, JSON.stringify(login.json));
  const token = (login.json.data as { token: { access_token: string } }).token.access_token;
  t.is((await api('POST', '/nets', token, { name: 'lab', first_ip: '10.9.0.10', ip_count: 10, mask_bits: 24 })).status, 200);
  for (const mac of ['52:54:00:0b:00:01', '52:54:00:0b:00:02']) t.is((await api('POST', '/nodes', token, { mac })).status, 200);
  const nodes = await api('GET', '/nodes', token);
  t.is(nodes.status, 200, JSON.stringify(nodes.json));
  t.deepEqual(Object.values(nodes.json.data as Record<string, { mac: string; ip: string }>).map(({ mac, ip }) => [mac, ip]).sort(), [['52:54:00:0b:00:01', '10.9.0.10'], ['52:54:00:0b:00:02', '10.9.0.11']]);
  t.deepEqual(Object.values((await api('GET', '/nets', token)).json.data as Record<string, { name: string }>).map((net) => net.name), ['lab']);

  child.kill('SIGTERM');
  t.is(await exited(child, 10_000), 0, `keel serve did not exit cleanly on SIGTERM:\n${output}`);
});

test('the binary network-boots a QEMU UEFI machine up to its iPXE script (DHCP, TFTP, HTTP)', async (t) => {
  // The boot path as the sources' boot tests (test/dhcp-boot.test.ts) drive it, served by the one
  // file: authoritative DHCP, EDK2's PXE fetching ipxe.efi by TFTP, iPXE fetching the node's
  // script by HTTP.
  const mac = '52:54:00:0b:0e:01';
  const lab = bootLab(t, { siteDhcp: false });
  await prepareCluster(lab.dataDir, { network: { name: 'lab', first_ip: '10.67.0.100', ip_count: 10, mask_bits: 24, router_ip: '10.67.0.254', dhcp_mode: 'authoritative' }, macs: [mac] });
  const keelInLab = await startKeelInNamespace(t, lab.server, lab.dataDir, 'br0', 8080, 69, { executable: keel, env: { XDG_CACHE_HOME: join(work, 'cache-boot') } });
  const vm = startVm(t, lab, 'uefi-virtio', mac);
  const quit = vm.exited.then(() => {
    throw new Error(`QEMU exited before the script fetch: ${vm.output()}`);
  });
  // Rejects (the test fails) unless the binary serves this node's script within 2 minutes.
  await Promise.race([keelInLab.waitForLog((line) => line.msg === 'iPXE script served' && line.mac === mac, 120_000), quit]);
  const transfers = keelInLab.logs.filter((line) => line.msg === 'tftp transfer' && line.outcome === 'complete').map((line) => line.file);
  t.true(transfers.includes('ipxe.efi'), `TFTP transfers: ${JSON.stringify(transfers)}`);
  await keelInLab.stop();
});
