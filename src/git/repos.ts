// The bare repositories of the gitrepo objects: one per record, `<data-dir>/gitrepos/<uid>.git`
// (named by uid, so renaming a gitrepo moves nothing), created on first use and removed with the
// record. Reading files and directories at a revision, listing and deleting branches. Every name
// and path reaching git is checked first (classes/gitrepo.ts) and passed where git cannot take it
// for an option.
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isBranchName, isRepoPath, isRevision } from '../model/classes/gitrepo.js';
import { Invalid, NotFound } from '../model/errors.js';
import { MAX_OUTPUT_BYTES, runGit } from './run.js';

export const GITREPO_DIR = 'gitrepos';
/** The branch a new repository's HEAD names. */
const INITIAL_BRANCH = 'main';
const UID = /^[0-9a-f]{32}$/;
/** Where a sync keeps the remote's branches as last fetched (hidden from clients). */
export const UPSTREAM_REFS = 'refs/keel-upstream/';

export type RepoEntry =
  | { kind: 'file'; bytes: Buffer; commit: string }
  | { kind: 'directory'; entries: { name: string; directory: boolean }[]; commit: string };

export interface BranchInfo {
  commit: string;
  /** Commit time, epoch seconds. */
  date: number;
  subject: string;
}

export class GitRepos {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(resolve(dataDir), GITREPO_DIR);
  }

  /** The bare repository of record `uid`. */
  dir(uid: string): string {
    if (!UID.test(uid)) throw new Error(`not a uid: ${uid}`);
    return join(this.root, `${uid}.git`);
  }

  /** The repository of `uid`, created (empty, bare) when it does not exist yet. */
  async ensure(uid: string): Promise<string> {
    const dir = this.dir(uid);
    if (existsSync(join(dir, 'HEAD'))) return dir;
    await mkdir(this.root, { recursive: true, mode: 0o755 });
    // Made aside and renamed, so a concurrent request never sees half a repository.
    const temp = `${dir}.${process.pid}.${Date.now()}.tmp`;
    await runGit(['init', '--quiet', '--bare', `--initial-branch=${INITIAL_BRANCH}`, '--', temp]);
    // Pushes may delete and force-update branches (the role that may push may do anything), and
    // every push is fsck'ed: a corrupt object never enters the repository.
    await runGit(['config', 'receive.fsckObjects', 'true'], { cwd: temp });
    await runGit(['config', 'http.receivepack', 'true'], { cwd: temp });
    // What a sync fetched from the remote is keel's own bookkeeping: clients never see it.
    await runGit(['config', 'transfer.hideRefs', UPSTREAM_REFS.slice(0, -1)], { cwd: temp });
    try {
      await rename(temp, dir);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      if (!existsSync(join(dir, 'HEAD'))) throw err;
    }
    return dir;
  }

  async remove(uid: string): Promise<void> {
    await rm(this.dir(uid), { recursive: true, force: true });
  }

  /** The branch HEAD names, pointed at an existing branch first if it names none (a first push of another branch). */
  async defaultBranch(uid: string): Promise<string | undefined> {
    const dir = await this.ensure(uid);
    const head = (await runGit(['symbolic-ref', '--quiet', 'HEAD'], { cwd: dir, okCodes: [0, 1] })).stdout.toString().trim();
    const branches = Object.keys(await this.branches(uid));
    if (head.startsWith('refs/heads/') && branches.includes(head.slice('refs/heads/'.length))) return head.slice('refs/heads/'.length);
    const chosen = ['main', 'master'].find((b) => branches.includes(b)) ?? branches[0];
    if (chosen !== undefined) await runGit(['symbolic-ref', 'HEAD', `refs/heads/${chosen}`], { cwd: dir });
    return chosen;
  }

  /** Local branches (or, with `namespace`, the refs under it, e.g. the fetched upstream's) by name. */
  async branches(uid: string, namespace = 'refs/heads/'): Promise<Record<string, BranchInfo>> {
    const dir = await this.ensure(uid);
    const { stdout } = await runGit(['for-each-ref', '--format=%(refname)%00%(objectname)%00%(committerdate:unix)%00%(contents:subject)', '--', namespace], { cwd: dir });
    const out: Record<string, BranchInfo> = {};
    for (const line of stdout.toString('utf8').split('\n')) {
      if (line === '') continue;
      const [ref, commit, date, subject] = line.split('\0') as [string, string, string, string];
      out[ref.slice(namespace.length)] = { commit, date: Number(date), subject };
    }
    return out;
  }

  /** Delete branches; an unknown one is a NotFound naming it (nothing is deleted then). */
  async deleteBranches(uid: string, names: readonly string[]): Promise<string[]> {
    const dir = await this.ensure(uid);
    const existing = await this.branches(uid);
    for (const name of names) {
      if (!isBranchName(name)) throw new Invalid(`Malformed branch name '${name}'`);
      if (!existing[name]) throw new NotFound(`No branch ${name} in this gitrepo`);
    }
    if (names.length === 0) return [];
    // One transaction: all deleted or none.
    const input = names.map((name) => `delete refs/heads/${name} ${existing[name]!.commit}\n`).join('');
    await runGit(['update-ref', '--stdin'], { cwd: dir, input });
    return [...names];
  }

  /** The commit `rev` names (a branch, a tag or a commit id); NotFound when none. */
  async commitOf(uid: string, rev: string | undefined): Promise<string> {
    const dir = await this.ensure(uid);
    const name = rev ?? (await this.defaultBranch(uid));
    if (name === undefined) throw new NotFound('This gitrepo has no commits yet');
    if (!isRevision(name)) throw new Invalid(`Malformed ref '${name}': a branch or tag name, or a commit id`);
    // Fully qualified candidates: a name is never read as a revision expression or an option.
    const candidates = /^[0-9a-f]{7,40}$/.test(name) ? [`refs/heads/${name}`, `refs/tags/${name}`, name] : [`refs/heads/${name}`, `refs/tags/${name}`];
    for (const candidate of candidates) {
      const { code, stdout } = await runGit(['rev-parse', '--verify', '--quiet', '--end-of-options', `${candidate}^{commit}`], { cwd: dir, okCodes: [0, 1, 128] });
      if (code === 0) return stdout.toString().trim();
    }
    throw new NotFound(`No ref ${name} in this gitrepo`);
  }

  /** The file or directory at `path` ('' for the top level) of revision `rev` (default branch when undefined). */
  async read(uid: string, path: string, rev?: string): Promise<RepoEntry> {
    if (path !== '' && !isRepoPath(path)) throw new Invalid(`Malformed path '${path}': a relative path inside the repository, without . or .. segments`);
    const dir = await this.ensure(uid);
    const commit = await this.commitOf(uid, rev);
    const object = `${commit}:${path}`;
    // `<id> <type> <size>`, or `<object> missing`; the name goes in on stdin, never as an argument.
    const answer = (await runGit(['cat-file', '--batch-check'], { cwd: dir, input: `${object}\n` })).stdout.toString().trim();
    // Parsed from the end: the object name in a `missing` answer may hold spaces.
    const [, kind, size] = answer.split(' ');
    if (/ (missing|ambiguous)$/.test(answer) || size === undefined) throw new NotFound(`No file or directory '${path}' at ${rev ?? 'the default branch'}`);
    if (kind === 'blob') {
      if (Number(size) > MAX_OUTPUT_BYTES) throw new Invalid(`'${path}' is ${size} bytes, more than the ${MAX_OUTPUT_BYTES} served here: clone the repository`);
      return { kind: 'file', bytes: (await runGit(['cat-file', 'blob', object], { cwd: dir })).stdout, commit };
    }
    if (kind !== 'tree') throw new NotFound(`'${path}' is a ${kind}, not a file or directory`);
    const { stdout } = await runGit(['ls-tree', '-z', object], { cwd: dir });
    const entries = stdout.toString('utf8').split('\0').filter((line) => line !== '').map((line) => {
      const tab = line.indexOf('\t');
      return { name: line.slice(tab + 1), directory: line.split(' ')[1] === 'tree' };
    });
    return { kind: 'directory', entries, commit };
  }
}
