// A full data directory (issue 19, item 1): an upload that cannot be stored answers 507 with a
// reason, the process stays up and goes on serving /boot and TFTP, and space freed through the
// API can be used again. On a small tmpfs mounted by the test (root only).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ChunkStore } from '../src/store/chunks.js';
import { startTestHead } from './helpers/head.js';
import { rawRequest, sha256, upload } from './helpers/http-raw.js';
import { seededBuffer } from './helpers/seeded-bytes.js';
import { curl, runClient } from './tftp/fixture.js';

const MiB = 1024 * 1024;
const asRoot = process.getuid?.() === 0;

/** A fresh tmpfs of `size` (e.g. "48m"), unmounted at teardown. */
function mountTmpfs(t: { teardown(fn: () => unknown): void }, size: string): string {
  const mountPoint = mkdtempSync(join(tmpdir(), 'keel-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mountPoint]);
  t.teardown(() => {
    // Lazy: the head's teardown may run after this one and still have the store's file open.
    execFileSync('umount', ['-l', mountPoint]);
    rmdirSync(mountPoint);
  });
  return mountPoint;
}

(asRoot ? test : test.skip)('a full data directory answers 507, keeps serving /boot and TFTP, and uploads work again after freeing space', async (t) => {
  const dataDir = join(mountTmpfs(t, '48m'), 'data');
  mkdirSync(dataDir);
  // No floor: the uploads run into the full file system itself (LMDB's failed commit).
  const h = await startTestHead(t, { KEEL_SERVER_DATA_DIR: dataDir, KEEL_STORE_MIN_FREE_BYTES: '0' });
  const token = (await h.login()).access_token;
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const bootBase = h.base.replace('/api/v1', '/boot');

  const kernel = await seededBuffer(1, 3 * MiB + 17);
  t.is((await call('POST', '/images', { name: 'boot' })).status, 200);
  t.is((await upload(`${h.base}/image/boot/content`, token, 1, kernel.length)).status, 200);
  const ipxe = await seededBuffer(2, 200_000);
  await new ChunkStore(h.head.store).putFile('tftp/ipxe.efi', Readable.from([ipxe]));

  const filled: string[] = [];
  let refused: Awaited<ReturnType<typeof upload>> | undefined;
  for (let i = 0; i < 30 && refused === undefined; i++) {
    t.is((await call('POST', '/images', { name: `fill${i}` })).status, 200);
    const put = await upload(`${h.base}/image/fill${i}/content`, token, 100 + i, 4 * MiB);
    if (put.status === 200) filled.push(`fill${i}`);
    else refused = put;
  }
  t.truthy(refused, 'the tmpfs never filled');
  t.is(refused!.status, 507, JSON.stringify(refused!.json));
  t.regex(refused!.json.reason ?? '', /^Insufficient storage: .* available in the data directory/);
  t.true(filled.length >= 5, `only ${filled.length} uploads fitted`);

  // lmdb-js's orphaned commit promise used to end the process about a second after the refusal.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const boot = await rawRequest(`${bootBase}/image/boot`);
  t.is(boot.status, 200);
  t.is(sha256(boot.body), sha256(kernel));
  const tftp = await runClient(t, 'curl', curl(h.head.tftpPort, 'ipxe.efi', 1468));
  t.is(sha256(tftp.data ?? Buffer.alloc(0)), sha256(ipxe));
  t.is((await upload(`${h.base}/image/again/content`, token, 7, 4 * MiB)).status, 404, 'still answering the API');
  t.is((await call('POST', '/images', { name: 'again' })).status, 200);
  t.is((await upload(`${h.base}/image/again/content`, token, 7, 4 * MiB)).status, 507, 'still full');

  for (const name of filled.slice(0, 3)) t.is((await call('DELETE', `/image/${name}/content`)).status, 200);
  const freed = await call('DELETE', '/head/files/unused');
  t.is(freed.status, 200);
  t.true((freed.json.data as { bytes: number }).bytes >= 12 * MiB);
  const again = await upload(`${h.base}/image/again/content`, token, 7, 4 * MiB);
  t.is(again.status, 200, JSON.stringify(again.json));
  const back = await rawRequest(`${bootBase}/image/again`);
  t.is(sha256(back.body), sha256(await seededBuffer(7, 4 * MiB)));
  t.deepEqual(h.head.model.chunks.check(), []);
});

test('below store.min_free_bytes an upload is refused at once with 507 naming the floor, and nothing is stored', async (t) => {
  const h = await startTestHead(t, { KEEL_STORE_MIN_FREE_BYTES: String(2 ** 50) });
  const token = (await h.login()).access_token;
  t.is((await h.call('POST', '/images', { token, body: { name: 'img' } })).status, 200);
  const put = await upload(`${h.base}/image/img/content`, token, 1, 2 * MiB);
  t.is(put.status, 507);
  t.regex(put.json.reason ?? '', /writes need at least 1073741824\.0 MiB \(store\.min_free_bytes\)/);
  t.is((await h.call('GET', '/image/img/content/stat', { token })).status, 404);
  t.is(h.head.model.chunks.stats().chunks, 0);
});
