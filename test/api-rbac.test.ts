// The RBAC matrix: every route × {no token, refresh token, expired token, authuser, poweradmin,
// fulladmin}. Object ids point at a missing admin, so an allowed request ends in the handler
// (200/400/404) without changing anything, and a refused one in 401/403.
import test from 'ava';
import { allRoutes } from '../src/api/routes/index.js';
import { allows, type Role } from '../src/model/roles.js';
import { startTestHead } from './helpers/head.js';

const authFailure = (status: number) => status === 401 || status === 403;

test('every route enforces its declared access for every kind of caller', async (t) => {
  const h = await startTestHead(t);
  const admin = await h.login();
  const tokens: Record<string, string> = {};
  for (const role of ['role.authuser', 'role.poweradmin', 'role.fulladmin'] as Role[]) {
    const name = role.replace('role.', '');
    await h.call('POST', '/admins', { token: admin.access_token, body: { name, roles: [role], password: `${name}-password` } });
    tokens[role] = (await h.login(name, `${name}-password`)).access_token;
  }
  // An expired token of this head: one made with a 1 s lifetime, then the clock moves 5 s.
  const short = await h.call('POST', '/admin/authuser/newtoken', { token: admin.access_token, body: { timeout: 1 } });
  const expired = (short.json.data as { token: { access_token: string } }).token.access_token;

  const publicRoutes = allRoutes.filter((r) => r.access === 'public').map((r) => `${r.method} ${r.path}`);
  t.true(publicRoutes.includes('GET /cluster/time') && publicRoutes.includes('GET /admins/meta') && publicRoutes.includes('POST /login'));

  h.advance(5);
  let checked = 0;
  for (const route of allRoutes) {
    const path = route.path.replace(/:[a-z]+/g, 'no-such-admin');
    const body = route.method === 'GET' ? undefined : {};
    const request = (token?: string) => h.call(route.method, path, { token, body });
    const label = `${route.method} ${route.path}`;
    if (route.access === 'public') {
      t.false(authFailure((await request()).status), `${label} is public`);
      checked++;
      continue;
    }
    t.is((await request()).status, 401, `${label} without a token`);
    t.is((await request(expired)).status, 401, `${label} with an expired token`);
    const refresh = await request(admin.refresh_token);
    if (route.access === 'refresh-token') t.false(authFailure(refresh.status), `${label} takes the refresh token`);
    else t.is(refresh.status, 401, `${label} refuses a refresh token`);
    for (const [role, token] of Object.entries(tokens)) {
      const { status } = await request(token);
      if (route.access === 'refresh-token') t.is(status, 401, `${label} refuses access tokens`);
      else if (allows([role], route.access)) t.false(authFailure(status), `${label} allows ${role} (got ${status})`);
      else t.is(status, 403, `${label} refuses ${role}`);
    }
    checked++;
  }
  t.is(checked, allRoutes.length);
});
