// Images and their content over real HTTP: streamed uploads with checksums, client abort, dedup,
// GC through /head/files/unused, frozen images, references, format detection.
import test from 'ava';
import { seededBuffer, seededSha256 } from './helpers/seeded-bytes.js';
import { abortedUpload, rawRequest, sha256, upload } from './helpers/http-raw.js';
import { startTestHead, type TestHead } from './helpers/head.js';

const MiB = 1024 * 1024;
const SIZE = 3 * MiB + 12345; // four chunks, the last one partial

async function setup(t: Parameters<typeof startTestHead>[0]) {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  return { h, token, call, chunks: h.head.model.chunks };
}

async function createImage(call: (m: string, p: string, b?: unknown) => ReturnType<TestHead['call']>, name: string, extra = {}): Promise<string> {
  const res = await call('POST', '/images', { name, ...extra });
  if (res.status !== 200) throw new Error(`create image: ${JSON.stringify(res.json)}`);
  return res.json.data as string;
}

test('upload with a matching checksum, download, stat, info, HEAD', async (t) => {
  const { h, token, call } = await setup(t);
  const uid = await createImage(call, 'img1');
  const expected = await seededSha256(1, SIZE);
  const put = await upload(`${h.base}/image/img1/content`, token, 1, SIZE, { 'x-checksum-sha256': expected.toUpperCase() });
  t.is(put.status, 200, JSON.stringify(put.json));

  const got = await rawRequest(`${h.base}/image/${uid}/content`, { headers: { authorization: `Bearer ${token}` } });
  t.is(got.status, 200);
  t.is(got.headers['content-length'], String(SIZE));
  t.is(got.headers.etag, `"${expected}"`);
  t.is(sha256(got.body), expected);

  const stat = await call('GET', '/image/img1/content/stat');
  t.is((stat.json.data as { size: number }).size, SIZE);
  const info = (await call('GET', '/image/img1/content/info')).json.data as Record<string, unknown>;
  t.is(info.size, SIZE);
  t.regex(info.chksum as string, /^sha1:[0-9a-f]{40}$/);
  t.is(info.refcnt, 1);
  t.is(info.fmt, 'raw');

  const head = await rawRequest(`${h.base}/image/img1/content`, { method: 'HEAD', headers: { authorization: `Bearer ${token}` } });
  t.is(head.status, 200);
  t.is(head.headers['content-length'], String(SIZE));
  t.is(head.body.length, 0);

  // The record shows its content's facts.
  // The record shows its content's facts under the detected format (spec 001's shape).
  const record = (await call('GET', '/image/img1')).json.data as { content: Record<string, { size: number; chksum: string; filename: string; uid: string }> };
  t.deepEqual(Object.keys(record.content), ['raw']);
  t.like(record.content.raw, { size: SIZE, chksum: info.chksum as string, filename: `image/${uid}/content`, uid: expected.slice(0, 32) });

  // ?sha256= works too, and sha1.
  const sha1 = (info.chksum as string).slice(5);
  t.is((await upload(`${h.base}/image/img1/content?sha1=${sha1}`, token, 1, SIZE)).status, 200);
});

test('checksum mismatch and malformed checksums are 400s that keep the old content', async (t) => {
  const { h, token, call, chunks } = await setup(t);
  await createImage(call, 'img');
  t.is((await upload(`${h.base}/image/img/content`, token, 1, SIZE)).status, 200);
  const before = (await call('GET', '/image/img/content/info')).json.data;

  const wrong = await upload(`${h.base}/image/img/content?sha256=${'0'.repeat(64)}`, token, 2, SIZE);
  t.is(wrong.status, 400);
  t.regex(wrong.json.reason!, /sha256 mismatch/);
  t.deepEqual((await call('GET', '/image/img/content/info')).json.data, before);
  // The rejected upload's chunks are garbage, and only they are.
  const unused = (await call('GET', '/head/files/unused')).json.data as { count: number; bytes: number };
  t.is(unused.count, 4);
  t.is(unused.bytes, SIZE);

  const malformed = await upload(`${h.base}/image/img/content`, token, 2, 1000, { 'x-checksum-sha256': 'xyz' });
  t.is(malformed.status, 400);
  t.regex(malformed.json.reason!, /Malformed sha256 checksum/);
  const badMtime = await upload(`${h.base}/image/img/content?mtime=soon`, token, 2, 1000);
  t.is(badMtime.status, 400);
  t.deepEqual(chunks.check(), []);
});

test('a client abort mid-upload leaves the old content; GC reclaims the partial chunks', async (t) => {
  const { h, token, call, chunks } = await setup(t);
  await createImage(call, 'img');
  t.is((await upload(`${h.base}/image/img/content`, token, 1, SIZE)).status, 200);
  const expected = await seededSha256(1, SIZE);

  await abortedUpload(`${h.base}/image/img/content`, token, 7, 8 * MiB, 5 * MiB);
  // The server notices the abort asynchronously: wait until the partial chunks are unpinned.
  let unused = { count: 0, bytes: 0 };
  for (let i = 0; i < 50 && unused.count < 5; i++) {
    await new Promise((r) => setTimeout(r, 100));
    unused = (await call('GET', '/head/files/unused')).json.data as typeof unused;
  }
  t.is(unused.count, 5, 'five full chunks were written before the abort');
  const got = await rawRequest(`${h.base}/image/img/content`, { headers: { authorization: `Bearer ${token}` } });
  t.is(sha256(got.body), expected);

  const freed = (await call('DELETE', '/head/files/unused')).json.data as { count: number; bytes: number };
  t.is(freed.count, 5);
  t.is(freed.bytes, 5 * MiB);
  t.is(((await call('GET', '/head/files/unused')).json.data as { count: number }).count, 0);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('dedup: the same file under two images is stored once with refcnt 2; GC after deletes', async (t) => {
  const { h, token, call, chunks } = await setup(t);
  await createImage(call, 'a');
  await createImage(call, 'b');
  t.is((await upload(`${h.base}/image/a/content`, token, 3, SIZE)).status, 200);
  t.is((await upload(`${h.base}/image/b/content`, token, 3, SIZE)).status, 200);
  t.is(chunks.stats().chunks, 4);
  t.is(((await call('GET', '/image/a/content/info')).json.data as { refcnt: number }).refcnt, 2);
  t.is(((await call('GET', '/image/b/content/info')).json.data as { refcnt: number }).refcnt, 2);

  t.is((await call('DELETE', '/image/a')).status, 200);
  t.is(((await call('GET', '/image/b/content/info')).json.data as { refcnt: number }).refcnt, 1);
  t.is(((await call('GET', '/head/files/unused')).json.data as { count: number }).count, 0, 'b still uses every chunk');

  t.is((await call('DELETE', '/image/b/content')).status, 200);
  const missing = await call('GET', '/image/b/content/stat');
  t.is(missing.status, 404);
  t.regex(missing.json.reason!, /has no content/);
  t.is(((await call('GET', '/head/files/unused')).json.data as { bytes: number }).bytes, SIZE);
  t.is(((await call('DELETE', '/head/files/unused')).json.data as { count: number }).count, 4);
  t.is(chunks.stats().chunks, 0);
  t.deepEqual(chunks.check(), []);
});

test('frozen images refuse changes to the record and its content until unfrozen', async (t) => {
  const { h, token, call } = await setup(t);
  await createImage(call, 'img');
  t.is((await upload(`${h.base}/image/img/content`, token, 1, 1000)).status, 200);
  t.is((await call('PATCH', '/image/img', { frozen: true })).status, 200);
  for (const [method, path, body] of [['PATCH', '/image/img', { description: 'x' }], ['DELETE', '/image/img'], ['DELETE', '/image/img/content']] as const) {
    const res = await call(method, path, body);
    t.is(res.status, 400, `${method} ${path}`);
    t.is(res.json.reason, 'Cannot modify frozen image.');
  }
  const put = await upload(`${h.base}/image/img/content`, token, 2, 1000);
  t.is(put.status, 400);
  t.is(put.json.reason, 'Cannot modify frozen image.');
  t.is(((await call('GET', '/image/img/content/info')).json.data as { size: number }).size, 1000);
  t.is((await call('PATCH', '/image/img', { frozen: false })).status, 200);
  t.is((await upload(`${h.base}/image/img/content`, token, 2, 2000)).status, 200);
  t.is((await call('DELETE', '/image/img')).status, 200);
});

test('parent and distro are accepted by name and stored as uids (shown by name); unknown ones are 400s', async (t) => {
  const { h, call } = await setup(t);
  const base = await createImage(call, 'base');
  const distro = (await call('POST', '/distros', { name: 'rocky9', release: '9.4' })).json.data as string;
  const child = await createImage(call, 'child', { parent: 'base', distro: 'rocky9' });
  const record = (await call('GET', `/image/${child}`)).json.data as Record<string, unknown>;
  t.is(record.parent, 'base');
  t.is(h.head.model.objectsNamed('image').collection.get(child)!.parent, base, 'parent stored as the uid');
  t.is(record.distro, 'rocky9');
  t.is(h.head.model.objectsNamed('image').collection.get(child)!.distro, distro, 'stored as the uid');
  // A rename of the distro shows at once (the image's cached view is dropped), the link holds.
  t.is((await call('PATCH', '/distro/rocky9', { name: 'rocky9.4' })).status, 200);
  t.is(((await call('GET', `/image/${child}`)).json.data as Record<string, unknown>).distro, 'rocky9.4');
  t.is(((await call('GET', '/image/base')).json.data as Record<string, unknown>).parent, null, 'parent: null when unset');
  const bad = await call('POST', '/images', { name: 'x', parent: 'nope' });
  t.is(bad.status, 400);
  t.is(bad.json.reason, "Field 'parent': no image found for ID=nope");
  t.is((await call('PATCH', '/image/child', { distro: 'nope' })).status, 400);
  const readOnly = await call('PATCH', '/image/child', { content: {} });
  t.is(readOnly.status, 400);
  t.regex(readOnly.json.reason!, /^Read-only field\(s\), set by keel: content \(The file system/);
});

test('format detection, empty content, capture, multipart and auth refusals', async (t) => {
  const { h, token, call } = await setup(t);
  await createImage(call, 'sq');
  // A squashfs superblock starts with the magic "hsqs".
  const squash = Buffer.concat([Buffer.from('hsqs'), await seededBuffer(5, 5000)]);
  const put = await rawRequest(`${h.base}/image/sq/content`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: squash });
  t.is(put.status, 200);
  t.is(((await call('GET', '/image/sq/content/info')).json.data as { fmt: string }).fmt, 'squashfs');

  await createImage(call, 'empty');
  t.is((await upload(`${h.base}/image/empty/content`, token, 1, 0)).status, 200);
  const got = await rawRequest(`${h.base}/image/empty/content`, { headers: { authorization: `Bearer ${token}` } });
  t.is(got.status, 200);
  t.is(got.headers['content-length'], '0');
  t.is(((await call('GET', '/image/empty/content/info')).json.data as { fmt: string }).fmt, 'empty');

  const capture = await call('GET', '/image/sq/capture');
  t.is(capture.status, 501);
  t.regex(capture.json.reason!, /not implemented/);

  const multipart = await rawRequest(`${h.base}/image/sq/content`, {
    method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/form-data; boundary=x' }, body: Buffer.from('--x--'),
  });
  t.is(multipart.status, 415);

  // No token: refused before the body is read; the big body is not waited for.
  const anonymous = await rawRequest(`${h.base}/image/sq/content`, { method: 'PUT', headers: { 'content-length': String(64 * MiB) }, body: Buffer.alloc(1024) }).catch((err: Error) => err);
  t.true(anonymous instanceof Error || anonymous.status === 401);
  const unknown = await upload(`${h.base}/image/nope/content`, token, 1, 1000);
  t.is(unknown.status, 404);
  t.is(unknown.json.reason, 'No image found for ID=nope');
});

test('chunked uploads (how files of 1 GB and more must be sent) stream the same way', async (t) => {
  const { h, token, call } = await setup(t);
  await createImage(call, 'big');
  const { execa } = await import('execa');
  const bytes = await seededBuffer(9, 2 * MiB + 3);
  const { stdout } = await execa('curl', ['-sf', '-T', '-', '-H', 'Transfer-Encoding: chunked', '-H', `Authorization: Bearer ${token}`, `${h.base}/image/big/content`], { input: bytes });
  t.like(JSON.parse(stdout), { success: true, data: { size: bytes.length } });
  const got = await rawRequest(`${h.base}/image/big/content`, { headers: { authorization: `Bearer ${token}` } });
  t.true(got.body.equals(bytes));
});
