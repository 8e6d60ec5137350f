// Git repository objects (spec 001, Git Repository Objects): repositories keel hosts (bare, under
// <data-dir>/gitrepos/, src/git/) and keeps in step with a remote. The record says what the
// repository is; its branches and files live in git. The rules every writer of these fields
// shares are here: names, branch names, remote URLs, branch maps and the sync period.
import { gitRepoIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';

/** A name is also a path segment of the clone URL and of `git:<repo>/<path>` sources. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Remote URLs keel fetches from. Only network transports: `file://`, a bare path or git's `ext::`
 * would let whoever edits a gitrepo read the head's own files or run a command on it. A host (or
 * user) starting with `-` would reach ssh as an option (`ssh://-oProxyCommand=…`).
 */
const REMOTE_URL = /^(https?|git|ssh):\/\/(?!-)(?![^\s/@]*@-)[^\s/]+(\/\S*)?$/;

/** Seconds per unit of a sync period written as `10m`, `2h`, `1d` (or `30s`). */
const PERIOD_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

export const gitRepoClass: ObjectClass = {
  name: 'gitrepo',
  plural: 'gitrepos',
  label: 'gitrepo',
  indexes: gitRepoIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the repository: letters, digits, . _ - (the last segment of its clone URL)' },
    description: { type: 'string', summary: 'Free text' },
    public: { type: 'boolean', summary: 'Anyone may clone, fetch and read its content without a token (default false)' },
    url: { type: 'string', summary: 'A remote this repository mirrors: scheduled syncs reset local branches to it (not with upstream)' },
    upstream: { type: 'string', summary: 'A remote this repository follows: scheduled syncs merge it into local branches (not with url)' },
    branch_map: { type: 'string[]', summary: 'Local-to-remote branch mappings, `local:remote` or `name` for both; default every remote branch under its own name' },
    sync_period: { type: 'any', summary: 'Time between syncs with the remote: seconds, or `10m`, `2h`, `1d`; none: sync on demand only' },
  },
  defaults: () => ({ public: false }),
  validate(record) {
    if (!NAME.test(record.name as string)) return `Field 'name' must be letters, digits, . _ - (not starting with . or -), at most 128`;
    if (record.url !== undefined && record.upstream !== undefined) return `Either 'url' or 'upstream' can be defined, not both`;
    for (const field of ['url', 'upstream']) {
      if (record[field] !== undefined && !REMOTE_URL.test(record[field] as string)) return `Field '${field}' must be an http, https, git or ssh URL`;
    }
    if (record.branch_map !== undefined) {
      const problem = branchMapProblem(record.branch_map as string[]);
      if (problem) return `Field 'branch_map': ${problem}`;
    }
    if (record.sync_period !== undefined && syncPeriodSeconds(record.sync_period) === undefined)
      return `Field 'sync_period' must be a number of seconds or a string like 10m, 2h, 1d`;
    return undefined;
  },
};

/** The remote a gitrepo syncs with, and how: a `url` is mirrored, an `upstream` followed. */
export function remoteOf(record: Readonly<Record<string, unknown>>): { url: string; mode: 'mirror' | 'follow' } | undefined {
  if (typeof record.url === 'string') return { url: record.url, mode: 'mirror' };
  if (typeof record.upstream === 'string') return { url: record.upstream, mode: 'follow' };
  return undefined;
}

/** Seconds of a sync period (`600`, `"10m"`, `"2h"`, `"1d"`), or undefined when it is not one. */
export function syncPeriodSeconds(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(value);
  if (!match) return undefined;
  const seconds = Number(match[1]) * PERIOD_UNITS[match[2] || 's']!;
  return seconds > 0 ? seconds : undefined;
}

/**
 * Whether `name` is a branch name keel passes to git: git's own rules (git-check-ref-format) made
 * stricter, so that a name can never be read as an option, a revision expression or a path outside
 * refs/heads/.
 */
export function isBranchName(name: string): boolean {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}$/.test(name)) return false;
  if (name.includes('..') || name.includes('//') || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock')) return false;
  return name.split('/').every((part) => !part.startsWith('.') && !part.endsWith('.lock'));
}

export interface BranchMapping {
  local: string;
  remote: string;
}

/** `local:remote` or `name` entries as pairs; callers check them with branchMapProblem first. */
export function parseBranchMap(entries: readonly string[]): BranchMapping[] {
  return entries.map((entry) => {
    const colon = entry.indexOf(':');
    return colon < 0 ? { local: entry, remote: entry } : { local: entry.slice(0, colon), remote: entry.slice(colon + 1) };
  });
}

export function branchMapProblem(entries: readonly string[]): string | undefined {
  const locals = new Set<string>();
  for (const [i, { local, remote }] of parseBranchMap(entries).entries()) {
    if (!isBranchName(local) || !isBranchName(remote)) return `entry ${i + 1} '${entries[i]}' is not 'local:remote' with two valid branch names`;
    if (locals.has(local)) return `local branch ${local} is mapped twice`;
    locals.add(local);
  }
  return undefined;
}

/** A revision keel passes to git: a branch or tag name, or an abbreviated or full commit id. */
export function isRevision(rev: string): boolean {
  return isBranchName(rev) || /^[0-9a-f]{7,40}$/.test(rev);
}

/**
 * Whether `path` names something inside a repository: relative, `/`-separated, no empty, `.` or
 * `..` segment, no control character (a newline would end git's batch input) or backslash. Checked
 * before git sees it, so no path can leave the tree.
 */
export function isRepoPath(path: string): boolean {
  if (path === '' || path.length > 4096 || path.includes('\\') || [...path].some((c) => c < ' ' || c === '\x7f')) return false;
  return path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** A file in a gitrepo named by a boot config: `git:<repo>/<path>[@<ref>]`. */
export interface GitSource {
  repo: string;
  path: string;
  /** Undefined: the repository's default branch. */
  ref?: string;
}

export const GIT_SOURCE_PREFIX = 'git:';

/** The gitrepo file `text` names, undefined when it is not a `git:` source; throws nothing. */
export function parseGitSource(text: string): GitSource | { problem: string } | undefined {
  if (!text.startsWith(GIT_SOURCE_PREFIX)) return undefined;
  const rest = text.slice(GIT_SOURCE_PREFIX.length);
  const at = rest.lastIndexOf('@');
  const location = at < 0 ? rest : rest.slice(0, at);
  const ref = at < 0 ? undefined : rest.slice(at + 1);
  const slash = location.indexOf('/');
  const repo = slash < 0 ? location : location.slice(0, slash);
  const path = slash < 0 ? '' : location.slice(slash + 1);
  if (!NAME.test(repo) || !isRepoPath(path) || (ref !== undefined && !isRevision(ref)))
    return { problem: `Malformed git source '${text}': expected git:<repo>/<path>[@<ref>]` };
  return ref === undefined ? { repo, path } : { repo, path, ref };
}
