// `keel image import` and `keel bootconfig create` (issue 15, item 4) against a real keel on
// loopback: what they create is what the API shows, uploads are byte-exact, progress is a bar on a
// terminal and plain lines otherwise, refusals carry the API's reason and leave nothing behind.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './helpers/free-port.js';
import { ADMIN_PASSWORD, startTestHead, type TestHead } from './helpers/head.js';
import { BUNDLE, buildBundle, runKeel } from './helpers/keel-cli.js';

test.before(buildBundle);

/** The CLI, stdin a pipe given `input` (not a terminal), password from KEEL_PASSWORD unless `env` says otherwise. */
const keel = (args: string[], env: Record<string, string> = {}, input = '') => runKeel(args, { ...process.env, KEEL_PASSWORD: ADMIN_PASSWORD, ...env }, input);

function file(t: ExecutionContext, name: string, bytes: Buffer): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-upload-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

async function download(h: TestHead, token: string, path: string): Promise<Buffer> {
  const res = await fetch(h.base + path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

test('keel image import uploads a file into a new image, with plain progress lines off a terminal', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const content = Buffer.concat([Buffer.from('hsqs'), randomBytes(3 * 1024 * 1024)]);
  const path = file(t, 'rootfs.squashfs', content);
  const run = await keel(['image', 'import', path, '--name', 'Debian', '--url', `http://127.0.0.1:${h.head.httpPort}`]);
  t.is(run.code, 0, run.stderr);
  const printed = JSON.parse(run.stdout) as { uid: string; name: string; content: { size: number; chksum: string } };
  t.like(printed, { name: 'Debian', content: { size: content.length } });
  t.deepEqual(await download(h, token, '/image/Debian/content'), content);
  t.is(((await h.call('GET', '/image/Debian', { token })).json.data as { uid: string }).uid, printed.uid);
  // Not a terminal: no escape sequences, and the last line says it all.
  t.false(run.stderr.includes('\u001b'), 'no escape sequences');
  t.regex(run.stderr.trim().split('\n').at(-1)!, /^rootfs\.squashfs: 3\.0 MiB of 3\.0 MiB \(100%\), [\d.]+ (B|KiB|MiB|GiB)\/s, ETA \S+$/);

  // An existing name is refused unless --replace, which uploads new content into it.
  const again = await keel(['image', 'import', path, '--name', 'Debian', '--url', h.base]);
  t.is(again.code, 1);
  t.is(again.stderr, 'Image Debian exists; pass --replace to upload new content into it\n');
  const newer = Buffer.concat([Buffer.from('hsqs'), randomBytes(4096)]);
  const replaced = await keel(['image', 'import', file(t, 'newer.squashfs', newer), '--name', 'Debian', '--replace', '--url', h.base]);
  t.is(replaced.code, 0, replaced.stderr);
  t.is((JSON.parse(replaced.stdout) as { uid: string }).uid, printed.uid);
  t.deepEqual(await download(h, token, '/image/Debian/content'), newer);
});

test('keel bootconfig create makes the boot config and uploads kernel and initramfs', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  t.is((await h.call('POST', '/images', { token, body: { name: 'Debian' } })).status, 200);
  const kernel = randomBytes(700 * 1024);
  const initramfs = randomBytes(300 * 1024);
  const run = await keel(['bootconfig', 'create', '--name', 'Boot1', '--kernel', file(t, 'vmlinuz', kernel), '--initramfs', file(t, 'initramfs.img', initramfs),
    '--image', 'Debian', '--cmdline', 'console=ttyS0 quiet', '--boot-style', 'roram', '--url', h.base]);
  t.is(run.code, 0, run.stderr);
  const uid = run.stdout.trim();
  t.like((await h.call('GET', '/bootconfig/Boot1', { token })).json.data as object, { uid, image: 'Debian', cmdline: 'console=ttyS0 quiet', boot_style: 'roram' });
  t.deepEqual(await download(h, token, '/bootconfig/Boot1/kernel'), kernel);
  t.deepEqual(await download(h, token, '/bootconfig/Boot1/initramfs'), initramfs);
  t.regex(run.stderr, /^vmlinuz: 700\.0 KiB of 700\.0 KiB \(100%\)/m);
  t.regex(run.stderr, /^initramfs\.img: 300\.0 KiB of 300\.0 KiB \(100%\)/m);

  // The API's refusals come through with their reason; nothing is left behind.
  const badStyle = await keel(['bootconfig', 'create', '--name', 'Boot2', '--kernel', file(t, 'k', kernel), '--initramfs', file(t, 'i', initramfs), '--boot-style', 'floppy', '--url', h.base]);
  t.is(badStyle.code, 1);
  t.regex(badStyle.stderr, /^Field 'boot_style' must be one of rwram, roram/);
  const missing = await keel(['bootconfig', 'create', '--name', 'Boot2', '--kernel', '/nonexistent/vmlinuz', '--initramfs', file(t, 'i', initramfs), '--url', h.base]);
  t.is(missing.stderr, 'Kernel /nonexistent/vmlinuz: no such file\n');
  t.is((await h.call('GET', '/bootconfig/Boot2', { token })).status, 404);
});

test('an upload the head refuses removes the object the command created', async (t) => {
  // A head that refuses every upload: it wants more free room than any disk has.
  const h = await startTestHead(t, { KEEL_STORE_MIN_FREE_BYTES: String(2 ** 52) });
  const { access_token: token } = await h.login();
  const run = await keel(['bootconfig', 'create', '--name', 'Boot1', '--kernel', file(t, 'vmlinuz', randomBytes(64 * 1024)), '--initramfs', file(t, 'initramfs.img', randomBytes(1024)), '--url', h.base]);
  t.is(run.code, 1);
  t.regex(run.stderr, /Insufficient storage/);
  t.is((await h.call('GET', '/bootconfig/Boot1', { token })).status, 404);
  const image = await keel(['image', 'import', file(t, 'rootfs.squashfs', randomBytes(64 * 1024)), '--name', 'Img', '--url', h.base]);
  t.is(image.code, 1);
  t.is((await h.call('GET', '/image/Img', { token })).status, 404);
});

test('credentials: a wrong password is refused with the API\'s reason; the password may come on stdin', async (t) => {
  const h = await startTestHead(t);
  const content = file(t, 'rootfs.squashfs', randomBytes(1024));
  const wrong = await keel(['image', 'import', content, '--name', 'Img', '--url', h.base], { KEEL_PASSWORD: 'not-the-password' });
  t.is(wrong.code, 1);
  t.is(wrong.stderr, 'Invalid user name or password\n');
  const none = await keel(['image', 'import', content, '--name', 'Img', '--url', h.base], { KEEL_PASSWORD: '' });
  t.is(none.stderr, 'No password: set KEEL_PASSWORD or pipe it on stdin\n');
  const piped = await keel(['image', 'import', content, '--name', 'Img', '--url', h.base], { KEEL_PASSWORD: '' }, `${ADMIN_PASSWORD}\n`);
  t.like(JSON.parse(piped.stdout) as object, { name: 'Img' });
  const closed = await freePort(); // nothing listens there
  const unreachable = await keel(['image', 'import', content, '--name', 'Img', '--url', `http://127.0.0.1:${closed}`]);
  t.is(unreachable.stderr, `Cannot reach keel at http://127.0.0.1:${closed}/api/v1: connect ECONNREFUSED 127.0.0.1:${closed}\n`);
});

test('on a terminal the progress is a bar redrawn in place', async (t) => {
  const h = await startTestHead(t);
  const { access_token: token } = await h.login();
  const content = randomBytes(2 * 1024 * 1024);
  const path = file(t, 'rootfs.squashfs', content);
  // script(1) gives the CLI a pseudo-terminal for stdin, stdout and stderr.
  const command = [process.execPath, BUNDLE, 'image', 'import', path, '--name', 'Tty', '--url', h.base].map((word) => `'${word}'`).join(' ');
  const { stdout } = await promisify(execFile)('script', ['-qefc', command, '/dev/null'], { env: { ...process.env, KEEL_PASSWORD: ADMIN_PASSWORD, COLUMNS: '120' } });
  t.regex(stdout, /rootfs\.squashfs \[#{30}\] 100% 2\.0 MiB\/2\.0 MiB [\d.]+ (B|KiB|MiB|GiB)\/s ETA \S+/);
  t.true(stdout.includes('\u001b['), 'redrawn in place with cursor moves');
  t.deepEqual(await download(h, token, '/image/Tty/content'), content);
});
