// Login protection and token revocation (issue 19, items 7, 8, 9): backoff per user name and per
// source address (429 with Retry-After, never a permanent lockout, logged); a password, role or key
// change, DELETE /admin/<id>/tokens and `keel admin revoke-tokens` revoke an admin's earlier tokens;
// an unknown user costs the same scrypt as a wrong password; password checks leave the threadpool
// to other work.
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hashPassword, verifyPassword } from '../src/model/passwords.js';
import { ADMIN_PASSWORD, startTestHead, type TestHead } from './helpers/head.js';

/** POST /login from a chosen loopback source address (127.0.0.0/8 is all loopback on Linux). */
function loginFrom(h: TestHead, source: string, user: string, pass: string): Promise<{ status: number; retryAfter?: string; reason?: string }> {
  const body = JSON.stringify({ user, pass });
  return new Promise((resolve, reject) => {
    const req = request(`${h.base}/login`, { method: 'POST', localAddress: source, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        retryAfter: res.headers['retry-after'] as string | undefined,
        reason: (JSON.parse(Buffer.concat(chunks).toString()) as { reason?: string }).reason,
      }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function createAdmin(h: TestHead, token: string, name: string, roles = ['role.authuser', 'role.fulladmin']): Promise<void> {
  const res = await h.call('POST', '/admins', { token, body: { name, password: `${name}-password`, roles } });
  if (res.status !== 200) throw new Error(JSON.stringify(res.json));
}

test('a user name under attack waits, doubling, with 429 and Retry-After; after the wait the right password works', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await createAdmin(h, token, 'bob');
  for (let i = 0; i < 5; i++) t.is((await loginFrom(h, '127.0.0.21', 'bob', 'wrong-guess')).status, 401, `guess ${i}`);
  // Held back before the password is checked: even the right one is refused now.
  let refused = await loginFrom(h, '127.0.0.21', 'bob', 'bob-password');
  t.is(refused.status, 429);
  t.is(refused.retryAfter, '1');
  t.regex(refused.reason!, /Too many failed logins/);
  h.advance(1);
  t.is((await loginFrom(h, '127.0.0.22', 'bob', 'wrong-guess')).status, 401, 'one guess after the wait');
  refused = await loginFrom(h, '127.0.0.22', 'bob', 'bob-password');
  t.is(refused.status, 429);
  t.is(refused.retryAfter, '2', 'the wait doubles with each failure');
  h.advance(2);
  t.is((await loginFrom(h, '127.0.0.23', 'bob', 'bob-password')).status, 200, 'never a permanent lockout');

  const log = await h.call('GET', '/cluster/head/head-test/log?lines=1000', { token });
  t.regex(JSON.stringify(log.json.data), /login refused: too many failed attempts/);
  t.regex(JSON.stringify(log.json.data), /login failed/);
});

test('guesses against the admin from elsewhere do not keep the real admin out of an address it logged in from', async (t) => {
  const h = await startTestHead(t);
  t.is((await loginFrom(h, '127.0.0.1', 'admin', ADMIN_PASSWORD)).status, 200);
  for (let i = 0; i < 8; i++) await loginFrom(h, '127.0.0.66', 'admin', `guess-${i}`);
  t.is((await loginFrom(h, '127.0.0.66', 'admin', ADMIN_PASSWORD)).status, 429, 'the attacking address waits');
  const fresh = await loginFrom(h, '127.0.0.67', 'admin', ADMIN_PASSWORD);
  t.is(fresh.status, 429, 'a new address waits too (the user name is under attack)…');
  t.true(Number(fresh.retryAfter) <= 60, '…but never more than a minute');
  t.is((await loginFrom(h, '127.0.0.1', 'admin', ADMIN_PASSWORD)).status, 200, 'the known address is not held back');
});

test('one address guessing many user names waits too', async (t) => {
  const h = await startTestHead(t);
  for (let i = 0; i < 10; i++) t.is((await loginFrom(h, '127.0.0.31', `user${i}`, 'guess')).status, 401);
  const refused = await loginFrom(h, '127.0.0.31', 'admin', ADMIN_PASSWORD);
  t.is(refused.status, 429, 'per source, whatever the user name');
  t.is(refused.retryAfter, '1');
  t.is((await loginFrom(h, '127.0.0.32', 'admin', ADMIN_PASSWORD)).status, 200, 'another address is not affected');
  h.advance(1);
  t.is((await loginFrom(h, '127.0.0.31', 'admin', ADMIN_PASSWORD)).status, 200);
});

test('a password change, a role change, a removed key and DELETE /admin/<id>/tokens each revoke earlier tokens', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await createAdmin(h, token, 'carol');
  const check = async (tokens: { access_token: string; refresh_token: string }) => ({
    access: (await h.call('GET', '/whoami', { token: tokens.access_token })).status,
    refresh: (await h.call('GET', '/newtoken', { token: tokens.refresh_token })).status,
  });

  let before = await h.login('carol', 'carol-password');
  t.deepEqual(await check(before), { access: 200, refresh: 200 });
  t.is((await h.call('PATCH', '/admin/carol', { token, body: { password: 'carol-password-2' } })).status, 200);
  t.deepEqual(await check(before), { access: 401, refresh: 401 }, 'password change');
  const revoked = await h.call('GET', '/whoami', { token: before.access_token });
  t.regex(revoked.json.reason!, /revoked/);

  before = await h.login('carol', 'carol-password-2');
  t.is((await h.call('PATCH', '/admin/carol', { token, body: { description: 'ops' } })).status, 200);
  t.deepEqual(await check(before), { access: 200, refresh: 200 }, 'other changes leave tokens alone');
  t.is((await h.call('PATCH', '/admin/carol', { token, body: { roles: ['role.authuser'] } })).status, 200);
  t.deepEqual(await check(before), { access: 401, refresh: 401 }, 'role change');

  t.is((await h.call('POST', '/admin/carol/keys', { token, body: ['ssh-ed25519 AAAA carol@a', 'ssh-ed25519 BBBB carol@b'] })).status, 200);
  before = await h.login('carol', 'carol-password-2');
  t.deepEqual(await check(before), { access: 200, refresh: 200 }, 'adding keys leaves tokens alone');
  t.is((await h.call('DELETE', '/admin/carol/keys', { token, body: ['ssh-ed25519 BBBB carol@b'] })).status, 200);
  t.deepEqual(await check(before), { access: 401, refresh: 401 }, 'key removed');

  before = await h.login('carol', 'carol-password-2');
  const tool = await h.call('POST', '/admin/carol/newtoken', { token, body: { timeout: 3600 } });
  const toolToken = (tool.json.data as { token: { access_token: string } }).token.access_token;
  t.is((await h.call('GET', '/whoami', { token: toolToken })).status, 200);
  t.is((await h.call('DELETE', '/admin/carol/tokens', { token })).status, 200);
  t.deepEqual(await check(before), { access: 401, refresh: 401 }, 'explicit revocation');
  t.is((await h.call('GET', '/whoami', { token: toolToken })).status, 401, 'tokens made for tools too');
  t.is((await h.call('DELETE', '/admin/carol/tokens', { token: (await h.login('carol', 'carol-password-2')).access_token })).status, 403, 'fulladmin only');
  t.is((await h.call('GET', '/whoami', { token })).status, 200, 'other admins keep theirs');
});

test('keel admin revoke-tokens revokes an admin\'s tokens while keel runs', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await createAdmin(h, token, 'dave');
  const dave = await h.login('dave', 'dave-password');
  t.is((await h.call('GET', '/whoami', { token: dave.access_token })).status, 200);
  const main = join(import.meta.dirname, '..', 'src', 'main.ts');
  await promisify(execFile)(process.execPath, ['--import', 'tsx', main, 'admin', 'revoke-tokens', 'dave', '--data-dir', h.dataDir], { env: { ...process.env, KEEL_ADMIN_PASSWORD: '' } });
  t.is((await h.call('GET', '/whoami', { token: dave.access_token })).status, 401);
  t.is((await h.call('GET', '/newtoken', { token: dave.refresh_token })).status, 401);
  t.is((await h.call('GET', '/whoami', { token })).status, 200, 'other admins keep theirs');
});

/** Median duration of `runs` calls of `fn`, in ms. */
async function median(runs: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

test('an unknown user name takes as long to refuse as a wrong password', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await createAdmin(h, token, 'erin');
  // Fewer failures per name and per address than the backoff allows, so every attempt is checked.
  const known = await median(5, () => loginFrom(h, '127.0.0.41', 'erin', 'wrong-guess'));
  const unknown = await median(5, () => loginFrom(h, '127.0.0.42', 'nobody-by-this-name', 'wrong-guess'));
  // Without the dummy derivation: about 0.4 ms against 34 ms. The margin is for a busy machine.
  t.true(unknown > known / 4, `unknown user ${unknown.toFixed(1)} ms vs wrong password ${known.toFixed(1)} ms`);
});

test('a flood of password checks leaves the threadpool to file reads', async (t) => {
  const hash = await hashPassword('the-right-password');
  const file = join(tmpdir(), `keel-threadpool-${process.pid}`);
  await writeFile(file, 'kickstart');
  t.teardown(() => rm(file, { force: true }));
  let checksDone = 0;
  const checks = Array.from({ length: 24 }, () => verifyPassword('a-wrong-password', hash).then(() => checksDone++));
  await readFile(file);
  const doneAtRead = checksDone;
  await Promise.all(checks);
  // Without a limit the read queues behind the derivations that took all 4 threadpool threads.
  t.true(doneAtRead < 12, `${doneAtRead} of 24 checks finished before the read`);
});
