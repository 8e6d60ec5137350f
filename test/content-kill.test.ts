// kill -9 of a real `keel serve` around image uploads over HTTP: an upload that was answered 200
// survives the kill; one cut by the kill leaves the previous content whole, and the chunks it had
// written are reported by /head/files/unused after the restart and freed by its DELETE.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawRequest, sha256, upload } from './helpers/http-raw.js';
import { seededBytes, seededSha256 } from './helpers/seeded-bytes.js';
import { serveKeel, type ServedKeel } from './helpers/keel-serve.js';

const MiB = 1024 * 1024;

/** Starts a PUT of `size` declared bytes and sends only `sent` of them; resolves once they are written. */
async function partialUpload(url: string, token: string, seed: number, size: number, sent: number): Promise<void> {
  const req = request(url, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-length': String(size) } });
  req.on('error', () => undefined); // the server is killed under it
  for await (const piece of seededBytes(seed, sent)) if (!req.write(piece)) await new Promise((r) => req.once('drain', r));
}

const contentSha = async (keel: ServedKeel, image: string) =>
  sha256((await rawRequest(`${keel.api}/image/${image}/content`, { headers: { authorization: `Bearer ${keel.token}` } })).body);

test('kill -9 after an answered upload keeps it; kill -9 mid-upload keeps the old content and GC frees the rest', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), `keel-kill-${process.pid}-`));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));

  let keel = await serveKeel(t, dataDir);
  t.is((await keel.call('POST', '/images', { name: 'img' })).status, 200);
  const first = await upload(`${keel.api}/image/img/content`, keel.token, 1, 3 * MiB + 7);
  t.is(first.status, 200, JSON.stringify(first.json));
  await keel.kill(); // right after the 200

  keel = await serveKeel(t, dataDir);
  t.is(await contentSha(keel, 'img'), await seededSha256(1, 3 * MiB + 7), 'the answered upload survived kill -9');

  // 6 of 16 MiB sent, then the server is killed while the client is still sending.
  await partialUpload(`${keel.api}/image/img/content`, keel.token, 2, 16 * MiB, 6 * MiB);
  // Until its chunks are on disk the kill would test nothing: wait for the server to have read them.
  await new Promise((r) => setTimeout(r, 500));
  await keel.kill();

  keel = await serveKeel(t, dataDir);
  t.is(await contentSha(keel, 'img'), await seededSha256(1, 3 * MiB + 7), 'the interrupted upload left the old content');
  const unused = (await keel.call('GET', '/head/files/unused')).json.data as { count: number; bytes: number };
  t.true(unused.count >= 1 && unused.count <= 6, `chunks of the cut upload left for GC: ${JSON.stringify(unused)}`);
  t.is(unused.bytes, unused.count * MiB, 'only full 1 MiB chunks of the cut upload');
  const freed = (await keel.call('DELETE', '/head/files/unused')).json.data as { count: number; bytes: number };
  t.deepEqual(freed, unused);
  t.is(((await keel.call('GET', '/head/files/unused')).json.data as { count: number }).count, 0);
  t.is(await contentSha(keel, 'img'), await seededSha256(1, 3 * MiB + 7), 'GC kept the live content');
  const info = (await keel.call('GET', '/image/img/content/info')).json.data as { size: number };
  t.is(info.size, 3 * MiB + 7);
  await keel.kill();
});
