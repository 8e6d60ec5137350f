// Gitrepos hosted by keel, with the real git client: the class's rules, clone/push/fetch through
// keel's smart HTTP URL (public and private, read and write roles), content endpoints, branches,
// and a kickstart served from a gitrepo path. Syncing with an upstream: gitrepos-sync.test.ts.
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commitFiles, git, gitTry, withToken } from './helpers/git.js';
import { startTestHead } from './helpers/head.js';

/** 300 bytes covering every byte value, NULs included. */
const BINARY = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-gitrepo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(t: ExecutionContext) {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const call = (method: string, path: string, body?: unknown, asToken: string | undefined = token) => h.call(method, path, { token: asToken, body });
  /** GET a path under /api/v1 as sent: no URL normalisation (`..` stays), optional bearer token. */
  const raw = (path: string, bearer?: string) => new Promise<{ status: number; type: string; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: h.head.httpPort, path: `/api/v1${path}`, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end();
  });
  return { h, token, call, raw };
}

/** A working repository with a kickstart, a directory and a binary file, pushed to `url`. */
async function seedRepository(t: ExecutionContext, url: string): Promise<string> {
  const work = tempDir(t);
  await git(work, 'init', '--quiet', '--initial-branch=main');
  await commitFiles(work, { 'ks.cfg': 'network --hostname=<hostname>\n', 'dir/a.txt': 'alpha\n', 'dir/sub/b.txt': 'beta\n', 'blob.bin': BINARY }, 'first');
  await git(work, 'push', '--quiet', url, 'main');
  return work;
}

test('class: fields, url or upstream, sync_period, names; delete removes the repository', async (t) => {
  const { h, call } = await setup(t);
  const created = await call('POST', '/gitrepos', { name: 'cfg', description: 'node configs', sync_period: '10m', branch_map: ['main', 'prod:release'] });
  t.is(created.status, 200);
  const record = (await call('GET', '/gitrepo/cfg')).json.data as Record<string, unknown>;
  t.is(record.public, false);
  t.is(record.sync_period, '10m');
  t.truthy((await call('GET', '/gitrepos/meta')).json.data);
  const both = await call('POST', '/gitrepos', { name: 'x', url: 'https://example.com/a.git', upstream: 'https://example.com/b.git' });
  t.deepEqual(both.json, { success: false, reason: `Either 'url' or 'upstream' can be defined, not both` });
  t.regex((await call('POST', '/gitrepos', { name: 'x', url: 'file:///etc' })).json.reason!, /'url' must be an http, https, git or ssh URL/);
  t.regex((await call('POST', '/gitrepos', { name: 'x', upstream: 'ext::sh -c touch% /tmp/pwned' })).json.reason!, /'upstream' must be/);
  for (const url of ['ssh://-oProxyCommand=touch%20/tmp/pwned/x', 'ssh://git@-oProxyCommand=x/y', '/srv/git/x.git', 'git://a b/x'])
    t.is((await call('POST', '/gitrepos', { name: 'x', url })).status, 400, url);
  t.is((await call('POST', '/gitrepos', { name: 'ok-url', url: 'ssh://git@example.com:2222/x.git' })).status, 200);
  t.regex((await call('POST', '/gitrepos', { name: 'x', sync_period: '10 weeks' })).json.reason!, /sync_period/);
  t.regex((await call('POST', '/gitrepos', { name: '../x' })).json.reason!, /Field 'name'/);
  t.regex((await call('POST', '/gitrepos', { name: 'x', branch_map: ['main:--upload-pack=evil'] })).json.reason!, /branch_map/);
  t.is((await call('POST', '/gitrepos', { name: 'x', sync_period: 90 })).status, 200);

  // The repository exists once used (the URL's first fetch) and goes with the record.
  const uid = created.json.data as string;
  const url = withToken(await (await fetch(`${h.base}/gitrepo/cfg/url`)).text(), (await h.login()).access_token);
  await gitTry(tempDir(t), 'ls-remote', url);
  const dir = join(h.dataDir, 'gitrepos', `${uid}.git`);
  t.true(existsSync(join(dir, 'HEAD')));
  t.is((await call('DELETE', '/gitrepo/cfg')).status, 200);
  for (let i = 0; i < 50 && existsSync(dir); i++) await new Promise((r) => setTimeout(r, 20));
  t.false(existsSync(dir));
});

test('clone, push, fetch through keel: private needs a token, push needs the write role, public clones anonymously', async (t) => {
  const { h, token, call } = await setup(t);
  await call('POST', '/gitrepos', { name: 'cfg' });
  const url = await (await fetch(`${h.base}/gitrepo/cfg/url`)).text();
  t.is(url, `http://127.0.0.1:${h.head.httpPort}/api/v1/git/cfg`);
  const work = await seedRepository(t, withToken(url, token));

  const anonymous = await gitTry(tempDir(t), 'clone', '--quiet', url, 'c');
  t.not(anonymous.exitCode, 0);
  t.regex(anonymous.stderr, /Authentication failed|could not read Username/);
  const bad = await gitTry(tempDir(t), 'clone', '--quiet', withToken(url, 'not-a-token'), 'c');
  t.not(bad.exitCode, 0);

  const clones = tempDir(t);
  await git(clones, 'clone', '--quiet', withToken(url, token), 'c');
  t.is(readFileSync(join(clones, 'c', 'dir/a.txt'), 'utf8'), 'alpha\n');
  t.true(readFileSync(join(clones, 'c', 'blob.bin')).equals(BINARY));

  // A second commit pushed from the first working copy reaches the clone by fetch.
  const second = await commitFiles(work, { 'dir/a.txt': 'alpha 2\n' }, 'second');
  await git(work, 'push', '--quiet', withToken(url, token), 'main');
  await git(join(clones, 'c'), 'fetch', '--quiet', 'origin');
  t.is(await git(join(clones, 'c'), 'rev-parse', 'origin/main'), second);

  // role.authuser reads but may not push.
  await call('POST', '/admins', { name: 'reader', roles: ['role.authuser'], password: 'reader-password' });
  const reader = (await h.login('reader', 'reader-password')).access_token;
  await git(clones, 'clone', '--quiet', withToken(url, reader), 'r');
  await commitFiles(join(clones, 'r'), { 'new.txt': 'x\n' }, 'by reader');
  const refused = await gitTry(join(clones, 'r'), 'push', withToken(url, reader), 'main');
  t.not(refused.exitCode, 0);
  t.regex(refused.stderr, /403/);

  // Public: anonymous clone and fetch; anonymous push still refused.
  t.is((await call('PATCH', '/gitrepo/cfg', { public: true })).status, 200);
  await git(clones, 'clone', '--quiet', url, 'anon');
  t.is(await git(join(clones, 'anon'), 'rev-parse', 'HEAD'), second);
  await commitFiles(join(clones, 'anon'), { 'anon.txt': 'x\n' }, 'anonymous');
  t.not((await gitTry(join(clones, 'anon'), 'push', url, 'main')).exitCode, 0);
  t.is(await git(join(clones, 'anon'), 'ls-remote', url, 'refs/heads/main'), `${second}\trefs/heads/main`);
});

test('a large push and clone stream through keel both ways', async (t) => {
  const { h, token, call } = await setup(t);
  await call('POST', '/gitrepos', { name: 'big' });
  const url = withToken(await (await fetch(`${h.base}/gitrepo/big/url`)).text(), token);
  const work = tempDir(t);
  await git(work, 'init', '--quiet', '--initial-branch=main');
  // Incompressible: the pack is as large as the file, well over git's 1 MiB post buffer, so the
  // push goes out as a chunked request body.
  const big = randomBytes(24 * 1024 * 1024);
  await commitFiles(work, { 'big.bin': big }, 'large');
  await git(work, 'push', '--quiet', url, 'main');
  const clones = tempDir(t);
  await git(clones, 'clone', '--quiet', url, 'c');
  const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  t.is(digest(readFileSync(join(clones, 'c', 'big.bin'))), digest(big));
});

/**
 * The processes working in `dataDir`'s repositories (git changes into the repository it serves):
 * keel's http-backend, upload-pack, pack-objects — also any orphaned by a kill of their parent.
 */
function gitProcessesIn(dataDir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readlinkSync(`/proc/${pid}/cwd`).startsWith(join(dataDir, 'gitrepos'))) found.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim());
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

test('a client that stops reading holds git back; one that goes away takes its git with it', async (t) => {
  const { h, token, call } = await setup(t);
  await call('POST', '/gitrepos', { name: 'big', public: true });
  const url = await (await fetch(`${h.base}/gitrepo/big/url`)).text();
  const work = tempDir(t);
  await git(work, 'init', '--quiet', '--initial-branch=main');
  const commit = await commitFiles(work, { 'big.bin': randomBytes(32 * 1024 * 1024) }, 'large');
  await git(work, 'push', '--quiet', withToken(url, token), 'main');
  // A protocol v0 fetch of everything, by hand: want, flush, done.
  const pkt = (line: string) => (line.length + 4).toString(16).padStart(4, '0') + line;
  const body = pkt(`want ${commit} ofs-delta\n`) + '0000' + pkt('done\n');
  let received = 0;
  const req = request({ host: '127.0.0.1', port: h.head.httpPort, method: 'POST', path: '/api/v1/git/big/git-upload-pack', headers: { 'content-type': 'application/x-git-upload-pack-request' } });
  req.on('error', () => {});
  const response = await new Promise<import('node:http').IncomingMessage>((resolve) => {
    req.on('response', resolve);
    req.end(body);
  });
  t.is(response.statusCode, 200);
  response.once('data', (piece: Buffer) => {
    received += piece.length;
    response.pause(); // and never read again
  });
  await new Promise((r) => setTimeout(r, 1500));
  t.true(received < 16 * 1024 * 1024, `a stalled reader got ${received} bytes`);
  t.true(gitProcessesIn(h.dataDir).some((args) => args.includes('pack-objects')), 'git waits for the socket');
  req.destroy();
  for (let i = 0; i < 100 && gitProcessesIn(h.dataDir).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(gitProcessesIn(h.dataDir), []);
});

test('content: files, binary bytes, directories, ?ref=, missing and escaping paths; private needs a token', async (t) => {
  const { h, token, call, raw } = await setup(t);
  await call('POST', '/gitrepos', { name: 'cfg' });
  const url = withToken(await (await fetch(`${h.base}/gitrepo/cfg/url`)).text(), token);
  const work = await seedRepository(t, url);
  await git(work, 'checkout', '--quiet', '-b', 'next');
  await commitFiles(work, { 'ks.cfg': 'next kickstart\n' }, 'on next');
  await git(work, 'push', '--quiet', url, 'next');

  t.is((await raw('/gitrepo/cfg/content/ks.cfg')).status, 401, 'private: a token is needed');
  for (const segment of ['repo', 'content']) {
    const top = await raw(`/gitrepo/cfg/${segment}`, token);
    t.is(top.status, 200);
    t.is(top.body.toString(), 'blob.bin\ndir/\nks.cfg\n');
    t.is((await raw(`/gitrepo/cfg/${segment}/ks.cfg`, token)).body.toString(), 'network --hostname=<hostname>\n');
  }
  const dir = await raw('/gitrepo/cfg/content/dir', token);
  t.is(dir.body.toString(), 'a.txt\nsub/\n');
  t.regex(dir.type, /^text\/plain/);
  const text = await raw('/gitrepo/cfg/content/dir/sub/b.txt', token);
  t.is(text.body.toString(), 'beta\n');
  t.regex(text.type, /^text\/plain/);
  const binary = await raw('/gitrepo/cfg/content/blob.bin', token);
  t.is(binary.status, 200);
  t.is(binary.type, 'application/octet-stream');
  t.true(binary.body.equals(BINARY));
  t.is((await raw('/gitrepo/cfg/content/ks.cfg?ref=next', token)).body.toString(), 'next kickstart\n');

  const missing = await raw('/gitrepo/cfg/content/dir/nothing.txt', token);
  t.is(missing.status, 404);
  t.regex(JSON.parse(missing.body.toString()).reason, /No file or directory 'dir\/nothing.txt'/);
  t.is((await raw('/gitrepo/cfg/content/ks.cfg?ref=nosuchbranch', token)).status, 404);
  t.is((await raw('/gitrepo/cfg/content/no%20such%20file', token)).status, 404);
  t.is((await raw('/gitrepo/cfg/content/ks.cfg?ref=--output=x', token)).status, 400);
  for (const escape of ['/gitrepo/cfg/content/../../../etc/passwd', '/gitrepo/cfg/content/dir/..', '/gitrepo/cfg/content/%2e%2e/%2e%2e/etc/passwd', '/gitrepo/cfg/content/dir%2F..%2F..%2Fx', '/gitrepo/cfg/content/ks.cfg%0Ablob.bin']) {
    const refused = await raw(escape, token);
    t.is(refused.status, 400, escape);
    t.regex(JSON.parse(refused.body.toString()).reason, /Malformed path/);
  }

  await call('PATCH', '/gitrepo/cfg', { public: true });
  t.is((await raw('/gitrepo/cfg/content/dir/a.txt')).body.toString(), 'alpha\n');
});

test('branches: list with filter and branchmap, delete some or all', async (t) => {
  const { h, token, call } = await setup(t);
  await call('POST', '/gitrepos', { name: 'cfg' });
  const url = withToken(await (await fetch(`${h.base}/gitrepo/cfg/url`)).text(), token);
  const work = await seedRepository(t, url);
  const head = await git(work, 'rev-parse', 'HEAD');
  for (const branch of ['dev', 'feature/one', 'feature/two']) await git(work, 'push', '--quiet', url, `main:refs/heads/${branch}`);

  const list = (await call('GET', '/gitrepo/cfg/branches')).json.data as Record<string, { commit: string; subject: string }>;
  t.deepEqual(Object.keys(list).sort(), ['dev', 'feature/one', 'feature/two', 'main']);
  t.is(list.main!.commit, head);
  t.is(list.main!.subject, 'first');
  t.deepEqual(Object.keys((await call('GET', '/gitrepo/cfg/branches?filter=feature/*')).json.data as object).sort(), ['feature/one', 'feature/two']);
  t.deepEqual(Object.keys((await call('GET', '/gitrepo/cfg/branches?branchmap=dev,main')).json.data as object).sort(), ['dev', 'main']);

  t.deepEqual((await call('DELETE', '/gitrepo/cfg/branches', { branches: ['feature/one', 'dev'] })).json.data, ['feature/one', 'dev']);
  t.deepEqual(Object.keys((await call('GET', '/gitrepo/cfg/branches')).json.data as object).sort(), ['feature/two', 'main']);
  const unknown = await call('DELETE', '/gitrepo/cfg/branches', { branches: ['feature/two', 'nope'] });
  t.is(unknown.status, 404);
  t.is(unknown.json.reason, 'No branch nope in this gitrepo');
  t.is((await call('DELETE', '/gitrepo/cfg/branches', { branches: ['-d'] })).status, 400);
  t.is((await call('DELETE', '/gitrepo/cfg/branches', {})).status, 400);
  t.is(Object.keys((await call('GET', '/gitrepo/cfg/branches')).json.data as object).length, 2, 'a refused delete deletes nothing');
  t.is((await call('DELETE', '/gitrepo/cfg/branches', { all: true })).status, 200);
  t.deepEqual((await call('GET', '/gitrepo/cfg/branches')).json.data, {});
});

test('a kickstart served from a gitrepo path, at the default branch or a ref', async (t) => {
  const { h, token, call } = await setup(t);
  await call('POST', '/gitrepos', { name: 'cfg' });
  const url = withToken(await (await fetch(`${h.base}/gitrepo/cfg/url`)).text(), token);
  const work = await seedRepository(t, url);
  const first = await git(work, 'rev-parse', 'HEAD');
  await commitFiles(work, { 'ks.cfg': 'network --hostname=<hostname> --ip=<ip>\n' }, 'second');
  await git(work, 'push', '--quiet', url, 'main');
  t.is((await call('POST', '/nets', { first_ip: '10.9.0.1', ip_count: 16, mask_bits: 24 })).status, 200);
  const created = await call('POST', '/nodes', { mac: '52:54:00:00:00:01' });
  t.is(created.status, 200, JSON.stringify(created.json));
  const node = (await call('GET', `/node/${created.json.data as string}`)).json.data as Record<string, string>;
  await call('POST', '/bootconfigs', { name: 'bc', kickstart: 'git:cfg/ks.cfg', boot_style: 'next' });
  await call('POST', '/bootconfigs', { name: 'old', kickstart: `git:cfg/ks.cfg@${first.slice(0, 12)}`, boot_style: 'next' });
  await call('POST', '/bootconfigs', { name: 'gone', kickstart: 'git:nosuch/ks.cfg', boot_style: 'next' });
  await call('POST', '/bootconfigs', { name: 'dir', kickstart: 'git:cfg/dir', boot_style: 'next' });

  const rendered = await fetch(`${h.base}/bootconfig/bc/kickstart?node=${node.name}`, { headers: { authorization: `Bearer ${token}` } });
  t.is(rendered.status, 200, await rendered.clone().text());
  t.is(await rendered.text(), `network --hostname=${node.name} --ip=${node.ip}\n`);
  const old = await fetch(`${h.base}/bootconfig/old/kickstart?node=${node.name}`, { headers: { authorization: `Bearer ${token}` } });
  t.is(await old.text(), `network --hostname=${node.name}\n`);
  t.is((await fetch(`${h.base}/bootconfig/gone/kickstart?node=${node.name}`, { headers: { authorization: `Bearer ${token}` } })).status, 404);
  t.is((await fetch(`${h.base}/bootconfig/dir/kickstart?node=${node.name}`, { headers: { authorization: `Bearer ${token}` } })).status, 404);
  t.is((await call('GET', '/bootconfig/bc/errors')).status, 200);
  t.is((await call('GET', '/bootconfig/gone/errors')).json.reason, 'Boot config gone: kickstart file git:nosuch/ks.cfg does not exist');
});
