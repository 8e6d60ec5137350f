// Writes of object records to etcd that keep their unique keys unique across every head
// (docs/multihead.md, "Writes"): each record's unique index keys (the same IndexSpecs the local
// store uses: a node's name, MAC…) are etcd keys of their own, and a write is one etcd transaction
// that compares them. A create succeeds only if the record and every key it claims are absent; an
// update only if the record is unchanged since it was read and every key it newly claims is absent;
// otherwise nothing is written. Two heads creating the same name at once: etcd orders the two
// transactions, the second sees the key taken, and its caller gets StoreConflict with the index's
// reason, as on one head.
import type { Etcd3, ICompare, IKeyValue, IRequestOp, ITxnResponse } from 'etcd3';
import { StoreConflict } from '../store/errors.js';
import { indexKeys, type IndexSpec } from '../store/store.js';
import { indexKey, objectKey } from './keys.js';

export type SharedRecord = Record<string, unknown> & { uid: string };

/** Optimistic attempts of an update or delete whose record others keep changing. */
const MAX_ATTEMPTS = 10;

interface Claim {
  spec: IndexSpec;
  key: string;
  etcdKey: string;
}

export class SharedObjects {
  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
  ) {}

  /**
   * Creates `record` (its uid chosen by the caller, new) with its unique keys; resolves with the
   * etcd revision of the write, or throws StoreConflict naming the first key another record holds.
   */
  async create(className: string, indexes: readonly IndexSpec[], record: SharedRecord): Promise<number> {
    const key = objectKey(this.prefix, className, record.uid);
    const claims = this.claims(className, indexes, record);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const result = await this.txn(
        [absent(key), ...claims.map((c) => absent(c.etcdKey))],
        [put(key, JSON.stringify(record)), ...claims.map((c) => put(c.etcdKey, record.uid))],
        [read(key), ...claims.map((c) => read(c.etcdKey))],
      );
      if (result.succeeded) return Number(result.header.revision);
      const [existing, ...holders] = result.responses.map(firstKv);
      // Our own record already there: an earlier attempt of this very transaction committed and its
      // answer was lost (etcd3 retries a call that failed in transit). uids are random, nobody else's.
      if (existing && existing.value.toString('utf8') === JSON.stringify(record)) return Number(existing.mod_revision);
      if (existing) throw new StoreConflict(`${className} ${record.uid} already exists.`);
      const conflict = this.conflict(claims, holders, record.uid);
      if (conflict) throw conflict;
    }
    throw new Error(`${className} ${record.uid}: its unique keys kept changing hands, not created after ${MAX_ATTEMPTS} attempts`);
  }

  /** The record and the revision it was last changed at, read from etcd (linearizable). */
  async get(className: string, uid: string): Promise<{ record: SharedRecord; revision: number } | undefined> {
    const kv = firstKv({ response_range: await this.client.kv.range({ key: Buffer.from(objectKey(this.prefix, className, uid)) }) });
    return kv ? { record: JSON.parse(kv.value.toString('utf8')) as SharedRecord, revision: Number(kv.mod_revision) } : undefined;
  }

  /**
   * Replaces the record with what `change` makes of it (re-run if another head changed it in
   * between); resolves with the etcd revision of the write, undefined when there is no such record,
   * or throws StoreConflict when the new record claims a key another record holds.
   */
  async update(className: string, indexes: readonly IndexSpec[], uid: string, change: (current: SharedRecord) => SharedRecord): Promise<number | undefined> {
    const key = objectKey(this.prefix, className, uid);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(className, uid);
      if (!current) return undefined;
      const next = { ...change(current.record), uid };
      const held = new Set(this.claims(className, indexes, current.record).map((c) => c.etcdKey));
      const claims = this.claims(className, indexes, next);
      const wanted = new Set(claims.map((c) => c.etcdKey));
      const fresh = claims.filter((c) => !held.has(c.etcdKey));
      const result = await this.txn(
        [unchangedSince(key, current.revision), ...fresh.map((c) => absent(c.etcdKey))],
        [put(key, JSON.stringify(next)), ...fresh.map((c) => put(c.etcdKey, uid)), ...[...held].filter((k) => !wanted.has(k)).map(remove)],
        [read(key), ...fresh.map((c) => read(c.etcdKey))],
      );
      if (result.succeeded) return Number(result.header.revision);
      const [now, ...holders] = result.responses.map(firstKv);
      if (!now) return undefined;
      if (Number(now.mod_revision) !== current.revision) continue;
      const conflict = this.conflict(fresh, holders, uid);
      if (conflict) throw conflict;
    }
    throw new Error(`${className} ${uid} kept changing: not updated after ${MAX_ATTEMPTS} attempts`);
  }

  /** Deletes the record and frees its keys; resolves with the revision, or undefined when there was none. */
  async remove(className: string, indexes: readonly IndexSpec[], uid: string): Promise<number | undefined> {
    const key = objectKey(this.prefix, className, uid);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(className, uid);
      if (!current) return undefined;
      const claims = this.claims(className, indexes, current.record);
      const result = await this.txn([unchangedSince(key, current.revision)], [remove(key), ...claims.map((c) => remove(c.etcdKey))], []);
      if (result.succeeded) return Number(result.header.revision);
    }
    throw new Error(`${className} ${uid} kept changing: not deleted after ${MAX_ATTEMPTS} attempts`);
  }

  private claims(className: string, indexes: readonly IndexSpec[], record: SharedRecord): Claim[] {
    return indexes.flatMap((spec) => indexKeys(spec, record).map((key) => ({ spec, key, etcdKey: indexKey(this.prefix, className, spec.name, key) })));
  }

  /**
   * StoreConflict for the first claim another record holds (by the failure branch's reads);
   * undefined when none is held any more (its holder went away in between: worth another attempt).
   */
  private conflict(claims: Claim[], holders: (IKeyValue | undefined)[], uid: string): StoreConflict | undefined {
    const taken = claims.find((_, i) => holders[i] && holders[i].value.toString('utf8') !== uid);
    return taken && new StoreConflict(taken.spec.conflict(taken.key));
  }

  private txn(compare: ICompare[], success: IRequestOp[], failure: IRequestOp[]): Promise<ITxnResponse> {
    return this.client.kv.txn({ compare, success, failure });
  }
}

const absent = (key: string): ICompare => ({ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 });
const unchangedSince = (key: string, revision: number): ICompare => ({ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: revision });
const put = (key: string, value: string): IRequestOp => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } });
const remove = (key: string): IRequestOp => ({ request_delete_range: { key: Buffer.from(key) } });
const read = (key: string): IRequestOp => ({ request_range: { key: Buffer.from(key) } });
const firstKv = (response: { response_range?: { kvs: IKeyValue[] } }): IKeyValue | undefined => response.response_range?.kvs[0];
