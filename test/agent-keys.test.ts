// The default image's node agent (images/rootfs/keel-agent), the real script, run against a real
// head on loopback with its files under a temp dir (KEEL_AGENT_ROOT: the command line it reads, the
// console it writes, root's authorized_keys): the keys keel serves at GET /cluster/sshkeys land
// in keel's block of authorized_keys, a key added through /sshkeys appears, a deleted one goes,
// and the lines keel did not write stay. OpenSSH's own ssh-keygen reads the file back. The agent
// is killed by pid at teardown.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../bench/processes.js';
import { generateKeyPair } from '../src/ssh/keys.js';
import { startTestHead } from './helpers/head.js';

const AGENT = new URL('../images/rootfs/keel-agent', import.meta.url).pathname;
const BLOCK_BEGIN = '# keel-agent: begin (the keys of GET /cluster/sshkeys; this block is rewritten, edit outside it)';
const BLOCK_END = '# keel-agent: end';
/** The agent runs every second here; generous for a loaded machine. */
const CHANGE_TIMEOUT_MS = 30_000;

test('the node agent keeps root\'s authorized_keys to keel\'s keys, leaving the lines it did not write', async (t) => {
  t.timeout(3 * 60_000);
  const h = await startTestHead(t);
  let token = (await h.login()).access_token;
  // A node at 127.0.0.1, so that the agent's reports get through too (keel knows a node by its address).
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const node = (await h.call('POST', '/nodes', { token, body: { mac: '52:54:00:00:00:21' } })).json.data as string;
  const headKey = ((await h.call('GET', '/cluster', { token })).json.data as { heads: { ssh_public: string }[] }).heads[0]!.ssh_public;

  const root = mkdtempSync(join(tmpdir(), 'keel-agent-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'proc'));
  mkdirSync(join(root, 'dev'));
  mkdirSync(join(root, 'root', '.ssh'), { recursive: true, mode: 0o755 });
  chmodSync(join(root, 'root', '.ssh'), 0o755);
  writeFileSync(join(root, 'proc', 'cmdline'), `console=ttyS0 keel.api=${h.base} keel.status_period=1\n`);
  // What the operator had there: their own key and comment, and a stale block from an earlier boot
  // holding a key keel no longer lists.
  const operatorKey = generateKeyPair('ed25519', 'operator@laptop').public;
  const staleKey = generateKeyPair('ed25519', 'removed-long-ago').public;
  const authorizedKeys = join(root, 'root', '.ssh', 'authorized_keys');
  writeFileSync(authorizedKeys, ['# my own keys', operatorKey, BLOCK_BEGIN, staleKey, BLOCK_END, ''].join('\n'), { mode: 0o644 });
  chmodSync(authorizedKeys, 0o644);
  const foreign = ['# my own keys', operatorKey];

  const agent = spawn(AGENT, [], { env: { ...process.env, KEEL_AGENT_ROOT: root }, stdio: ['ignore', 'pipe', 'pipe'] });
  let agentOutput = '';
  agent.stdout.on('data', (chunk: Buffer) => (agentOutput += chunk.toString()));
  agent.stderr.on('data', (chunk: Buffer) => (agentOutput += chunk.toString()));
  const exited = new Promise<void>((resolve) => agent.on('exit', () => resolve()));
  t.teardown(async () => {
    if (agent.exitCode === null && agent.signalCode === null) {
      process.kill(agent.pid!, 'SIGKILL');
      await exited;
    }
  });
  const lines = () => readFileSync(authorizedKeys, 'utf8').split('\n').slice(0, -1);
  const block = () => {
    const all = lines();
    return all.slice(all.indexOf(BLOCK_BEGIN) + 1, all.indexOf(BLOCK_END));
  };
  const until = async (what: string, check: () => boolean) => {
    try {
      await waitFor(what, check, CHANGE_TIMEOUT_MS);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nauthorized_keys:\n${readFileSync(authorizedKeys, 'utf8')}\nagent console:\n${readFileSync(join(root, 'dev', 'console'), 'utf8').slice(-2000)}\nagent output: ${agentOutput}`, { cause: err });
    }
  };

  await until('the head\'s key in authorized_keys', () => lines().includes(headKey));
  t.deepEqual(lines(), [...foreign, BLOCK_BEGIN, headKey, BLOCK_END], 'the operator\'s lines first, as they were; keel\'s block holds the head\'s key only');
  t.is(statSync(authorizedKeys).mode & 0o777, 0o600);
  t.is(statSync(join(root, 'root', '.ssh')).mode & 0o777, 0o700);

  // A key registered through the API (spec 004's /sshkeys), with a comment JSON has to escape.
  const registered = generateKeyPair('ed25519', 'x').public.replace(/ x$/, ' "ops" \\ team');
  const created = await h.call('POST', '/sshkeys', { token, body: { text: registered, artifactId: 'fleet' } });
  t.is(created.status, 200, JSON.stringify(created.json));
  const { id } = created.json.data as { id: number };
  await until('the registered key in authorized_keys', () => block().includes(registered));
  t.deepEqual(block().sort(), [headKey, registered].sort());
  // An admin's keys are listed too; the agent takes only what reads as one public key: no
  // authorized_keys options, no line break smuggling a second line in.
  const adminKey = generateKeyPair('ed25519', 'admin-key').public;
  const withOptions = `command="/bin/true" ${generateKeyPair('ed25519', 'with-options').public}`;
  const twoLines = `${generateKeyPair('ed25519', 'first-line').public}\nfrom="*" ${generateKeyPair('ed25519', 'second-line').public}`;
  const patched = await h.call('PATCH', '/admin/admin', { token, body: { keys: [adminKey, withOptions, twoLines] } });
  t.is(patched.status, 200, JSON.stringify(patched.json));
  await until('the admin\'s key in authorized_keys', () => block().includes(adminKey));
  t.deepEqual(block().sort(), [adminKey, headKey, registered].sort(), 'neither the line with options nor the one with a line break');
  t.regex(readFileSync(join(root, 'dev', 'console'), 'utf8'), /not a public key line, left out: command="\/bin\/true"/);
  t.is((await h.call('PATCH', '/admin/admin', { token, body: { keys: [] } })).status, 200);
  // Taking a key away ends the admin's tokens (docs/security.md): log in again.
  token = (await h.login()).access_token;
  // A line the operator adds meanwhile, outside keel's block, is kept through the next rewrite.
  const addedKey = generateKeyPair('ecdsa', 'added-by-hand').public;
  writeFileSync(authorizedKeys, `${addedKey}\n`, { flag: 'a' });

  t.is((await h.call('DELETE', `/sshkeys/${id}`, { token })).status, 200);
  await until('the deleted key gone from authorized_keys', () => !lines().includes(registered));
  t.deepEqual(lines(), [...foreign, addedKey, BLOCK_BEGIN, headKey, BLOCK_END]);
  t.is(statSync(authorizedKeys).mode & 0o777, 0o600);
  // OpenSSH reads every key of the file (ssh-keygen -l lists an authorized_keys file's keys).
  const fingerprints = execFileSync('ssh-keygen', ['-l', '-f', authorizedKeys], { encoding: 'utf8' }).trim().split('\n');
  t.is(fingerprints.length, 3, fingerprints.join('\n'));
  t.regex(fingerprints.join('\n'), /operator@laptop[\s\S]*added-by-hand[\s\S]*keel@head-test/);

  // The same agent reports: keel has its status.
  const status = (await h.call('GET', `/node/${node}/status`, { token })).json.data as Record<string, unknown>;
  t.like(status, { state: 'up', agent: 'keel-agent 2' });
});
