// Repos with a locally hosted ISO, and distros referencing repos by name.
import test from 'ava';
import { rawRequest, upload } from './helpers/http-raw.js';
import { seededBuffer } from './helpers/seeded-bytes.js';
import { startTestHead } from './helpers/head.js';

test('repo ISO: upload, stat, download with a range, delete keeps the repo; distros take repo names', async (t) => {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const repo = (await call('POST', '/repos', { name: 'baseos', urls: ['http://mirror/baseos'], disable: [false] })).json.data as string;
  t.is((await call('POST', '/repos', { name: 'bad', disable: 'no' })).status, 400);

  // An ISO 9660 volume descriptor ("CD001" at 0x8001) makes the format iso9660.
  const iso = await seededBuffer(41, 40_000);
  iso.write('CD001', 0x8001, 'latin1');
  t.is((await rawRequest(`${h.base}/repo/baseos/iso`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: iso })).status, 200);
  t.deepEqual(Object.keys((await call('GET', '/repo/baseos/iso/stat')).json.data as object).sort(), ['mtime', 'size']);
  t.like((await call('GET', '/repo/baseos')).json.data, { iso: { size: 40_000, fmt: 'iso9660' } });
  const part = await rawRequest(`${h.base}/repo/${repo}/iso`, { headers: { authorization: `Bearer ${token}`, range: 'bytes=32769-32773' } });
  t.is(part.status, 206);
  t.is(part.body.toString('latin1'), 'CD001');
  t.is((await call('DELETE', '/repo/baseos/iso')).status, 200);
  t.is((await call('GET', '/repo/baseos/iso/stat')).status, 404);
  t.is((await call('GET', '/repo/baseos')).status, 200, 'the repo itself remains');
  t.is((await upload(`${h.base}/repo/nope/iso`, token, 1, 10)).status, 404);

  const distro = await call('POST', '/distros', { name: 'rocky', repos: ['baseos'] });
  t.is(distro.status, 200);
  t.like((await call('GET', '/distro/rocky')).json.data, { repos: [repo], packaging: 'rpm' });
  t.is((await call('POST', '/distros', { name: 'x', repos: ['nope'] })).status, 400);
  t.is((await call('POST', '/distros', { name: 'y', packaging: 'pkgsrc' })).status, 400);
});
