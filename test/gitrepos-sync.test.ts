// Gitrepos syncing with an upstream served by a second git server (`git daemon` in a network
// namespace of its own, reached over a veth pair): every sync action on demand, branch maps, a
// merge conflict, syncs one at a time, syncs on schedule, a failing upstream and a hanging one.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitRepos } from '../src/git/repos.js';
import { syncRepo } from '../src/git/sync.js';
import { commitFiles, git, GIT_ENV, gitDaemonProgram, gitTry, withToken } from './helpers/git.js';
import { startTestHead } from './helpers/head.js';
import { ip, namespaces } from './helpers/namespaces.js';

interface Branch { commit: string; subject: string }
interface BranchSync { local: string; remote: string; outcome: string; ahead?: number; behind?: number; after?: string; reason?: string }
interface SyncResult { action: string; ok: boolean; reason?: string; started: number; finished: number; branches: BranchSync[] }

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-gitsync-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let subnets = 0;

/**
 * A bare repository `up.git` with `main` and `feature`, served by `git daemon` inside a namespace
 * of its own; keel (in the test's namespace) reaches it over a veth pair. Returns its git:// URL
 * and a working copy whose pushes (by path, beside the daemon) change the upstream.
 */
async function upstreamServer(t: ExecutionContext) {
  const ns = namespaces(t, 'kgit', ['up']).up;
  const net = `10.${200 + (process.pid % 50)}.${subnets++}`;
  const hostSide = `kg${process.pid % 100000}h${subnets}`;
  ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', 'up0', 'netns', ns);
  ip('addr', 'add', `${net}.1/30`, 'dev', hostSide);
  ip('link', 'set', hostSide, 'up');
  ip('-n', ns, 'addr', 'add', `${net}.2/30`, 'dev', 'up0');
  ip('-n', ns, 'link', 'set', 'up0', 'up');
  const root = tempDir(t);
  const upstream = join(root, 'up.git');
  await git(root, 'init', '--quiet', '--bare', '--initial-branch=main', upstream);
  const work = join(root, 'work');
  await git(root, 'init', '--quiet', '--initial-branch=main', work);
  await commitFiles(work, { 'ks.cfg': 'line one\n', 'common.txt': 'shared\n' }, 'upstream first');
  await git(work, 'push', '--quiet', upstream, 'main', 'main:feature');
  // `ip netns exec` execs git-daemon itself: the pid is the daemon's, killed at teardown.
  const daemon = spawn('ip', ['netns', 'exec', ns, gitDaemonProgram(), '--reuseaddr', '--export-all', `--base-path=${root}`, `--listen=${net}.2`, '--port=9418', root], {
    env: { ...process.env, ...GIT_ENV },
    stdio: 'ignore',
  });
  t.teardown(() => {
    if (daemon.exitCode === null && daemon.signalCode === null) process.kill(daemon.pid!, 'SIGKILL');
  });
  const url = `git://${net}.2/up.git`;
  for (let i = 0; ; i++) {
    if ((await gitTry(root, 'ls-remote', url)).exitCode === 0) break;
    if (i > 100) throw new Error('git daemon did not come up');
    await new Promise((r) => setTimeout(r, 50));
  }
  const push = (...refs: string[]) => git(work, 'push', '--quiet', '--force', upstream, ...refs);
  return { url, work, upstream, push };
}

async function setup(t: ExecutionContext) {
  const h = await startTestHead(t);
  const token = (await h.login()).access_token;
  const call = (method: string, path: string, body?: unknown) => h.call(method, path, { token, body });
  const sync = async (name: string, action: string, branchmap?: string[]) => {
    const reply = await call('POST', `/gitrepo/${name}/sync`, branchmap ? { action, branchmap } : { action });
    return { status: reply.status, reason: reply.json.reason, result: reply.json.data as SyncResult };
  };
  const branches = async (name: string) => (await call('GET', `/gitrepo/${name}/branches`)).json.data as Record<string, Branch>;
  return { h, token, call, sync, branches };
}

const outcomes = (result: SyncResult) => Object.fromEntries(result.branches.map((b) => [b.local, b.outcome]));

test('sync actions on demand: status, checkout, pull (fast-forward and merge), rebase, reset; branch maps; a conflict', async (t) => {
  const up = await upstreamServer(t);
  const { h, token, call, sync, branches } = await setup(t);
  t.is((await call('POST', '/gitrepos', { name: 'cfg', upstream: up.url })).status, 200);
  const keelUrl = withToken(await (await fetch(`${h.base}/gitrepo/cfg/url`)).text(), token);
  const upstreamHead = (ref: string) => git(up.work, 'rev-parse', ref);

  const status = await sync('cfg', 'status');
  t.is(status.status, 200);
  t.deepEqual(outcomes(status.result), { feature: 'missing-local', main: 'missing-local' });
  t.deepEqual(await branches('cfg'), {}, 'status changes nothing');
  t.deepEqual(outcomes((await sync('cfg', 'checkout')).result), { feature: 'created', main: 'created' });
  t.is((await branches('cfg')).main!.commit, await upstreamHead('main'));

  // Upstream moves on: behind, then pull fast-forwards.
  await commitFiles(up.work, { 'ks.cfg': 'line one\nline two\n' }, 'upstream second');
  await up.push('main');
  const behind = (await sync('cfg', 'status')).result.branches.find((b) => b.local === 'main')!;
  t.like(behind, { outcome: 'behind', ahead: 0, behind: 1 });
  t.deepEqual(outcomes((await sync('cfg', 'pull')).result), { feature: 'unchanged', main: 'updated' });
  t.is((await branches('cfg')).main!.commit, await upstreamHead('main'));

  // A commit pushed to keel and one upstream: diverged; pull merges without a worktree.
  const clones = tempDir(t);
  await git(clones, 'clone', '--quiet', keelUrl, 'c');
  const local = join(clones, 'c');
  const localCommit = await commitFiles(local, { 'local.txt': 'mine\n' }, 'local change');
  await git(local, 'push', '--quiet', 'origin', 'main');
  await commitFiles(up.work, { 'upstream.txt': 'theirs\n' }, 'upstream third');
  await up.push('main');
  t.like((await sync('cfg', 'status')).result.branches.find((b) => b.local === 'main'), { outcome: 'diverged', ahead: 1, behind: 1 });
  t.deepEqual(outcomes((await sync('cfg', 'pull')).result), { feature: 'unchanged', main: 'merged' });
  await git(local, 'pull', '--quiet', '--ff-only', 'origin', 'main');
  t.is(await git(local, 'log', '-1', '--format=%P'), `${localCommit} ${await upstreamHead('main')}`);
  t.is(await git(local, 'show', 'HEAD:upstream.txt'), 'theirs');

  // rebase, for one branch only: the local commit replayed on the upstream's.
  await git(local, 'checkout', '--quiet', '-b', 'feature', 'origin/feature');
  await commitFiles(local, { 'feature-local.txt': 'f\n' }, 'feature local');
  await git(local, 'push', '--quiet', 'origin', 'feature');
  await git(up.work, 'checkout', '--quiet', '-b', 'feature');
  await commitFiles(up.work, { 'feature-up.txt': 'u\n' }, 'feature upstream');
  await up.push('feature');
  const rebased = await sync('cfg', 'rebase', ['feature']);
  t.deepEqual(outcomes(rebased.result), { feature: 'rebased' });
  await git(local, 'fetch', '--quiet', 'origin');
  t.is(await git(local, 'log', '--format=%s', '-2', 'origin/feature'), 'feature local\nfeature upstream');
  t.is(await git(local, 'rev-parse', 'origin/feature~1'), await upstreamHead('feature'));

  // A branch map: a local branch of another name, and a remote branch that does not exist.
  t.deepEqual(outcomes((await sync('cfg', 'checkout', ['prod:main'])).result), { prod: 'created' });
  t.is((await branches('cfg')).prod!.commit, await upstreamHead('main'));
  const missing = await sync('cfg', 'pull', ['x:nosuch']);
  t.is(missing.status, 400);
  t.is(missing.reason, 'Sync pull failed: x: the remote has no branch nosuch');
  t.is((await sync('cfg', 'pull', ['main:--upload-pack=touch'])).status, 400);
  t.is((await sync('cfg', 'merge')).status, 400);

  // A conflict: the same line changed on both sides; the branch stays, the reason is kept.
  await git(local, 'checkout', '--quiet', 'main');
  await git(local, 'pull', '--quiet', '--ff-only', 'origin', 'main');
  await commitFiles(local, { 'common.txt': 'local edit\n' }, 'local edit');
  await git(local, 'push', '--quiet', 'origin', 'main');
  const before = (await branches('cfg')).main!.commit;
  await git(up.work, 'checkout', '--quiet', 'main');
  await commitFiles(up.work, { 'common.txt': 'upstream edit\n' }, 'upstream edit');
  await up.push('main');
  const conflict = await sync('cfg', 'pull', ['main']);
  t.is(conflict.status, 400);
  t.regex(conflict.reason!, /^Sync pull failed: main: merging the remote's main conflicts/);
  t.is((await branches('cfg')).main!.commit, before);
  const kept = (await call('GET', '/gitrepo/cfg/sync')).json.data as SyncResult;
  t.like(kept, { action: 'pull', ok: false });
  t.regex(kept.reason!, /conflicts/);
  t.regex((await sync('cfg', 'rebase', ['main'])).reason!, /rebasing onto the remote conflicts/);
  t.is((await branches('cfg')).main!.commit, before);

  // reset: local commits dropped, the upstream's taken.
  t.deepEqual(outcomes((await sync('cfg', 'reset', ['main'])).result), { main: 'updated' });
  t.is((await branches('cfg')).main!.commit, await upstreamHead('main'));

  // GET /sync: the last result; ?action=status compares; other actions only by POST.
  t.like((await call('GET', '/gitrepo/cfg/sync')).json.data, { action: 'reset', ok: true });
  t.like((await call('GET', '/gitrepo/cfg/sync?action=status')).json.data, { action: 'status', ok: true });
  t.is((await call('GET', '/gitrepo/cfg/sync?action=reset')).status, 400);
  // The fetched upstream branches are listed with ?all=true, hidden from clones.
  const all = (await call('GET', '/gitrepo/cfg/branches?all=true')).json.data as Record<string, Branch>;
  t.is(all['remote/main']!.commit, await upstreamHead('main'));
  t.false((await git(clones, 'ls-remote', keelUrl)).includes('keel-upstream'));

  // Syncs of one repository run one at a time.
  const [a, b] = await Promise.all([sync('cfg', 'status'), sync('cfg', 'status')]);
  const [first, second] = [a.result, b.result].sort((x, y) => x.started - y.started);
  t.true(second!.started >= first!.finished);
});

test('syncs on schedule (mirror: reset; follow: pull) and a failing upstream keeps its reason', async (t) => {
  const up = await upstreamServer(t);
  const { h, token, call, sync, branches } = await setup(t);
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
    for (let i = 0; i < 150; i++) {
      const value = await probe();
      if (value !== undefined) return value;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };
  await call('POST', '/gitrepos', { name: 'mirror', url: up.url, sync_period: 1 });
  await call('POST', '/gitrepos', { name: 'follow', upstream: up.url, sync_period: '1s' });
  for (const name of ['mirror', 'follow']) {
    await waitFor(`${name}'s first sync`, async () => ((await branches(name)).main?.commit === (await git(up.work, 'rev-parse', 'main')) ? true : undefined));
  }
  await commitFiles(up.work, { 'ks.cfg': 'scheduled\n' }, 'upstream scheduled');
  await up.push('main');
  const head = await git(up.work, 'rev-parse', 'main');
  for (const name of ['mirror', 'follow']) await waitFor(`${name} to follow`, async () => ((await branches(name)).main?.commit === head ? true : undefined));
  t.like((await call('GET', '/gitrepo/mirror/sync')).json.data, { action: 'reset', ok: true });
  t.like((await call('GET', '/gitrepo/follow/sync')).json.data, { action: 'pull', ok: true });
  t.is((await fetch(`${h.base}/gitrepo/mirror/content/ks.cfg`)).status, 401, 'private: a token is needed');
  t.is(await (await fetch(`${h.base}/gitrepo/mirror/content/ks.cfg`, { headers: { authorization: `Bearer ${token}` } })).text(), 'scheduled\n');

  // An upstream nobody answers for: on demand a 400 with the reason; on schedule kept in the status.
  const dead = up.url.replace('/up.git', ':9/up.git');
  await call('POST', '/gitrepos', { name: 'broken', upstream: dead, sync_period: 1 });
  const failed = await sync('broken', 'pull');
  t.is(failed.status, 400);
  t.regex(failed.reason!, new RegExp(`^Sync pull failed: Fetching ${dead.replace(/[.]/g, '[.]')} failed: .*(unable to connect|Connection refused)`));
  const onDemand = (await call('GET', '/gitrepo/broken/sync')).json.data as SyncResult;
  t.like(onDemand, { action: 'pull', ok: false, reason: failed.reason!.replace('Sync pull failed: ', '') });
  const scheduled = await waitFor('a scheduled failure', async () => {
    const last = (await call('GET', '/gitrepo/broken/sync')).json.data as SyncResult;
    return last.started > onDemand.started ? last : undefined;
  });
  t.like(scheduled, { action: 'pull', ok: false });
  t.regex(scheduled.reason!, /Fetching .* failed/);
  // A gitrepo without a remote has nothing to sync with.
  await call('POST', '/gitrepos', { name: 'local' });
  t.is((await sync('local', 'status')).reason, 'Gitrepo local has no url or upstream to sync with');
});

test('a sync of an upstream that never answers ends at its timeout', async (t) => {
  const silent = createServer((socket: Socket) => socket.on('error', () => {}));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.teardown(() => silent.close());
  const port = (silent.address() as { port: number }).port;
  const repos = new GitRepos(tempDir(t));
  const uid = 'a'.repeat(32);
  const started = Date.now();
  const result = await syncRepo(repos, { uid, url: `git://127.0.0.1:${port}/x.git`, action: 'pull', timeoutMs: 1000 });
  t.false(result.ok);
  t.regex(result.reason!, /timed out after 1 s/);
  t.true(Date.now() - started < 5000);
});
