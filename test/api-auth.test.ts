import test from 'ava';
import { connect } from 'node:net';
import { join } from 'node:path';
import { LOCAL_LOGIN_SOCKET } from '../src/api/local-login.js';
import { startTestHead } from './helpers/head.js';

test('login returns the spec shape; bad credentials get 401', async (t) => {
  const h = await startTestHead(t);
  const res = await h.call('POST', '/login', { body: { user: 'admin', pass: 'initial-secret-pw' } });
  t.is(res.status, 200);
  const data = res.json.data as { user: string; token: Record<string, unknown> };
  t.is(data.user, 'admin');
  t.deepEqual(Object.keys(data.token).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token']);
  t.is(data.token.expires_in, 1200);
  t.is(data.token.refresh_expires_in, 2592000);

  for (const body of [{ user: 'admin', pass: 'wrong' }, { user: 'ghost', pass: 'initial-secret-pw' }]) {
    const bad = await h.call('POST', '/login', { body });
    t.deepEqual([bad.status, bad.json.success], [401, false]);
  }
  t.is((await h.call('POST', '/login', { body: { user: 'admin' } })).status, 400);
  t.is((await h.call('POST', '/login', { body: { user: 'admin', pass: 'x', extra: 1 } })).json.reason, 'Unhandled parameter(s): extra');
});

test('token lifetimes come from the config', async (t) => {
  const h = await startTestHead(t, { KEEL_AUTH_ACCESS_TOKEN_TTL: '60', KEEL_AUTH_REFRESH_TOKEN_TTL: '600' });
  const res = await h.call('POST', '/login', { body: { user: 'admin', pass: 'initial-secret-pw' } });
  const token = (res.json.data as { token: { expires_in: number; refresh_expires_in: number } }).token;
  t.deepEqual([token.expires_in, token.refresh_expires_in], [60, 600]);
});

test('newtoken trades a refresh token; access and refresh tokens are not interchangeable', async (t) => {
  const h = await startTestHead(t);
  const { access_token, refresh_token } = await h.login();
  const fresh = await h.call('GET', '/newtoken', { token: refresh_token });
  t.is(fresh.status, 200);
  const data = fresh.json.data as Record<string, unknown> & { token: { access_token: string } };
  t.is(data.authorized_by, 'admin');
  t.is(data.userid, 'admin');
  t.regex(data.uid as string, /^[0-9a-f]{32}$/);
  t.deepEqual(Object.keys(data.token).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token']);
  t.is((await h.call('GET', '/whoami', { token: data.token.access_token })).status, 200);

  const accessAtNewtoken = await h.call('GET', '/newtoken', { token: access_token });
  t.is(accessAtNewtoken.status, 401);
  const refreshElsewhere = await h.call('GET', '/admins', { token: refresh_token });
  t.is(refreshElsewhere.status, 401);
  t.regex(refreshElsewhere.json.reason!, /refresh token/);
});

test('tokens expire: access after its lifetime, refresh after its own', async (t) => {
  const h = await startTestHead(t);
  const { access_token, refresh_token } = await h.login();
  // The head's clock also runs in real time: 10 s of slack on each side of the lifetime, so a
  // slow CI machine cannot expire the token early.
  h.advance(1190);
  t.is((await h.call('GET', '/whoami', { token: access_token })).status, 200);
  h.advance(20);
  const expired = await h.call('GET', '/whoami', { token: access_token });
  t.deepEqual([expired.status, expired.json.reason], [401, 'Token has expired']);
  t.is((await h.call('GET', '/newtoken', { token: refresh_token })).status, 200);
  h.advance(2592000);
  t.is((await h.call('GET', '/newtoken', { token: refresh_token })).status, 401);
});

test('tampered, foreign and malformed tokens get 401', async (t) => {
  const h = await startTestHead(t);
  const other = await startTestHead(t);
  const { access_token } = await h.login();
  const foreign = (await other.login()).access_token;
  const [head, payload, sig] = access_token.split('.');
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), name: 'root' })).toString('base64url');
  for (const token of [`${head}.${forged}.${sig}`, foreign, 'not-a-jwt']) {
    t.is((await h.call('GET', '/whoami', { token })).status, 401);
  }
  const noScheme = await h.call('GET', '/whoami', { headers: { authorization: access_token } });
  t.is(noScheme.status, 401);
});

test('a deleted admin\'s token stops working at once; a role change applies at once', async (t) => {
  const h = await startTestHead(t);
  const { access_token } = await h.login();
  await h.call('POST', '/admins', { token: access_token, body: { name: 'ops', password: 'ops-password' } });
  let ops = await h.login('ops', 'ops-password');
  t.is((await h.call('POST', '/admins', { token: ops.access_token, body: { name: 'x2' } })).status, 200);
  await h.call('PATCH', '/admin/ops', { token: access_token, body: { roles: ['role.authuser'] } });
  // A role change also revokes the admin's earlier tokens (test/api-login-protection.test.ts).
  t.is((await h.call('POST', '/admins', { token: ops.access_token, body: { name: 'x3' } })).status, 401);
  ops = await h.login('ops', 'ops-password');
  t.is((await h.call('POST', '/admins', { token: ops.access_token, body: { name: 'x3' } })).status, 403);
  await h.call('DELETE', '/admin/ops', { token: access_token });
  t.is((await h.call('GET', '/whoami', { token: ops.access_token })).status, 401);
});

test('POST /admin/<id>/newtoken makes an access token with the requested timeout', async (t) => {
  const h = await startTestHead(t);
  const { access_token } = await h.login();
  const res = await h.call('POST', '/admin/admin/newtoken', { token: access_token, body: { timeout: 30 } });
  t.is(res.status, 200);
  const token = (res.json.data as { token: { access_token: string; expires_in: number } }).token;
  t.is(token.expires_in, 30);
  t.is((await h.call('GET', '/whoami', { token: token.access_token })).status, 200);
  h.advance(31);
  t.is((await h.call('GET', '/whoami', { token: token.access_token })).status, 401);
  t.is((await h.call('POST', '/admin/admin/newtoken', { token: access_token, body: { timeout: 'soon' } })).status, 400);
});

function askLocalSecret(path: string, line: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect(path, () => socket.write(line));
    socket.on('data', (d) => (text += d.toString()));
    socket.on('end', () => resolve(JSON.parse(text) as Record<string, string>));
    socket.on('error', reject);
  });
}

test('local-socket login: a one-time secret from the owner-only socket logs in once', async (t) => {
  const h = await startTestHead(t);
  const path = join(h.dataDir, LOCAL_LOGIN_SOCKET);
  const { statSync } = await import('node:fs');
  t.is(statSync(path).mode & 0o777, 0o600);
  t.is(statSync(h.dataDir).mode & 0o777, 0o700);
  const { secret } = await askLocalSecret(path, '{"user":"admin"}\n');
  t.truthy(secret);
  const first = await h.call('POST', '/login', { body: { user: 'admin', secret } });
  t.is(first.status, 200);
  t.is((first.json.data as { user: string }).user, 'admin');
  t.is((await h.call('POST', '/login', { body: { user: 'admin', secret } })).status, 401, 'a secret works once');

  const other = await askLocalSecret(path, '{"user":"admin"}\n');
  h.advance(61);
  t.is((await h.call('POST', '/login', { body: { user: 'admin', secret: other.secret } })).status, 401, 'secrets expire');
  t.truthy((await askLocalSecret(path, 'garbage\n')).error);
});
