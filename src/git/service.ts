// The gitrepos of a head as a service, made and closed by src/serve.ts: their repositories on disk
// (GitRepos), syncs with their remotes — on demand and every `sync_period`, jittered, one at a time
// per repository, with a timeout — and the last result of each kept beside its repository. It
// follows the store's change feed: a new or changed gitrepo is (re)scheduled, a deleted one's
// repository removed.
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { gitRepoClass, parseGitSource, remoteOf, syncPeriodSeconds } from '../model/classes/gitrepo.js';
import { Invalid, NotFound } from '../model/errors.js';
import type { ObjectStore } from '../model/object-store.js';
import type { Store } from '../store/store.js';
import { GitRepos } from './repos.js';
import { syncRepo, type SyncAction, type SyncResult } from './sync.js';

/** Beside a repository's files, inside its git directory (git ignores it). */
const SYNC_STATUS_FILE = 'keel-sync.json';

export interface GitRepoServiceOptions {
  /** The longest one sync may take (its fetch, merges, rebases); 5 minutes by default. */
  syncTimeoutMs?: number;
  /** Scheduled syncs start after the period × (1 ± jitter), so that repositories with equal periods spread out. */
  jitter?: number;
}

export class GitRepoService {
  readonly repos: GitRepos;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** The sync running or queued per repository: a new one waits for it. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly aborts = new AbortController();
  private readonly syncTimeoutMs: number;
  private readonly jitter: number;
  private unsubscribe?: () => void;

  constructor(
    private readonly store: Store,
    private readonly gitRepos: ObjectStore,
    dataDir: string,
    private readonly log: Logger,
    options: GitRepoServiceOptions = {},
  ) {
    this.repos = new GitRepos(dataDir);
    this.syncTimeoutMs = options.syncTimeoutMs ?? 300_000;
    this.jitter = options.jitter ?? 0.1;
  }

  /** Schedule every gitrepo with a remote and a period, and follow changes from now on. */
  start(): void {
    this.unsubscribe = this.store.subscribe((change) => {
      if (change.class !== gitRepoClass.name) return;
      if (change.op === 'delete') void this.forget(change.uid);
      else this.schedule(change.uid);
    });
    for (const record of this.gitRepos.collection.list()) this.schedule(record.uid);
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.aborts.abort();
    await Promise.allSettled([...this.queues.values()]);
  }

  /**
   * Sync gitrepo `id` now (after the one running, if any) and keep the result; a sync that fails
   * resolves with `ok: false` and the reason. A gitrepo without a remote is an Invalid.
   */
  sync(id: string, action: SyncAction, branchMap?: readonly string[]): Promise<SyncResult> {
    const record = this.gitRepos.resolve(id);
    const remote = remoteOf(record);
    if (!remote) throw new Invalid(`Gitrepo ${record.name as string} has no url or upstream to sync with`);
    return this.enqueue(record.uid, async () => {
      const result = await syncRepo(this.repos, {
        uid: record.uid,
        url: remote.url,
        action,
        branchMap: branchMap ?? (record.branch_map as string[] | undefined),
        timeoutMs: this.syncTimeoutMs,
        signal: this.aborts.signal,
      });
      if (this.gitRepos.collection.get(record.uid)) {
        // Temp file + rename: a reader never sees half a result.
        const path = join(this.repos.dir(record.uid), SYNC_STATUS_FILE);
        await writeFile(`${path}.tmp`, JSON.stringify(result));
        await rename(`${path}.tmp`, path);
      }
      if (!result.ok) this.log.warn({ gitrepo: record.name, action, reason: result.reason }, 'gitrepo sync failed');
      return result;
    });
  }

  /** The last sync's result, undefined before the first. */
  async lastSync(id: string): Promise<SyncResult | undefined> {
    const record = this.gitRepos.resolve(id);
    const path = join(this.repos.dir(record.uid), SYNC_STATUS_FILE);
    if (!existsSync(path)) return undefined;
    return JSON.parse(await readFile(path, 'utf8')) as SyncResult;
  }

  /** The text of a `git:<repo>/<path>[@<ref>]` source (a kickstart a boot config names). */
  async readSource(text: string): Promise<{ text: string; mtime: number }> {
    const source = parseGitSource(text);
    if (!source) throw new Invalid(`'${text}' is not a git: source`);
    if ('problem' in source) throw new Invalid(source.problem);
    const uid = this.gitRepos.collection.lookup('name', source.repo);
    if (uid === undefined) throw new NotFound(`No gitrepo named ${source.repo} (from ${text})`);
    const entry = await this.repos.read(uid, source.path, source.ref);
    if (entry.kind !== 'file') throw new NotFound(`${text} is a directory, not a file`);
    return { text: entry.bytes.toString('utf8'), mtime: Date.now() / 1000 };
  }

  private enqueue<T>(uid: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(uid) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.then(() => {}, () => {});
    this.queues.set(uid, settled);
    void settled.then(() => {
      if (this.queues.get(uid) === settled) this.queues.delete(uid);
    });
    return next;
  }

  /** (Re)arm the timer of gitrepo `uid` from its current record. */
  private schedule(uid: string): void {
    clearTimeout(this.timers.get(uid));
    this.timers.delete(uid);
    if (this.aborts.signal.aborted) return;
    const record = this.gitRepos.collection.get(uid);
    const period = record && remoteOf(record) ? syncPeriodSeconds(record.sync_period) : undefined;
    if (period === undefined) return;
    const delay = period * 1000 * (1 + this.jitter * (2 * Math.random() - 1));
    const timer = setTimeout(() => {
      this.timers.delete(uid);
      // A period shorter than a sync: the next waits for the one running rather than piling up.
      if (this.queues.has(uid)) return this.schedule(uid);
      const current = this.gitRepos.collection.get(uid);
      const remote = current && remoteOf(current);
      if (!remote) return;
      this.sync(uid, remote.mode === 'mirror' ? 'reset' : 'pull').then(
        () => this.schedule(uid),
        (err: unknown) => {
          this.log.error({ err, gitrepo: current.name }, 'scheduled gitrepo sync failed');
          this.schedule(uid);
        },
      );
    }, delay);
    timer.unref();
    this.timers.set(uid, timer);
  }

  private async forget(uid: string): Promise<void> {
    clearTimeout(this.timers.get(uid));
    this.timers.delete(uid);
    await this.queues.get(uid);
    await this.repos.remove(uid);
  }
}
