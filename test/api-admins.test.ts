import test from 'ava';
import { startTestHead } from './helpers/head.js';

test('spec 001 admin example, step by step', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();

  const created = await h.call('POST', '/admins', { token, body: { name: 'admin2' } });
  t.is(created.status, 200);
  const uid = created.json.data as string;
  t.regex(uid, /^[0-9a-f]{32}$/);

  const got = await h.call('GET', `/admin/${uid}`, { token });
  const record = got.json.data as Record<string, unknown>;
  t.is(record.name, 'admin2');
  t.deepEqual(record.roles, ['role.authuser', 'role.fulladmin']);
  t.is(record.uid, uid);
  t.is(record.last_modified_on, 'head-test');
  t.is(record.last_modified_by, 'admin');
  t.is(typeof record.last_modified, 'number');
  t.true(Math.abs((record.last_modified as number) - Date.now() / 1000) < 60);

  t.deepEqual((await h.call('PATCH', '/admin/admin2', { token, body: { description: 'John Doe, HPC admin' } })).json, { success: true });
  t.deepEqual((await h.call('PATCH', '/admin/admin2', { token, body: { roles: ['role.authuser'] } })).json, { success: true });

  const after = (await h.call('GET', '/admin/admin2', { token })).json.data as Record<string, unknown>;
  t.deepEqual(after.roles, ['role.authuser'], 'PATCH of roles overwrites the list');
  t.is(after.description, 'John Doe, HPC admin');
  t.is(after.uid, uid);
  t.true((after.last_modified as number) >= (record.last_modified as number));

  t.deepEqual((await h.call('DELETE', '/admin/admin2', { token })).json, { success: true });
  const gone = await h.call('GET', `/admin/${uid}`, { token });
  t.deepEqual([gone.status, gone.json.reason], [404, `No admin found for ID=${uid}`]);
});

test('list, PUT, duplicates, validation and the last-fulladmin guard', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await h.call('POST', '/admins', { token, body: { name: 'alice', description: 'a', keys: ['ssh-ed25519 AAA a'] } });
  const list = (await h.call('GET', '/admins', { token })).json.data as Record<string, { name: string; uid: string }>;
  t.deepEqual(Object.values(list).map((a) => a.name).sort(), ['admin', 'alice']);
  for (const [uid, admin] of Object.entries(list)) t.is(admin.uid, uid);
  t.false(JSON.stringify(list).includes('password'), 'password hashes are never returned');

  const dup = await h.call('POST', '/admins', { token, body: { name: 'alice' } });
  t.deepEqual([dup.status, dup.json.reason], [400, 'Admin with name=alice already exists.']);
  t.is((await h.call('POST', '/admins', { token, body: {} })).json.reason, "Missing required field 'name'");
  t.regex((await h.call('POST', '/admins', { token, body: { name: 'x', roles: ['role.god'] } })).json.reason!, /Unknown role\(s\): role.god/);
  t.regex((await h.call('POST', '/admins', { token, body: { name: 'bad name!' } })).json.reason!, /user name/);
  t.regex((await h.call('POST', '/admins', { token, body: { name: 'x', password: 'short' } })).json.reason!, /at least 8/);

  // PUT replaces: fields not sent are gone; roles fall back to the default.
  t.is((await h.call('PUT', '/admin/alice', { token, body: { name: 'alice2' } })).status, 200);
  const replaced = (await h.call('GET', '/admin/alice2', { token })).json.data as Record<string, unknown>;
  t.is(replaced.description, undefined);
  t.is(replaced.keys, undefined);
  t.is((await h.call('GET', '/admin/alice', { token })).status, 404, 'the old name no longer resolves');

  t.deepEqual(replaced.roles, ['role.authuser', 'role.fulladmin']);
  t.is((await h.call('PATCH', '/admin/alice2', { token, body: { roles: ['role.authuser'] } })).status, 200);
  // Now `admin` is the only full admin: neither demoting nor deleting it is allowed.
  const demote = await h.call('PATCH', '/admin/admin', { token, body: { roles: ['role.authuser'] } });
  t.deepEqual([demote.status, demote.json.reason], [400, 'This change would leave no admin with role.fulladmin']);
  t.is((await h.call('DELETE', '/admin/admin', { token })).status, 400);
  t.deepEqual(((await h.call('GET', '/admin/admin', { token })).json.data as { roles: string[] }).roles, ['role.fulladmin'], 'refused change left no trace');
});

test('gui_settings and keys sub-resources', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  await h.call('POST', '/admins', { token, body: { name: 'bob' } });
  t.deepEqual((await h.call('GET', '/admin/bob/gui_settings', { token })).json.data, {});
  await h.call('PATCH', '/admin/bob/gui_settings', { token, body: { theme: 'dark', page: 3 } });
  await h.call('PATCH', '/admin/bob/gui_settings', { token, body: { page: 4 } });
  t.deepEqual((await h.call('GET', '/admin/bob/gui_settings', { token })).json.data, { theme: 'dark', page: 4 });
  await h.call('DELETE', '/admin/bob/gui_settings', { token, body: '"page"' });
  t.deepEqual((await h.call('GET', '/admin/bob/gui_settings', { token })).json.data, { theme: 'dark' });
  await h.call('DELETE', '/admin/bob/gui_settings', { token });
  t.deepEqual((await h.call('GET', '/admin/bob/gui_settings', { token })).json.data, {});
  t.is((await h.call('PATCH', '/admin/bob/gui_settings', { token, body: [1] })).status, 400);

  t.is((await h.call('POST', '/admin/bob/keys', { token, body: '"ssh-ed25519 AAA one"' })).status, 200);
  await h.call('POST', '/admin/bob/keys', { token, body: ['ssh-ed25519 BBB two', 'ssh-ed25519 AAA one'] });
  const keys = async () => ((await h.call('GET', '/admin/bob', { token })).json.data as { keys?: string[] }).keys;
  t.deepEqual(await keys(), ['ssh-ed25519 AAA one', 'ssh-ed25519 BBB two']);
  await h.call('DELETE', '/admin/bob/keys', { token, body: ['ssh-ed25519 AAA one'] });
  t.deepEqual(await keys(), ['ssh-ed25519 BBB two']);
  await h.call('PUT', '/admin/bob/keys', { token, body: ['ssh-rsa CCC three'] });
  t.deepEqual(await keys(), ['ssh-rsa CCC three']);
  t.is((await h.call('POST', '/admin/bob/keys', { token, body: { key: 1 } })).status, 400);
});

test('meta is public and describes every field except write-only ones', async (t) => {
  const h = await startTestHead(t);
  const meta = await h.call('GET', '/admins/meta');
  t.is(meta.status, 200);
  const fields = (meta.json.data as { fields: { path: string[]; summary: string; source: string; format: string }[] }).fields;
  const paths = fields.map((f) => f.path.join('.'));
  for (const name of ['name', 'description', 'roles', 'keys', 'gui_settings', 'uid', 'last_modified', 'last_modified_on', 'last_modified_by']) t.true(paths.includes(name), name);
  t.false(paths.includes('password'));
  for (const field of fields) t.truthy(field.summary && field.source && field.format);
});

test('cluster time and database are public', async (t) => {
  const h = await startTestHead(t);
  const time = await h.call('GET', '/cluster/time');
  t.true(Math.abs((time.json.data as { time: number }).time - Date.now() / 1000) < 60);
  const db = (await h.call('GET', '/cluster/database')).json.data as { engine: string; objects: Record<string, number> };
  t.is(db.engine, 'lmdb');
  t.is(db.objects.admin, 1);
});
