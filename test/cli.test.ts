import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './helpers/free-port.js';

const run = promisify(execFile);
const main = join(import.meta.dirname, '..', 'src', 'main.ts');
const keel = (args: string[], input?: string) => {
  const child = run(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, KEEL_ADMIN_PASSWORD: '' } });
  if (input !== undefined) child.child.stdin!.end(input);
  return child;
};

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('--help works on every command', async (t) => {
  for (const args of [['--help'], ['serve', '--help'], ['admin', '--help'], ['admin', 'create', '--help'], ['version', '--help']]) {
    const { stdout } = await keel(args);
    t.regex(stdout, /Usage: keel/, args.join(' '));
  }
  t.regex((await keel(['serve', '--help'])).stdout, /--bind <address>[\s\S]*--http-port <port>[\s\S]*--tftp-port <port>/);
});

test('admin create, list, passwd and rm work offline on the store', async (t) => {
  const dir = tempDir(t);
  const created = await keel(['admin', 'create', 'carol', '--data-dir', dir, '--roles', 'role.authuser'], 'carol-password-1\n');
  t.regex(created.stdout.trim(), /^[0-9a-f]{32}$/);
  await keel(['admin', 'create', 'dave', '--data-dir', dir], 'dave-password-1\n');
  const list = (await keel(['admin', 'list', '--data-dir', dir])).stdout;
  t.regex(list, /carol\s+role\.authuser\n/);
  t.regex(list, /dave\s+role\.authuser,role\.fulladmin/);
  const dup = await keel(['admin', 'create', 'carol', '--data-dir', dir], 'x-password-1\n').catch((e: { stderr: string }) => e);
  t.regex((dup as { stderr: string }).stderr, /Admin with name=carol already exists/);
  await keel(['admin', 'passwd', 'carol', '--data-dir', dir], 'new-password-2\n');
  await keel(['admin', 'rm', 'carol', '--data-dir', dir]);
  t.notRegex((await keel(['admin', 'list', '--data-dir', dir])).stdout, /carol/);
  const lastAdmin = await keel(['admin', 'rm', 'dave', '--data-dir', dir]).catch((e: { stderr: string }) => e);
  t.regex((lastAdmin as { stderr: string }).stderr, /no admin with role.fulladmin/);
});

test('bad config stops start-up with a message naming the key', async (t) => {
  const dir = tempDir(t);
  const err = (await keel(['serve', '--data-dir', dir, '--http-port', 'eighty']).catch((e: unknown) => e)) as { stderr: string; code: number };
  t.is(err.code, 1);
  t.regex(err.stderr, /http\.port: must be an integer 1\.\.65535 \(got "eighty"\) \[from --http-port\]/);
});

test('first start creates admin with a random password in a 0600 file, and that password logs in', async (t) => {
  const dir = tempDir(t);
  // A port free right now (a random one collided with another test's server once in CI).
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', main, 'serve', '--data-dir', dir, '--bind', '127.0.0.1', '--http-port', String(port), '--tftp-port', String(port)], {
    env: { ...process.env, KEEL_ADMIN_PASSWORD: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  // Generous: under tsx on a loaded 2-core CI machine (image builds beside it) a start took > 20 s.
  const deadline = Date.now() + 60_000;
  while (!output.includes('API listening') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.true(output.includes('API listening'), `keel serve did not start:\n${output}`);
  t.regex(output, /initial-admin-password/);
  const file = join(dir, 'initial-admin-password');
  t.is(statSync(file).mode & 0o777, 0o600);
  const pass = readFileSync(file, 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass }) });
  t.is(res.status, 200);
  const exit = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  t.is(await exit, 0);
});
