// One sync of a gitrepo with its remote (`url` or `upstream`): fetch the remote's branches into
// refs/keel-upstream/, then per mapped branch one action. Every branch update names the commit it
// replaces, so a push that lands meanwhile makes that branch fail instead of being lost.
//   status    compare only: ahead/behind per branch
//   checkout  create the local branches that do not exist yet; leave the others
//   reset     set local branches to the remote's (local commits are dropped)
//   pull      fast-forward, or merge the remote into the local branch (git merge-tree; a conflict fails the branch)
//   rebase    replay local commits onto the remote's (in a temporary worktree; a conflict fails the branch)
import { rm } from 'node:fs/promises';
import { parseBranchMap, type BranchMapping } from '../model/classes/gitrepo.js';
import { GitFailed, runGit } from './run.js';
import { UPSTREAM_REFS, type GitRepos } from './repos.js';

export const SYNC_ACTIONS = ['status', 'checkout', 'reset', 'pull', 'rebase'] as const;
export type SyncAction = (typeof SYNC_ACTIONS)[number];

export type BranchOutcome = 'in-step' | 'ahead' | 'behind' | 'diverged' | 'missing-local' | 'created' | 'updated' | 'merged' | 'rebased' | 'unchanged' | 'failed';

export interface BranchSync {
  local: string;
  remote: string;
  outcome: BranchOutcome;
  /** Local commit before and after (absent when the branch did not exist). */
  before?: string;
  after?: string;
  /** The remote's commit. */
  upstream?: string;
  /** Commits only the local branch has, and only the remote's. */
  ahead?: number;
  behind?: number;
  reason?: string;
}

export interface SyncResult {
  action: SyncAction;
  /** When it started and ended, epoch seconds. */
  started: number;
  finished: number;
  ok: boolean;
  /** Why it failed: the fetch's error, or the branches that failed. */
  reason?: string;
  branches: BranchSync[];
}

export interface SyncRequest {
  uid: string;
  url: string;
  action: SyncAction;
  /** `local:remote` entries; undefined: every remote branch under its own name. */
  branchMap?: readonly string[];
  timeoutMs: number;
  signal?: AbortSignal;
}

export async function syncRepo(repos: GitRepos, request: SyncRequest): Promise<SyncResult> {
  const started = Date.now() / 1000;
  const done = (fields: Omit<SyncResult, 'action' | 'started' | 'finished'>): SyncResult => ({ action: request.action, started, finished: Date.now() / 1000, ...fields });
  const dir = await repos.ensure(request.uid);
  const run = (args: string[], okCodes?: number[]) => runGit(args, { cwd: dir, timeoutMs: request.timeoutMs, okCodes, signal: request.signal });
  try {
    await run(['fetch', '--quiet', '--prune', '--no-tags', '--end-of-options', request.url, `+refs/heads/*:${UPSTREAM_REFS}*`]);
  } catch (err) {
    return done({ ok: false, reason: `Fetching ${request.url} failed: ${(err as Error).message}`, branches: [] });
  }
  const upstream = await repos.branches(request.uid, UPSTREAM_REFS);
  const local = await repos.branches(request.uid);
  const mappings: BranchMapping[] = request.branchMap ? parseBranchMap(request.branchMap) : Object.keys(upstream).sort().map((name) => ({ local: name, remote: name }));
  const branches: BranchSync[] = [];
  for (const mapping of mappings) {
    const result: BranchSync = { ...mapping, outcome: 'unchanged', before: local[mapping.local]?.commit, upstream: upstream[mapping.remote]?.commit };
    try {
      await syncBranch(result, request.action, dir, run);
    } catch (err) {
      result.outcome = 'failed';
      result.reason = err instanceof GitFailed ? err.message : String((err as Error).message);
    }
    branches.push(result);
  }
  await repos.defaultBranch(request.uid);
  const failed = branches.filter((b) => b.outcome === 'failed');
  return failed.length === 0 ? done({ ok: true, branches }) : done({ ok: false, reason: failed.map((b) => `${b.local}: ${b.reason}`).join('; '), branches });
}

type Run = (args: string[], okCodes?: number[]) => Promise<{ code: number; stdout: Buffer }>;

async function syncBranch(branch: BranchSync, action: SyncAction, dir: string, run: Run): Promise<void> {
  const { before, upstream } = branch;
  if (upstream === undefined) {
    branch.outcome = 'failed';
    branch.reason = `the remote has no branch ${branch.remote}`;
    return;
  }
  const ref = `refs/heads/${branch.local}`;
  // update-ref with the old value (all zeros: must not exist): a concurrent push fails it.
  const update = async (to: string, outcome: BranchOutcome) => {
    await run(['update-ref', '-m', `keel sync ${action}`, ref, to, before ?? '0'.repeat(40)]);
    branch.after = to;
    branch.outcome = outcome;
  };
  if (before === undefined) {
    if (action === 'status') branch.outcome = 'missing-local';
    else await update(upstream, 'created');
    return;
  }
  branch.after = before;
  const counts = (await run(['rev-list', '--left-right', '--count', `${before}...${upstream}`])).stdout.toString().trim().split(/\s+/);
  branch.ahead = Number(counts[0]);
  branch.behind = Number(counts[1]);
  const relation: BranchOutcome = branch.ahead === 0 && branch.behind === 0 ? 'in-step' : branch.behind === 0 ? 'ahead' : branch.ahead === 0 ? 'behind' : 'diverged';
  switch (action) {
    case 'status':
      branch.outcome = relation;
      return;
    case 'checkout':
      return;
    case 'reset':
      if (before !== upstream) await update(upstream, 'updated');
      return;
    case 'pull':
      if (relation === 'behind') await update(upstream, 'updated');
      else if (relation === 'diverged') await update(await mergeCommit(run, branch.local, branch.remote, before, upstream), 'merged');
      return;
    case 'rebase':
      if (relation === 'behind') await update(upstream, 'updated');
      else if (relation === 'diverged') await update(await rebased(run, dir, before, upstream), 'rebased');
      return;
  }
}

/** A merge of `theirs` into `ours`, made without a worktree; throws on a conflict. */
async function mergeCommit(run: Run, localName: string, remoteName: string, ours: string, theirs: string): Promise<string> {
  const merge = await run(['merge-tree', '--write-tree', '--no-messages', ours, theirs], [0, 1]);
  const tree = merge.stdout.toString().split('\n')[0]!.trim();
  if (merge.code !== 0) throw new Error(`merging the remote's ${remoteName} conflicts: ${merge.stdout.toString().split('\n').slice(1).filter(Boolean).join(', ') || 'conflict'}`);
  const commit = await run(['commit-tree', tree, '-p', ours, '-p', theirs, '-m', `Merge ${remoteName} of the remote into ${localName}`]);
  return commit.stdout.toString().trim();
}

/** `local`'s own commits replayed onto `upstream` in a temporary worktree; throws on a conflict. */
async function rebased(run: Run, dir: string, local: string, upstream: string): Promise<string> {
  const worktree = `${dir}.rebase-${process.pid}-${Date.now()}`;
  await run(['worktree', 'add', '--quiet', '--detach', '--', worktree, local]);
  try {
    const rebase = await runIn(run, worktree, ['rebase', '--quiet', upstream], [0, 1]);
    if (rebase.code !== 0) {
      await runIn(run, worktree, ['rebase', '--abort'], [0, 1, 128]);
      throw new Error(`rebasing onto the remote conflicts`);
    }
    return (await runIn(run, worktree, ['rev-parse', 'HEAD'])).stdout.toString().trim();
  } finally {
    await run(['worktree', 'remove', '--force', '--', worktree], [0, 128]);
    await rm(worktree, { recursive: true, force: true });
    await run(['worktree', 'prune']);
  }
}

/** `run` in another directory: `-C` again, after the repository's (git applies them in turn). */
function runIn(run: Run, dir: string, args: string[], okCodes?: number[]) {
  return run(['-C', dir, ...args], okCodes);
}
