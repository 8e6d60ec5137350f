// Boot configs over real HTTP: fields and references, frozen, kernel/initramfs, boot paths,
// kickstart files and per-node rendering, consistency checks, export → import.
import test from 'ava';
import { execa } from 'execa';
import { rawRequest, sha256, upload } from './helpers/http-raw.js';
import { seededBuffer } from './helpers/seeded-bytes.js';
import { startTestHead } from './helpers/head.js';

async function setup(t: Parameters<typeof startTestHead>[0]) {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const boot = `http://127.0.0.1:${h.head.httpPort}/boot`;
  return { h, token, call, boot };
}

test('fields, boot_style, image by name stored as uid and shown by name, frozen', async (t) => {
  const { h, call } = await setup(t);
  const image = (await call('POST', '/images', { name: 'DefaultImage' })).json.data as string;
  const created = await call('POST', '/bootconfigs', { name: 'NewBoot', image: 'DefaultImage', cmdline: 'quiet', kickstart: 'ks.cfg' });
  t.is(created.status, 200);
  const record = (await call('GET', '/bootconfig/NewBoot')).json.data as Record<string, unknown>;
  t.is(record.image, 'DefaultImage');
  t.is(h.head.model.bootConfigs.collection.get(created.json.data as string)!.image, image, 'stored as the uid');
  // Accepted by uid as well; a rename of the image shows at once and the link holds.
  t.is((await call('PATCH', '/bootconfig/NewBoot', { image })).status, 200);
  t.is((await call('PATCH', `/image/${image}`, { name: 'Renamed' })).status, 200);
  t.is(((await call('GET', '/bootconfig/NewBoot')).json.data as Record<string, unknown>).image, 'Renamed');
  t.is((await call('PATCH', `/image/${image}`, { name: 'DefaultImage' })).status, 200);
  t.is(record.boot_style, 'rwram');
  t.is(record.cmdline, 'quiet');
  const badStyle = await call('PATCH', '/bootconfig/NewBoot', { boot_style: 'floppy' });
  t.is(badStyle.status, 400);
  t.regex(badStyle.json.reason!, /boot_style.*one of rwram, roram, iscsi, next, disked, sanboot, live/);
  t.is((await call('PATCH', '/bootconfig/NewBoot', { image: 'nope' })).status, 400);
  t.is((await call('PATCH', '/bootconfig/NewBoot', { frozen: true })).status, 200);
  const frozen = await call('PATCH', '/bootconfig/NewBoot', { description: 'new description' });
  t.deepEqual(frozen.json, { success: false, reason: 'Cannot modify frozen boot configuration.' });
  t.is((await call('DELETE', '/bootconfig/NewBoot/kernel')).status, 404, 'no kernel to delete');
  t.is((await call('PATCH', '/bootconfig/NewBoot', { frozen: false })).status, 200);
  t.is((await call('GET', '/bootconfigs/mkiso')).status, 501);
});

test('kernel and initramfs: upload, download, boot paths, errors until complete', async (t) => {
  const { h, token, call, boot } = await setup(t);
  await call('POST', '/images', { name: 'img' });
  await call('POST', '/bootconfigs', { name: 'bc', image: 'img' });
  const before = await call('GET', '/bootconfig/bc/errors');
  t.is(before.status, 400);
  t.is(before.json.reason, 'Boot config bc: no kernel; no initramfs; image img has no content');
  t.is((await call('GET', '/bootconfigs/errors')).status, 400);

  t.is((await upload(`${h.base}/bootconfig/bc/kernel`, token, 21, 300_000)).status, 200);
  t.is((await upload(`${h.base}/bootconfig/bc/initramfs`, token, 22, 1_500_000)).status, 200);
  t.is((await upload(`${h.base}/image/img/content`, token, 23, 2_000_000)).status, 200);
  t.is((await call('GET', '/bootconfig/bc/errors')).status, 200);
  t.is((await call('GET', '/bootconfigs/errors')).status, 200);

  const kernel = await rawRequest(`${h.base}/bootconfig/bc/kernel`, { headers: { authorization: `Bearer ${token}` } });
  t.true(kernel.body.equals(await seededBuffer(21, 300_000)));
  t.is(((await call('GET', '/bootconfig/bc/initramfs/stat')).json.data as { size: number }).size, 1_500_000);
  // The boot path: no token, same bytes.
  t.true((await rawRequest(`${boot}/bootconfig/bc/kernel`)).body.equals(kernel.body));
  t.is(sha256((await rawRequest(`${boot}/bootconfig/bc/initramfs`)).body), sha256(await seededBuffer(22, 1_500_000)));
  t.is(sha256((await rawRequest(`${boot}/bootconfig/bc/image`)).body), sha256(await seededBuffer(23, 2_000_000)));
  const manifest = JSON.parse((await rawRequest(`${boot}/bootconfig/bc/initramfs/manifest`)).body.toString()) as { size: number; chunks: string[] };
  t.is(manifest.size, 1_500_000);
  t.is(manifest.chunks.length, 2);

  t.is((await call('DELETE', '/bootconfig/bc/kernel')).status, 200);
  t.is((await rawRequest(`${boot}/bootconfig/bc/kernel`)).status, 404);
  t.is((await call('GET', '/bootconfig/bc/errors')).json.reason, 'Boot config bc: no kernel');
});

test('kickstart files: upload API, public GET, rendering for a node by ?node= and by source IP', async (t) => {
  const { h, token, call } = await setup(t);
  const template = [
    'network --hostname=<hostname> --ip=<ip>',
    '# mac <mac>, rack <rack>, unknown <nosuchvar>',
    'cat > /etc/motd <<EOF',
    'node <name> of <domain>',
    'EOF',
    '',
  ].join('\n');
  const put = await rawRequest(`${h.base}/kickstart/ks.cfg`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: Buffer.from(template) });
  t.is(put.status, 200);
  const raw = await rawRequest(`${h.base}/kickstart/ks.cfg`);
  t.is(raw.status, 200, 'public');
  t.is(raw.body.toString(), template);
  t.is((await rawRequest(`${h.base}/kickstart/..%2Fdb`)).status, 400);
  t.is((await rawRequest(`${h.base}/kickstart/missing.cfg`)).status, 404);
  t.deepEqual(((await call('GET', '/kickstarts')).json.data as { name: string }[]).map((k) => k.name), ['ks.cfg']);

  // A node on 127.0.0.0/8, so that this test's own requests come from its address.
  t.is((await call('POST', '/nets', { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 })).status, 200);
  const created = await call('POST', '/nodes', { mac: '52:54:00:aa:bb:cc', attributes: { rack: 'r12' } });
  t.is(created.status, 200, JSON.stringify(created.json));
  const node = (await call('GET', `/node/${created.json.data as string}`)).json.data as Record<string, string>;
  await call('POST', '/bootconfigs', { name: 'install', kickstart: 'ks.cfg' });

  const expected = template
    .replaceAll('<hostname>', node.name!).replaceAll('<name>', node.name!).replace('<ip>', node.ip!)
    .replace('<mac>', '52:54:00:aa:bb:cc').replace('<rack>', 'r12').replace('<domain>', node.domain!);
  const named = await rawRequest(`${h.base}/bootconfig/install/kickstart?node=${node.name}`, { headers: { authorization: `Bearer ${token}` } });
  t.is(named.status, 200);
  t.is(named.body.toString(), expected);
  t.regex(named.body.toString(), /unknown <nosuchvar>/);
  t.is((await rawRequest(`${h.base}/bootconfig/install/kickstart?node=${node.name}`)).status, 401, '?node= needs a token');
  if (node.ip === '127.0.0.1') {
    const bySource = await rawRequest(`${h.base}/bootconfig/install/kickstart`);
    t.is(bySource.status, 200);
    t.is(bySource.body.toString(), expected);
  } else t.log(`node got ${node.ip}; source-IP lookup checked only for 404`);
  t.is((await rawRequest(`${h.base}/bootconfig/install/kickstart?node=nobody`, { headers: { authorization: `Bearer ${token}` } })).status, 404);
  for (const id of ['52-54-00-AA-BB-CC', '5254.00aa.bbcc', node.uid!, node.ip!]) {
    const byId = await rawRequest(`${h.base}/bootconfig/install/kickstart?node=${id}`, { headers: { authorization: `Bearer ${token}` } });
    t.is(byId.status, 200, `?node=${id}`);
    t.is(byId.body.toString(), expected, `?node=${id}`);
  }
  await call('PATCH', '/bootconfig/install', { kickstart: 'gone.cfg' });
  t.is((await call('GET', '/bootconfig/install/errors')).json.reason, 'Boot config install: no kernel; no initramfs; boot_style rwram needs an image with content; kickstart file gone.cfg does not exist');
  t.is((await call('DELETE', '/kickstart/ks.cfg')).status, 200);
  t.is((await rawRequest(`${h.base}/kickstart/ks.cfg`)).status, 404);
});

test('export → import round trip: one tar archive with the record and both files', async (t) => {
  const { h, token, call } = await setup(t);
  await call('POST', '/bootconfigs', { name: 'src', cmdline: 'console=ttyS0', boot_style: 'roram', description: 'd' });
  await upload(`${h.base}/bootconfig/src/kernel`, token, 31, 123_457);
  await upload(`${h.base}/bootconfig/src/initramfs`, token, 32, 2_100_000);
  const archive = await rawRequest(`${h.base}/bootconfig/src/export`, { headers: { authorization: `Bearer ${token}` } });
  t.is(archive.status, 200);
  t.is(archive.headers['content-type'], 'application/x-tar');
  t.is(Number(archive.headers['content-length']), archive.body.length);
  // GNU tar reads it.
  const listing = await execa('tar', ['-tvf', '-'], { input: archive.body });
  t.deepEqual(listing.stdout.split('\n').map((line) => line.split(/\s+/).at(-1)), ['bootconfig.json', 'kernel', 'initramfs']);
  t.regex(listing.stdout, /123457 .* kernel/);

  const clash = await rawRequest(`${h.base}/bootconfigs/import`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: archive.body });
  t.is(clash.status, 400);
  t.regex(JSON.parse(clash.body.toString()).reason, /already exists.*\?name=/);
  const imported = await rawRequest(`${h.base}/bootconfigs/import?name=copy`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: archive.body });
  t.is(imported.status, 200, imported.body.toString());
  const copy = (await call('GET', '/bootconfig/copy')).json.data as Record<string, unknown>;
  const original = (await call('GET', '/bootconfig/src')).json.data as Record<string, unknown>;
  for (const key of ['cmdline', 'boot_style', 'description']) t.deepEqual(copy[key], original[key], key);
  for (const slot of ['kernel', 'initramfs']) {
    const [a, b] = [copy[slot], original[slot]] as { size: number; chksum: string; mtime: number }[];
    t.is(a!.chksum, b!.chksum, slot);
    t.is(a!.size, b!.size, slot);
    t.is(a!.mtime, Math.floor(b!.mtime), `${slot}: mtime kept (whole seconds, as tar stores it)`);
  }
  const kernel = await rawRequest(`${h.base}/bootconfig/copy/kernel`, { headers: { authorization: `Bearer ${token}` } });
  t.true(kernel.body.equals(await seededBuffer(31, 123_457)));

  const garbage = await rawRequest(`${h.base}/bootconfigs/import`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: Buffer.alloc(1024, 7) });
  t.is(garbage.status, 400);
  const truncated = await rawRequest(`${h.base}/bootconfigs/import?name=x`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: archive.body.subarray(0, 5000) });
  t.is(truncated.status, 400);
  t.is((await call('GET', '/bootconfig/x')).status, 404, 'nothing half-imported');
});

test('an image, repo or distro that another record refers to cannot be deleted; a record takes its files with it', async (t) => {
  const { h, token, call } = await setup(t);
  await call('POST', '/repos', { name: 'baseos' });
  await call('POST', '/distros', { name: 'rocky9', repos: ['baseos'] });
  await call('POST', '/images', { name: 'base', distro: 'rocky9' });
  await call('POST', '/images', { name: 'child', parent: 'base' });
  await call('POST', '/bootconfigs', { name: 'bc', image: 'base', repo: 'baseos' });
  t.is((await upload(`${h.base}/image/base/content`, token, 31, 200_000)).status, 200);
  t.is((await upload(`${h.base}/bootconfig/bc/kernel`, token, 32, 100_000)).status, 200);

  const refused = async (path: string) => {
    const res = await call('DELETE', path);
    t.is(res.status, 400, path);
    return res.json.reason;
  };
  t.is(await refused('/image/base'), 'Cannot delete image base: still used by image child (parent), boot config bc (image)');
  t.is(await refused('/repo/baseos'), 'Cannot delete repo baseos: still used by boot config bc (repo), distro rocky9 (repos)');
  t.is(await refused('/distro/rocky9'), 'Cannot delete distro rocky9: still used by image base (distro)');
  t.is((await call('GET', '/image/base/content/stat')).status, 200, 'a refused delete keeps the content');

  // Once nothing refers to them, they go, and their files with them.
  t.is((await call('DELETE', '/bootconfig/bc')).status, 200);
  t.is((await call('DELETE', '/image/child')).status, 200);
  t.is((await call('DELETE', '/image/base')).status, 200);
  t.is((await call('DELETE', '/distro/rocky9')).status, 200);
  t.is((await call('DELETE', '/repo/baseos')).status, 200);
  t.deepEqual(h.head.model.chunks.list().filter((id) => !id.startsWith('tftp/')), [], 'no file of a deleted record is left');
  const unused = (await call('GET', '/head/files/unused')).json.data as { count: number };
  t.true(unused.count > 0, 'their chunks wait for GC');
});
