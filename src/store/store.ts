// The one LMDB environment of a keel head: a named database per object class, secondary indexes
// kept in the same write transaction as their record, and a change feed with a monotonic sequence
// number. Everything above this file talks to the store through `Store`, `Collection` and `WriteTx`.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type DatabaseOptions, type Key, type RootDatabase } from 'lmdb';
import { StoreConflict } from './errors.js';

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
const SETTINGS_DB = '_settings';

export function newUid(): Uid {
  return randomBytes(16).toString('hex');
}

function indexKeys(spec: IndexSpec, record: Record<string, unknown>): string[] {
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

  private feed(className: string, uid: Uid, op: Change['op']): void {
    const change: Change = { seq: this.store.nextSeq(), class: className, uid, op, time: this.now };
    this.store.changeLog.putSync(change.seq, change);
    this.changes.push(change);
  }
}

export interface StoreOptions {
  dataDir: string;
  /** This head's name, stamped into `last_modified_on`. */
  headName: string;
  /** Epoch milliseconds; tests move it. */
  clock?: () => number;
}

export class Store {
  readonly headName: string;
  /** Directory of the LMDB environment. */
  readonly path: string;
  readonly changeLog: Database<Change, number>;
  readonly settings: Database<unknown, string>;
  private readonly root: RootDatabase;
  private closing = false;
  private readonly collections = new Map<string, Collection>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly clock: () => number;
  private seq: number;

  constructor(options: StoreOptions) {
    const dir = join(options.dataDir, 'db');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.headName = options.headName;
    this.path = dir;
    this.clock = options.clock ?? Date.now;
    // Write promises resolve only once the commit is flushed (lmdb-js default without
    // separateFlushed): a write acknowledged to a client survives kill -9 and power loss.
    this.root = open({ path: dir, maxDbs: 256, mapSize: 64 * 1024 ** 3 });
    this.changeLog = this.root.openDB<Change, number>(CHANGES_DB, { encoding: 'msgpack', keyEncoding: 'uint32' });
    this.settings = this.root.openDB<unknown, string>(SETTINGS_DB, { encoding: 'msgpack' });
    this.seq = this.lastCommittedSeq();
  }

  /**
   * A named database in this environment for data that is not an object class (e.g. the chunk
   * store); its writes join `write` transactions like any collection's. Names starting with `_`
   * are reserved for such internal databases so they never collide with a class name.
   */
  openDatabase<V, K extends Key = Key>(name: string, options: DatabaseOptions): Database<V, K> {
    return this.root.openDB<V, K>(name, options);
  }

  collection(className: string, indexes: readonly IndexSpec[] = []): Collection {
    let collection = this.collections.get(className);
    if (!collection) {
      collection = new Collection(className, this.root, indexes);
      this.collections.set(className, collection);
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
      throw err;
    }
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

  /** Committed changes after `seq`, oldest first (for consumers catching up). */
  changesSince(seq: number): Change[] {
    return Array.from(this.changeLog.getRange({ start: seq + 1 }).map(({ value }) => value));
  }

  getSetting<T>(key: string): T | undefined {
    return this.settings.get(key) as T | undefined;
  }

  async putSetting(key: string, value: unknown): Promise<void> {
    await this.settings.put(key, value);
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
   * and the change feed is gap-free. Returns the problems found (empty when sound).
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
    let expected = 1;
    for (const { key, value } of this.changeLog.getRange()) {
      if (key !== expected || value.seq !== key) {
        problems.push(`change feed: expected seq ${expected}, found ${key}`);
        expected = key;
      }
      expected++;
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
