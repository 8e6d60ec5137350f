// Mirrors every key under a prefix of etcd into a head's local Replica (docs/multihead.md,
// "Replicator"): one etcd watch from the revision after the last one applied, its events applied in
// revision order, each watch response in one LMDB transaction with the revision it completes. After
// a restart the watch resumes from the stored revision; when etcd has compacted that revision away
// (or the watch fell that far behind), the replica is re-read completely at one revision and
// replaced in one transaction. The raw watch stream of etcd3 is used, not its Watcher: the Watcher
// resumes after a reconnection from the revision of the last response header (on creation, the
// newest revision), which skips whatever a catching-up watch had not yet delivered.
import type { Etcd3, IKeyValue, IWatchResponse } from 'etcd3';
import { GRPCOutOfRangeError } from 'etcd3';
import type { Logger } from 'pino';
import { prefixRangeEnd } from './keys.js';
import type { Replica, ReplicaChange, ReplicaValue } from './replica.js';

/** How the replicator started: resumed from its stored revision, or read everything again. */
export type StartMode = 'resumed' | 'full-sync';

export interface ReplicatorOptions {
  client: Etcd3;
  replica: Replica;
  /** Every key under this prefix is mirrored. */
  prefix: string;
  log: Logger;
  /** Keys per range request of a full sync. */
  pageSize?: number;
}

const DEFAULT_PAGE_SIZE = 1000;
/**
 * Watch responses applied but not yet durable: lmdb-js runs their transactions in order and
 * commits those queued together with one fsync, so a burst is not held to one fsync per revision.
 */
const MAX_APPLIES_IN_FLIGHT = 256;
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 5_000;
/**
 * How often the replicator asks etcd a linearizable read, and how long it waits: a member cut off
 * from the quorum keeps a watch open and simply sends nothing, so silence alone says nothing.
 */
const QUORUM_CHECK_MS = 2_000;
const QUORUM_CHECK_DEADLINE_MS = 1_500;
/** Failed checks in a row before the head counts as cut off (one can fail on a busy machine). */
const QUORUM_CHECK_FAILURES = 2;

/** etcd's answer when a watch or read asks for a revision it has compacted away. */
class Compacted extends Error {
  override readonly name = 'Compacted';
}

/** The grpc-js duplex stream behind etcd3's watch(), which is a Node stream (async iterable). */
type WatchStream = Awaited<ReturnType<Etcd3['watchClient']['watch']>> & AsyncIterable<IWatchResponse>;

export class Replicator {
  /** Complete re-reads done since this replicator started (the first sync of an empty replica included). */
  fullSyncs = 0;
  /** etcd events applied since this replicator started. */
  eventsApplied = 0;
  /**
   * Since when (epoch ms) etcd has not answered a linearizable read through this replicator's
   * client, after QUORUM_CHECK_FAILURES checks in a row; undefined while it answers. The replica
   * may then be stale: writes must be refused (docs/multihead.md, "Failures").
   */
  cutOffSince: number | undefined;
  private quorumTimer: NodeJS.Timeout | undefined;
  private quorumFailures = 0;
  private firstQuorumFailure = 0;
  /** A quorum check is under way (one at a time: a cut-off check takes its deadline, and etcd3 retries it). */
  private checking = false;
  private closed = false;
  /** Ends the wait before the next watch attempt (close() calls it: no waiting out a backoff). */
  private wake: (() => void) | undefined;
  private stream: WatchStream | undefined;
  private loop: Promise<void> | undefined;
  private readonly inFlight: Promise<void>[] = [];
  /** Set when an apply failed: what is on disk may miss a revision, so the copy is read again. */
  private applyFailed: unknown;
  private readonly waiters = new Set<{ revision: number; resolve: () => void }>();
  private readonly key: Buffer;
  private readonly rangeEnd: Buffer;

  constructor(private readonly options: ReplicatorOptions) {
    this.key = Buffer.from(options.prefix);
    this.rangeEnd = prefixRangeEnd(this.key);
  }

  /** The revision the replica is complete up to (durably). */
  get revision(): number {
    return this.options.replica.revision;
  }

  /**
   * Starts mirroring; resolves once the watch is established (after a full sync where one was
   * needed), saying whether the stored revision could be resumed from.
   */
  start(): Promise<StartMode> {
    if (this.loop) throw new Error('the replicator is already running');
    this.quorumTimer = setInterval(() => void this.checkQuorum(), QUORUM_CHECK_MS);
    return new Promise((resolve, reject) => {
      let mode: StartMode = this.revision === 0 ? 'full-sync' : 'resumed';
      let started = false;
      this.loop = this.run(
        () => {
          mode = 'full-sync';
        },
        () => {
          if (!started) resolve(mode);
          started = true;
        },
      ).catch((err: unknown) => {
        if (!started) reject(err);
        else this.options.log.error({ err }, 'replicator stopped');
      });
    });
  }

  /** Resolves once the replica holds every change up to `revision` (e.g. one this head just wrote). */
  waitFor(revision: number, timeoutMs: number): Promise<void> {
    if (this.revision >= revision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`the replica did not reach revision ${revision} within ${timeoutMs} ms (at ${this.revision})`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.quorumTimer);
    this.wake?.();
    this.stream?.cancel();
    await this.loop;
    await Promise.allSettled(this.inFlight);
  }

  /** One linearizable read with a short deadline; see `cutOffSince`. */
  private async checkQuorum(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      await this.options.client.kv.range({ key: this.key, limit: 1, keys_only: true }, { deadline: Date.now() + QUORUM_CHECK_DEADLINE_MS });
      if (this.cutOffSince !== undefined) this.options.log.info({ since: new Date(this.cutOffSince).toISOString() }, 'etcd quorum reachable again');
      this.quorumFailures = 0;
      this.cutOffSince = undefined;
    } catch (err) {
      if (this.quorumFailures++ === 0) this.firstQuorumFailure = Date.now();
      if (this.quorumFailures >= QUORUM_CHECK_FAILURES && this.cutOffSince === undefined) {
        this.cutOffSince = this.firstQuorumFailure;
        this.options.log.warn({ err }, 'etcd quorum unreachable: the replica may be stale');
      }
    } finally {
      this.checking = false;
    }
  }

  private async run(onFullSync: () => void, onStarted: () => void): Promise<void> {
    let retryMs = RETRY_FIRST_MS;
    let needFullSync = this.revision === 0;
    while (!this.closed) {
      try {
        if (needFullSync) {
          onFullSync();
          await this.fullSync();
          needFullSync = false;
        }
        await this.watch(() => {
          retryMs = RETRY_FIRST_MS;
          onStarted();
        });
      } catch (err) {
        if (this.closed) return;
        if (err instanceof Compacted || this.applyFailed !== undefined) {
          this.options.log.warn({ revision: this.revision, reason: String(err) }, 'replica behind a compaction or incomplete: reading everything again');
          needFullSync = true;
          continue;
        }
        this.options.log.warn({ err, revision: this.revision, retryMs }, 'etcd watch failed; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    }
  }

  /** Watches from the revision after the replica's until the stream fails (throws) or the replicator closes. */
  private async watch(onCreated: () => void): Promise<void> {
    await this.refuseIfCompacted();
    const stream = (await this.options.client.watchClient.watch()) as WatchStream;
    this.stream = stream;
    if (this.closed) stream.cancel();
    // A revision compacted away is answered by etcd with a created response and then a canceled
    // one carrying compact_revision.
    stream.write({ create_request: { key: this.key, range_end: this.rangeEnd, start_revision: this.revision + 1, progress_notify: true } });
    try {
      for await (const response of stream) {
        if (this.applyFailed !== undefined) throw new Error('an apply failed');
        if (response.compact_revision && response.compact_revision !== '0') throw new Compacted(`revision ${this.revision + 1} compacted (etcd keeps from ${response.compact_revision})`);
        if (response.canceled) throw new Error(`etcd canceled the watch: ${response.cancel_reason || 'no reason given'}`);
        if (response.created) {
          onCreated();
          continue;
        }
        await this.applyResponse(response);
      }
    } finally {
      stream.cancel();
      this.stream = undefined;
    }
    if (!this.closed) throw new Error('etcd ended the watch stream');
  }

  /**
   * Applies one watch response: its events, or for a progress notification (no events) the
   * revision etcd says everything up to has been sent, so that a resume starts after it.
   */
  private async applyResponse(response: IWatchResponse): Promise<void> {
    const changes: ReplicaChange[] = response.events.map((event) => ({
      key: event.kv.key.toString('utf8'),
      value: String(event.type).toUpperCase() === 'DELETE' ? undefined : event.kv.value,
      revision: Number(event.kv.mod_revision),
    }));
    const revision = changes.length > 0 ? changes.at(-1)!.revision : Number(response.header.revision);
    if (revision <= this.revision && changes.length === 0) return;
    const applied = this.options.replica.apply(changes, revision).then(
      () => {
        this.eventsApplied += changes.length;
        this.wakeWaiters(revision);
      },
      (err: unknown) => {
        this.applyFailed ??= err;
      },
    );
    this.inFlight.push(applied);
    void applied.finally(() => this.inFlight.splice(this.inFlight.indexOf(applied), 1));
    if (this.inFlight.length >= MAX_APPLIES_IN_FLIGHT) await this.inFlight[0];
  }

  /**
   * Throws Compacted when etcd no longer has the replica's revision: a read at revision R works
   * exactly when a watch from R + 1 can start. Asked before watching because etcd answers such a
   * watch first as created and cancels it only after (handled too: compaction can come between).
   */
  private async refuseIfCompacted(): Promise<void> {
    try {
      await this.options.client.kv.range({ key: this.key, range_end: this.rangeEnd, revision: this.revision, limit: 1, keys_only: true });
    } catch (err) {
      if (err instanceof GRPCOutOfRangeError && /compacted/.test(err.message)) throw new Compacted(`revision ${this.revision} compacted`);
      throw err;
    }
  }

  /** Reads every key under the prefix at one revision and replaces the replica with it. */
  private async fullSync(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    const snapshot = new Map<string, ReplicaValue>();
    const pageSize = this.options.pageSize ?? DEFAULT_PAGE_SIZE;
    let revision = 0;
    let from = this.key;
    for (;;) {
      let page;
      try {
        // The first page fixes the revision; the next ones read at it, so the pages add up to one snapshot.
        page = await this.options.client.kv.range({ key: from, range_end: this.rangeEnd, limit: pageSize, revision });
      } catch (err) {
        if (err instanceof GRPCOutOfRangeError) throw new Compacted(`snapshot revision ${revision} compacted while reading`);
        throw err;
      }
      if (revision === 0) revision = Number(page.header.revision);
      for (const kv of page.kvs) snapshot.set(kv.key.toString('utf8'), entryOf(kv));
      if (!page.more || page.kvs.length === 0) break;
      from = Buffer.concat([page.kvs.at(-1)!.key, Buffer.from([0])]);
    }
    await this.options.replica.replace(snapshot, revision);
    this.applyFailed = undefined;
    this.fullSyncs++;
    this.wakeWaiters(revision);
    this.options.log.info({ revision, keys: snapshot.size }, 'replica read from etcd');
  }

  private wakeWaiters(revision: number): void {
    for (const waiter of this.waiters) if (revision >= waiter.revision) {
      this.waiters.delete(waiter);
      waiter.resolve();
    }
  }
}

const entryOf = (kv: IKeyValue): ReplicaValue => ({ value: kv.value, revision: Number(kv.mod_revision) });
