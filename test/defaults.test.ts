// DefaultImage and DefaultBoot (issue 15, item 4): `keel init --assets DIR`, the first start of
// `keel serve` with boot.assets_dir, never overwriting, new nodes' `_boot_config`, and spec 001's
// boot-config and node examples replayed as written on a fresh store.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ASSET_FILES, DEFAULT_CMDLINE, defaultObjectsAtStart, ensureDefaultObjects } from '../src/model/default-objects.js';
import { Model } from '../src/model/model.js';
import { Store } from '../src/store/store.js';
import { startTestHead } from './helpers/head.js';

const main = join(import.meta.dirname, '..', 'src', 'main.ts');
const keel = (args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', main, ...args], { env: { ...process.env, KEEL_ADMIN_PASSWORD: '' } });

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Small stand-ins for images/build.sh's output, each with its format's magic so `fmt` is real. */
function fakeAssets(t: ExecutionContext): { dir: string; kernel: Buffer; initramfs: Buffer; rootfs: Buffer } {
  const dir = tempDir(t, 'keel-assets-');
  const kernel = randomBytes(6 * 1024);
  kernel.write('HdrS', 0x202, 'latin1'); // x86 bzImage header
  const initramfs = Buffer.concat([Buffer.from('070701', 'latin1'), randomBytes(5 * 1024)]);
  const rootfs = Buffer.concat([Buffer.from('hsqs', 'latin1'), randomBytes(12 * 1024)]);
  writeFileSync(join(dir, ASSET_FILES.kernel), kernel);
  writeFileSync(join(dir, ASSET_FILES.initramfs), initramfs);
  writeFileSync(join(dir, ASSET_FILES.content), rootfs);
  return { dir, kernel, initramfs, rootfs };
}

async function bytes(base: string, token: string, path: string): Promise<Buffer> {
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

test('keel init --assets creates DefaultImage and DefaultBoot, and a fresh store walks spec 001\'s boot-config example', async (t) => {
  const assets = fakeAssets(t);
  const dataDir = tempDir(t, 'keel-init-');
  const first = await keel(['init', '--assets', assets.dir, '--data-dir', dataDir]);
  t.is(first.stdout, 'created DefaultImage\ncreated DefaultBoot\n');
  t.is((await keel(['init', '--assets', assets.dir, '--data-dir', dataDir])).stdout, 'kept DefaultImage (exists)\nkept DefaultBoot (exists)\n');

  const h = await startTestHead(t, { KEEL_SERVER_DATA_DIR: dataDir });
  const { access_token: token } = await h.login();
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const whileRunning = (await keel(['init', '--assets', assets.dir, '--data-dir', dataDir]).catch((err: unknown) => err)) as { code: number; stderr: string };
  t.is(whileRunning.code, 1);
  t.is(whileRunning.stderr, `keel is running on ${dataDir}: stop it first, or upload through its API (keel image import, keel bootconfig create)\n`);

  // "Create a new Boot Config, using an existing DefaultImage as the base image"
  const created = await call('POST', '/bootconfigs', { name: 'NewBoot', image: 'DefaultImage' });
  t.is(created.status, 200);
  t.regex(created.json.data as string, /^[0-9a-f]{32}$/);
  // "Verify the data"
  const newBoot = (await call('GET', '/bootconfig/NewBoot')).json.data as Record<string, unknown>;
  t.like(newBoot, { name: 'NewBoot', image: 'DefaultImage', uid: created.json.data, last_modified_by: 'admin' });
  // "Set it to be frozen", then "attempt to modify the description"
  t.deepEqual((await call('PATCH', '/bootconfig/NewBoot', { frozen: true })).json, { success: true });
  t.deepEqual((await call('PATCH', '/bootconfig/NewBoot', { description: 'new description' })).json, { success: false, reason: 'Cannot modify frozen boot configuration.' });
  // "Using the existing DefaultBoot (created during installation), download its kernel and initramfs"
  t.deepEqual(await bytes(h.base, token, '/bootconfig/DefaultBoot/kernel'), assets.kernel);
  t.deepEqual(await bytes(h.base, token, '/bootconfig/DefaultBoot/initramfs'), assets.initramfs);

  // The image example: "Look at an existing Image (DefaultImage will be created at installation)".
  t.like((await call('GET', '/image/DefaultImage')).json.data as object, { name: 'DefaultImage' });
  t.like((await call('GET', '/image/DefaultImage/content/info')).json.data as object, { size: assets.rootfs.length, refcnt: 1, fmt: 'squashfs' });
  t.deepEqual(await bytes(h.base, token, '/image/DefaultImage/content'), assets.rootfs);
  const defaultBoot = (await call('GET', '/bootconfig/DefaultBoot')).json.data as Record<string, unknown>;
  t.like(defaultBoot, { image: 'DefaultImage', boot_style: 'rwram', cmdline: DEFAULT_CMDLINE, kernel: { fmt: 'linux-kernel' }, initramfs: { fmt: 'cpio' } });
  t.is((await call('GET', '/bootconfig/DefaultBoot/errors')).status, 200, 'DefaultBoot lacks nothing');
});

test('spec 001\'s node example: a new node gets _boot_config DefaultBoot, unless it has one or DefaultBoot is missing', async (t) => {
  const assets = fakeAssets(t);
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  // No DefaultBoot yet: nothing is named that is not there.
  const before = (await call('POST', '/nodes', { mac: '52:54:00:00:00:01' })).json.data as string;
  t.deepEqual(((await call('GET', `/node/${before}`)).json.data as { attributes: object }).attributes, {});

  t.deepEqual((await ensureDefaultObjects(h.head.model, assets.dir, 'test')).created, ['DefaultImage', 'DefaultBoot']);
  // "Create a new node" … "Verify the node's data"
  const uid = (await call('POST', '/nodes', { mac: '11:22:33:44:55:66' })).json.data as string;
  t.like((await call('GET', `/node/${uid}`)).json.data as object, { mac: '11:22:33:44:55:66', attributes: { _boot_config: 'DefaultBoot' }, groups: [], hardware: {}, power_uri: null });
  // "Set attributes on the node itself" … "grabbing just the attributes"
  t.deepEqual((await call('PATCH', `/node/${uid}/attributes`, { ipmi_user: 'service', ipmi_pass: 'servicepass' })).json, { success: true });
  t.deepEqual((await call('GET', `/node/${uid}/attributes`)).json.data, { _boot_config: 'DefaultBoot', ipmi_user: 'service', ipmi_pass: 'servicepass' });
  t.deepEqual(((await call('GET', `/node/${before}`)).json.data as { attributes: object }).attributes, {}, 'existing nodes are not changed');

  // Its own _boot_config, or one from a group it joins, wins: no own DefaultBoot to override the group's.
  const own = (await call('POST', '/nodes', { mac: '52:54:00:00:00:02', attributes: { _boot_config: 'Rocky' } })).json.data as string;
  t.deepEqual(((await call('GET', `/node/${own}`)).json.data as { attributes: object }).attributes, { _boot_config: 'Rocky' });
  t.is((await call('POST', '/attribs', { name: 'rocky-nodes', attributes: { _boot_config: 'Rocky' } })).status, 200);
  const grouped = (await call('POST', '/nodes', { mac: '52:54:00:00:00:03', groups: ['rocky-nodes'] })).json.data as string;
  t.deepEqual(((await call('GET', `/node/${grouped}`)).json.data as { attributes: object }).attributes, {});
  t.is(((await call('GET', `/node/${grouped}/attributes`)).json.data as { _boot_config: string })._boot_config, 'Rocky');
  // A PUT of an existing node is no creation: what it sends is what it gets.
  t.is((await call('PUT', `/node/${uid}`, { mac: '11:22:33:44:55:66' })).status, 200);
  t.deepEqual(((await call('GET', `/node/${uid}`)).json.data as { attributes: object }).attributes, {});
});

test('existing objects are never overwritten, and a failed init says which assets are missing', async (t) => {
  const assets = fakeAssets(t);
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  t.is((await call('POST', '/images', { name: 'DefaultImage', description: 'mine' })).status, 200);
  const result = await ensureDefaultObjects(h.head.model, assets.dir, 'test');
  t.deepEqual(result, { created: ['DefaultBoot'], existing: ['DefaultImage'] });
  t.like((await call('GET', '/image/DefaultImage')).json.data as object, { description: 'mine' });
  t.is((await call('GET', '/image/DefaultImage/content/stat')).status, 404, 'its (absent) content stays absent');
  t.deepEqual(await bytes(h.base, token, '/bootconfig/DefaultBoot/kernel'), assets.kernel);

  unlinkSync(join(assets.dir, ASSET_FILES.initramfs));
  unlinkSync(join(assets.dir, ASSET_FILES.content));
  const dataDir = tempDir(t, 'keel-init-');
  const failed = (await keel(['init', '--assets', assets.dir, '--data-dir', dataDir]).catch((err: unknown) => err)) as { code: number; stderr: string };
  t.is(failed.code, 1);
  t.is(failed.stderr, `${assets.dir} lacks initramfs.img, rootfs.squashfs (images/build.sh makes them)\n`);
});

test('keel serve creates the defaults at the first start that finds the assets, and not again once deleted', async (t) => {
  const assets = fakeAssets(t);
  const h = await startTestHead(t, { KEEL_BOOT_ASSETS_DIR: assets.dir });
  const { access_token: token } = await h.login();
  t.deepEqual(await bytes(h.base, token, '/bootconfig/DefaultBoot/initramfs'), assets.initramfs);
  t.deepEqual(await bytes(h.base, token, '/image/DefaultImage/content'), assets.rootfs);

  // The start-up step itself, on a store of its own: a directory without assets is tried again
  // at the next start; once made, an admin's deletion is final for starts (keel init brings it back).
  const dataDir = tempDir(t, 'keel-start-');
  const store = new Store({ dataDir, headName: 'test' });
  t.teardown(() => store.close());
  const model = new Model(store, { dataDir });
  const empty = tempDir(t, 'keel-no-assets-');
  t.deepEqual(await defaultObjectsAtStart(model, null, 'keel'), undefined);
  t.deepEqual(await defaultObjectsAtStart(model, empty, 'keel'), { dir: empty, missing: ['vmlinuz', 'initramfs.img', 'rootfs.squashfs'] });
  t.deepEqual(await defaultObjectsAtStart(model, assets.dir, 'keel'), { dir: assets.dir, created: ['DefaultImage', 'DefaultBoot'], existing: [] });
  await model.bootConfigs.remove('admin', 'DefaultBoot');
  t.is(await defaultObjectsAtStart(model, assets.dir, 'keel'), undefined);
  t.is(model.bootConfigs.find('DefaultBoot'), undefined);
  t.deepEqual(await ensureDefaultObjects(model, assets.dir, 'keel'), { created: ['DefaultBoot'], existing: ['DefaultImage'] });
  t.deepEqual(readFileSync(join(assets.dir, ASSET_FILES.kernel)), assets.kernel, 'the assets are read, never changed');
});
