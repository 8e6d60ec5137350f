// The one LMDB environment of a keel head: a named database per object class, secondary indexes
// kept in the same write transaction as their record, and a change feed with a monotonic sequence
// number. Everything above this file talks to the store through `Store`, `Collection` and `WriteTx`.
import { randomBytes } from 'node:crypto';
import { mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type DatabaseOptions, type Key, type RootDatabase } from 'lmdb';
import { StoreConflict, StoreOutOfSpace } from './errors.js';

export type Uid = string;

/** Fields the store maintains on every record. */
export interface RecordMeta {
  uid: Uid;
  last_modified: number;
  last_modified_on: string;
  last_modified_by: string;
}

export type StoredRecord = RecordMeta & Record<string, unknown>;

export interface IndexSpec {
  /** Index name, e.g. `name`, `mac`. */
  name: string;
  /** Key(s) of a record in this index; `undefined`/empty means "not indexed". Keys must be unique. */
  keys(record: Record<string, unknown>): string[] | string | undefined;
  /** Reason given when a second record claims a key, e.g. `Admin with name=x already exists.` */
  conflict(key: string): string;
}

export interface Change {
  seq: number;
  class: string;
  uid: Uid;
  op: 'put' | 'delete';
  time: number;
}

export type ChangeListener = (change: Change) => void;

const CHANGES_DB = '_changes';
/** `<class>/<uid>` → sequence number of the object's entry in the change log. */
const LATEST_CHANGE_DB = '_changes.by_object';
/** Default of `store.change_log_retention`. */
export const DEFAULT_CHANGE_LOG_RETENTION = 100_000;
/** Default of `store.min_free_bytes` (docs/store.md, "Full disk"). */
export const DEFAULT_MIN_FREE_BYTES = 256 * 1024 * 1024;
/**
 * Below this much room a failed commit is taken for a full disk: LMDB reports a write that found
 * no space as EIO (mdb_page_spill), like a failing disk, and a full one leaves a few pages at most.
 */
const NEARLY_FULL_BYTES = 16 * 1024 * 1024;
/**
 * Writes queued in one event turn before lmdb-js starts their transaction at once rather than after
 * the turn: a burst that large is worth committing while it is still being written.
 */
const TXN_START_THRESHOLD = 1000;
/** LMDB's two meta pages, in no database's page counts. */
const META_PAGES = 2;

/** Page counts of one LMDB tree, as lmdb-js's getStats() reports them. */
interface TreeStats {
  pageSize: number;
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
}

const treePages = (stats: TreeStats): number => stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages;
const SETTINGS_DB = '_settings';

export function newUid(): Uid {
  return randomBytes(16).toString('hex');
}

const changeObjectKey = (className: string, uid: Uid): string => `${className}/${uid}`;

export function indexKeys(spec: IndexSpec, record: Record<string, unknown>): string[] {
  const keys = spec.keys(record);
  if (keys === undefined) return [];
  return (Array.isArray(keys) ? keys : [keys]).filter((k) => k !== '');
}

export class Collection {
  readonly records: Database<StoredRecord, Uid>;
  private readonly indexDbs = new Map<string, Database<Uid, string>>();

  constructor(
    readonly className: string,
    root: RootDatabase,
    readonly indexes: readonly IndexSpec[],
  ) {
    this.records = root.openDB<StoredRecord, Uid>(className, { encoding: 'msgpack' });
    for (const spec of indexes) {
      this.indexDbs.set(spec.name, root.openDB<Uid, string>(`${className}.by_${spec.name}`, { encoding: 'string' }));
    }
  }

  get(uid: Uid): StoredRecord | undefined {
    return this.records.get(uid);
  }

  /** The record database and its index databases, by name. */
  databases(): [string, Database<unknown, Key>][] {
    const indexes = [...this.indexDbs].map(([name, db]): [string, Database<unknown, Key>] => [`${this.className}.by_${name}`, db as Database<unknown, Key>]);
    return [[this.className, this.records as Database<unknown, Key>], ...indexes];
  }

  /** The uid holding `key` in index `index`, if any. */
  lookup(index: string, key: string): Uid | undefined {
    const db = this.indexDbs.get(index);
    if (!db) throw new Error(`${this.className} has no index ${index}`);
    return db.get(key);
  }

  list(): StoredRecord[] {
    return Array.from(this.records.getRange().map(({ value }) => value));
  }

  /** Every uid, in key order, without decoding records. */
  uids(): Uid[] {
    return Array.from(this.records.getKeys());
  }

  count(): number {
    return this.records.getCount();
  }

  /** Index entries as [index name, key, uid] — for the integrity check. */
  *indexEntries(): Generator<[string, string, Uid]> {
    for (const [name, db] of this.indexDbs) {
      for (const { key, value } of db.getRange()) yield [name, key, value];
    }
  }

  /** Writes inside a transaction; only `WriteTx` calls this. */
  putInTx(previous: StoredRecord | undefined, record: StoredRecord): void {
    for (const spec of this.indexes) {
      const db = this.indexDbs.get(spec.name)!;
      const oldKeys = previous ? indexKeys(spec, previous) : [];
      const newKeys = indexKeys(spec, record);
      for (const key of newKeys) {
        const owner = db.get(key);
        if (owner !== undefined && owner !== record.uid) throw new StoreConflict(spec.conflict(key));
      }
      for (const key of oldKeys) if (!newKeys.includes(key)) db.removeSync(key);
      for (const key of newKeys) if (!oldKeys.includes(key)) db.putSync(key, record.uid);
    }
    this.records.putSync(record.uid, record);
  }

  removeInTx(record: StoredRecord): void {
    for (const spec of this.indexes) {
      const db = this.indexDbs.get(spec.name)!;
      for (const key of indexKeys(spec, record)) db.removeSync(key);
    }
    this.records.removeSync(record.uid);
  }
}

/** The handle a write transaction gets: every change through it is indexed and fed. */
export class WriteTx {
  readonly changes: Change[] = [];

  constructor(
    private readonly store: Store,
    readonly actor: string,
    readonly now: number,
  ) {}

  /** Insert or replace a whole record; the store stamps uid (if new) and last_modified_*. */
  put(collection: Collection, record: Record<string, unknown> & { uid?: Uid }): StoredRecord {
    const uid = record.uid ?? newUid();
    const previous = collection.get(uid);
    const stored: StoredRecord = {
      ...record,
      uid,
      last_modified: this.now,
      last_modified_on: this.store.headName,
      last_modified_by: this.actor,
    };
    collection.putInTx(previous, stored);
    this.feed(collection.className, uid, 'put');
    return stored;
  }

  remove(collection: Collection, uid: Uid): boolean {
    const previous = collection.get(uid);
    if (!previous) return false;
    collection.removeInTx(previous);
    this.feed(collection.className, uid, 'delete');
    return true;
  }

  /**
   * Appends the change and keeps the log bounded: the object's previous entry goes (a consumer
   * catching up reads the object as it is now, so only its latest change matters; a node writing
   * its status every second thus keeps one entry, not one per write), and so does every entry
   * `changeLogRetention` or more sequence numbers old (deletes and new objects, which coalescing
   * does not bound).
   */
  private feed(className: string, uid: Uid, op: Change['op']): void {
    const { changeLog, latestChange } = this.store;
    const change: Change = { seq: this.store.nextSeq(), class: className, uid, op, time: this.now };
    const object = changeObjectKey(className, uid);
    const previous = latestChange.get(object);
    if (previous !== undefined) changeLog.removeSync(previous);
    changeLog.putSync(change.seq, change);
    latestChange.putSync(object, change.seq);
    // Usually none or one: the entry that just fell out of the window. (The guard is not only
    // speed: the keys are uint32, and a negative end would not mean "nothing".)
    const windowStart = change.seq - this.store.changeLogRetention + 1;
    if (windowStart > 1) for (const { key, value } of changeLog.getRange({ end: windowStart })) {
      changeLog.removeSync(key);
      const expired = changeObjectKey(value.class, value.uid);
      if (latestChange.get(expired) === key) latestChange.removeSync(expired);
    }
    this.changes.push(change);
  }
}

export interface StoreOptions {
  dataDir: string;
  /** This head's name, stamped into `last_modified_on`. */
  headName: string;
  /** Epoch milliseconds; tests move it. */
  clock?: () => number;
  /** Change-log entries kept (`store.change_log_retention`); default DEFAULT_CHANGE_LOG_RETENTION. */
  changeLogRetention?: number;
  /** Uploads are refused while less room than this is left (`store.min_free_bytes`); default DEFAULT_MIN_FREE_BYTES. */
  minFreeBytes?: number;
}

export class Store {
  readonly headName: string;
  /** Directory of the LMDB environment. */
  readonly path: string;
  readonly changeLog: Database<Change, number>;
  readonly latestChange: Database<number, string>;
  readonly changeLogRetention: number;
  readonly settings: Database<unknown, string>;
  private readonly root: RootDatabase;
  private closing = false;
  private readonly collections = new Map<string, Collection>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly clock: () => number;
  readonly minFreeBytes: number;
  /** Every database opened in the environment, by name (once however often it is opened), for the page count of `availableBytes`. */
  private readonly databases = new Map<string, Database<unknown, Key>>();
  private seq: number;

  constructor(options: StoreOptions) {
    const dir = join(options.dataDir, 'db');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.headName = options.headName;
    this.path = dir;
    this.clock = options.clock ?? Date.now;
    this.minFreeBytes = options.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
    this.changeLogRetention = options.changeLogRetention ?? DEFAULT_CHANGE_LOG_RETENTION;
    // Write promises resolve only once the commit is flushed (lmdb-js default without
    // separateFlushed): a write acknowledged to a client survives kill -9 and power loss.
    // eventTurnBatching off: with it, lmdb-js 3.5.6 opens each event turn's batch with a promise
    // of its own that nobody holds, and when that commit fails (a full disk) the rejection is
    // unhandled and Node ends the process. Without it lmdb-js starts a transaction from a
    // setImmediate, i.e. after the current event turn, unless more than txnStartThreshold writes
    // are queued (default 5: then at once, and the writer thread commits piecemeal while the turn
    // goes on, 8–14 commits for 100 lease writes of one turn). 1,000 keeps the writes of a turn in
    // one commit, as batching did (docs/store.md, "Write path"; DHCP ACK latency, bench/RESULTS.md).
    // (txnStartThreshold is described in lmdb-js's index.d.ts, under eventTurnBatching, but not in
    // its options type: passed as a variable, not a literal, to get past the excess-property check.)
    const lmdbOptions = { path: dir, maxDbs: 256, mapSize: 64 * 1024 ** 3, eventTurnBatching: false, txnStartThreshold: TXN_START_THRESHOLD };
    this.root = open(lmdbOptions);
    this.changeLog = this.root.openDB<Change, number>(CHANGES_DB, { encoding: 'msgpack', keyEncoding: 'uint32' });
    this.latestChange = this.root.openDB<number, string>(LATEST_CHANGE_DB, { encoding: 'msgpack' });
    this.settings = this.root.openDB<unknown, string>(SETTINGS_DB, { encoding: 'msgpack' });
    this.databases.set(CHANGES_DB, this.changeLog as unknown as Database<unknown, Key>);
    this.databases.set(LATEST_CHANGE_DB, this.latestChange as unknown as Database<unknown, Key>);
    this.databases.set(SETTINGS_DB, this.settings as Database<unknown, Key>);
    this.seq = this.lastCommittedSeq();
  }

  /**
   * A named database in this environment for data that is not an object class (e.g. the chunk
   * store); its writes join `write` transactions like any collection's. Names starting with `_`
   * are reserved for such internal databases so they never collide with a class name.
   */
  openDatabase<V, K extends Key = Key>(name: string, options: DatabaseOptions): Database<V, K> {
    const db = this.root.openDB<V, K>(name, options);
    this.databases.set(name, db as unknown as Database<unknown, Key>);
    return db;
  }

  collection(className: string, indexes: readonly IndexSpec[] = []): Collection {
    let collection = this.collections.get(className);
    if (!collection) {
      collection = new Collection(className, this.root, indexes);
      this.collections.set(className, collection);
      for (const [name, db] of collection.databases()) this.databases.set(name, db);
    }
    return collection;
  }

  /** Epoch seconds as a float, as in `last_modified`. */
  now(): number {
    return this.clock() / 1000;
  }

  /**
   * Run `fn` in one write transaction: everything it writes commits together or not at all
   * (a thrown error aborts it). Resolves after the commit is durable; listeners hear the
   * changes only then.
   */
  async write<R>(actor: string, fn: (tx: WriteTx) => R): Promise<R> {
    let tx: WriteTx | undefined;
    try {
      // childTransaction, not transaction: only a nested transaction is rolled back when the
      // callback throws (measured: lmdb-js keeps a plain transaction's writes); it still joins
      // lmdb-js's batched commit, so concurrent writers share one fsync.
      const result = await this.root.childTransaction(() => {
        const seqBefore = this.seq;
        tx = new WriteTx(this, actor, this.now());
        try {
          return fn(tx);
        } catch (err) {
          // Callbacks run one at a time, so nobody else took a number since: hand them out again.
          this.seq = seqBefore;
          throw err;
        }
      });
      for (const change of tx!.changes) for (const listener of this.listeners) listener(change);
      return result;
    } catch (err) {
      // A failed commit (e.g. disk full) loses the whole batch: resume from what is on disk.
      this.seq = this.lastCommittedSeq();
      throw this.writeFailure(err);
    }
  }

  /**
   * Room for new data: the file system's free space (for the unprivileged user) plus the pages
   * inside the LMDB file that no database uses (freed by deletes; LMDB reuses them before it grows
   * the file, so the file system never sees them free again).
   */
  availableBytes(): number {
    const fs = statfsSync(this.path);
    const env = this.root.getStats() as TreeStats & { lastPageNumber: number; free: TreeStats };
    let used = META_PAGES + treePages(env) + treePages(env.free);
    for (const db of this.databases.values()) used += treePages(db.getStats() as TreeStats);
    return fs.bavail * fs.bsize + Math.max(0, env.lastPageNumber + 1 - used) * env.pageSize;
  }

  /** Throws StoreOutOfSpace when less than `minFreeBytes` is available: uploads ask before (and while) writing. */
  refuseIfLowOnSpace(): void {
    const available = this.availableBytes();
    if (available < this.minFreeBytes) throw new StoreOutOfSpace(outOfSpaceReason(available, this.minFreeBytes));
  }

  /**
   * The error to report for a rejected lmdb-js write: StoreOutOfSpace when its commit failed with
   * the data directory (nearly) full, else the error itself.
   */
  writeFailure(err: unknown): unknown {
    if (!isCommitFailure(err)) return err;
    // lmdb-js rejects commitError with the LMDB error (EIO, ENOSPC, MDB_MAP_FULL) only when the
    // whole commit failed, and else never settles it (measured: awaiting it hung an upload): not
    // waited for, only kept from counting as unhandled.
    err.commitError.catch(() => {});
    const available = this.availableBytes();
    if (available >= Math.max(this.minFreeBytes, NEARLY_FULL_BYTES)) return err;
    return new StoreOutOfSpace(outOfSpaceReason(available, this.minFreeBytes));
  }

  private lastCommittedSeq(): number {
    for (const key of this.changeLog.getKeys({ reverse: true, limit: 1 })) return key;
    return 0;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  get lastSeq(): number {
    return this.seq;
  }

  /** Subscribe to committed changes; returns the unsubscribe function. */
  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Committed changes after `seq`, oldest first (for consumers catching up): the latest change of
   * each object changed since, within the retention window (docs/store.md).
   */
  changesSince(seq: number): Change[] {
    return Array.from(this.changeLog.getRange({ start: seq + 1 }).map(({ value }) => value));
  }

  getSetting<T>(key: string): T | undefined {
    return this.settings.get(key) as T | undefined;
  }

  async putSetting(key: string, value: unknown): Promise<void> {
    try {
      await this.settings.put(key, value);
    } catch (err) {
      throw this.writeFailure(err);
    }
  }

  /** Facts about the environment for `GET /cluster/database`. */
  stats(): { path: string; last_seq: number; classes: Record<string, number> } {
    const classes: Record<string, number> = {};
    for (const [name, collection] of this.collections) classes[name] = collection.count();
    return { path: this.path, last_seq: this.seq, classes };
  }

  /**
   * Integrity check: every record decodes and carries its uid and meta fields, every index
   * entry points at a record that still claims that key and every indexed key is present,
   * and the change feed holds one entry per object, all within the retention window. Returns the problems found (empty when sound).
   */
  check(): string[] {
    const problems: string[] = [];
    for (const collection of this.collections.values()) {
      const name = collection.className;
      for (const { key, value } of collection.records.getRange()) {
        if (!value || value.uid !== key) problems.push(`${name}/${String(key)}: uid field does not match key`);
        else if (typeof value.last_modified !== 'number' || typeof value.last_modified_by !== 'string')
          problems.push(`${name}/${key}: missing last_modified fields`);
        for (const spec of collection.indexes) {
          for (const k of indexKeys(spec, value)) {
            if (collection.lookup(spec.name, k) !== key) problems.push(`${name}/${key}: missing from index ${spec.name} (${k})`);
          }
        }
      }
      for (const [index, key, uid] of collection.indexEntries()) {
        const record = collection.get(uid);
        const spec = collection.indexes.find((s) => s.name === index)!;
        if (!record || !indexKeys(spec, record).includes(key)) problems.push(`${name}.by_${index}/${key}: dangling entry → ${uid}`);
      }
    }
    for (const { key, value } of this.changeLog.getRange()) {
      if (value.seq !== key) problems.push(`change feed: entry ${key} says seq ${value.seq}`);
      else if (this.latestChange.get(changeObjectKey(value.class, value.uid)) !== key)
        problems.push(`change feed: entry ${key} is not the latest of ${value.class}/${value.uid}`);
      if (key <= this.seq - this.changeLogRetention) problems.push(`change feed: entry ${key} is past the retention of ${this.changeLogRetention}`);
    }
    for (const { key: object, value: seq } of this.latestChange.getRange()) {
      const change = this.changeLog.get(seq);
      if (!change || changeObjectKey(change.class, change.uid) !== object) problems.push(`change feed: ${object} points at entry ${seq}, which is not its own`);
    }
    return problems;
  }

  /** False from the moment close() begins (lmdb-js unmaps the file at its end). */
  isOpen(): boolean {
    return !this.closing;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.root.close();
  }
}

/** lmdb-js's rejection of a write whose commit failed: the LMDB error follows in `commitError`. */
function isCommitFailure(err: unknown): err is Error & { commitError: Promise<unknown> } {
  return err instanceof Error && (err as { commitError?: unknown }).commitError instanceof Promise;
}

function outOfSpaceReason(available: number, floor: number): string {
  const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `Insufficient storage: ${mib(available)} available in the data directory, writes need at least ${mib(floor)} (store.min_free_bytes); ` +
    'delete files and then DELETE /head/files/unused to free space';
}
