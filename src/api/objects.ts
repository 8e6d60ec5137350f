// The generic object machinery: one declaration per object class (fields, indexes, roles) gives
// list, create, get by uid or name, patch, put, delete and meta, with frozen records and the
// last_modified_* stamps handled once, here.
import type { Collection, IndexSpec, Store, StoredRecord, WriteTx } from '../store/store.js';
import { StoreConflict } from '../store/errors.js';
import type { ApiContext } from './context.js';
import { badRequest, HttpError, notFound } from './errors.js';
import type { Role } from './rbac.js';
import type { Request, Route } from './route.js';
import { validateBody, type FieldSpec, type Schema } from './validation.js';

export interface ObjectClass {
  /** Singular path segment and store database, e.g. `admin`. */
  name: string;
  /** Plural path segment, e.g. `admins`. */
  plural: string;
  /** Human name in reasons, e.g. `admin` in `No admin found for ID=x`. */
  label: string;
  fields: Schema;
  indexes: readonly IndexSpec[];
  readAccess: Role;
  writeAccess: Role;
  /** Reason when a frozen record is changed; classes without it have no `frozen` field. */
  frozenReason?: string;
  /** Values a new record starts with before the client's fields. */
  defaults?(): Record<string, unknown>;
  /** Turn accepted client fields into stored fields (e.g. hash a password); runs before the transaction. */
  prepare?(fields: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Extra validation of a whole record: return a reason to refuse it. */
  validate?(record: Record<string, unknown>): string | undefined;
  /**
   * Checked inside the transaction after a change or delete of `previous`, with the change
   * already applied: return a reason to refuse it (e.g. "no full admin would remain").
   */
  invariant?(collection: Collection, previous: StoredRecord): string | undefined;
  /**
   * Indexes a URL id is looked up in, in order, after the uid; `key` turns the id into that
   * index's key form (e.g. a MAC in any notation → `aa:bb:…`) or says it cannot be one.
   * Default: the name index as is.
   */
  idIndexes?: readonly { index: string; key?(id: string): string | undefined }[];
  /**
   * Complete a record inside the write transaction, before `validate` (computed fields such as
   * a node's name and IP, references resolved to uids). Throw an HttpError to refuse it.
   */
  derive?(record: Record<string, unknown>, change: { previous: StoredRecord | undefined; tx: WriteTx; store: Store }): void;
  /**
   * Add computed fields to what the API returns for a record (after the stored fields). Views are
   * cached until the record changes: `present` may read only the record and the classes named in
   * `viewReads`.
   */
  present?(record: StoredRecord, view: Record<string, unknown>, store: Store): void;
  /** Classes `present` reads (e.g. a node's network for its domain): a change there drops cached views. */
  viewReads?: readonly string[];
  /** Reason a record cannot be deleted (e.g. other objects refer to it); checked in the transaction. */
  inUse?(record: StoredRecord, store: Store): string | undefined;
  /**
   * Open the other collections `derive`/`inUse` read. Runs when the ObjectStore is made, outside
   * any transaction: LMDB forgets a database first opened inside a transaction that aborts.
   */
  opens?(store: Store): void;
  /** POST to the plural path also accepts a list: all created in one transaction. */
  bulkCreate?: boolean;
}

const NAME_ONLY: NonNullable<ObjectClass['idIndexes']> = [{ index: 'name' }];

const UID_RE = /^[0-9a-f]{32}$/;

export const META_FIELDS: Schema = {
  uid: { type: 'string', summary: 'Unique identifier: 32 lower-case hex characters', readOnly: true, source: 'assigned by keel' },
  last_modified: { type: 'number', summary: 'Time of the last change, epoch seconds', readOnly: true, source: 'keel' },
  last_modified_on: { type: 'string', summary: 'Head that made the last change', readOnly: true, source: 'keel' },
  last_modified_by: { type: 'string', summary: 'Admin who made the last change', readOnly: true, source: 'keel' },
};

const FROZEN_FIELD: FieldSpec = { type: 'boolean', summary: 'When true, the object cannot be changed or deleted until unfrozen', source: 'admin' };

/**
 * Views kept per ObjectStore, so that a read of an unchanged object costs an index lookup instead
 * of a decode and a rebuild (GET /node/<id> is the API's hottest read). Bounded; oldest dropped.
 */
const VIEW_CACHE_SIZE = 100_000;

/** Typed access to one class's records, shared by its routes and by sub-resource routes. */
export class ObjectStore {
  readonly collection: Collection;
  readonly fields: Schema;
  private readonly views = new Map<string, Readonly<Record<string, unknown>>>();

  constructor(
    readonly cls: ObjectClass,
    private readonly store: Store,
  ) {
    this.collection = store.collection(cls.name, cls.indexes);
    this.fields = cls.frozenReason ? { ...cls.fields, frozen: FROZEN_FIELD } : cls.fields;
    cls.opens?.(store);
    // Committed changes invalidate before the writer's request returns, so a client always reads
    // its own writes; a change to a class that views read invalidates them all.
    store.subscribe((change) => {
      if (change.class === cls.name) this.views.delete(change.uid);
      else if (cls.viewReads?.includes(change.class)) this.views.clear();
    });
  }

  /** Uid of the record a URL names: its uid, or a key of one of the class's id indexes. */
  findUid(id: string): string | undefined {
    if (UID_RE.test(id) && this.collection.get(id)) return id;
    for (const { index, key } of this.cls.idIndexes ?? NAME_ONLY) {
      const k = key ? key(id) : id;
      const uid = k === undefined ? undefined : this.collection.lookup(index, k);
      if (uid !== undefined) return uid;
    }
    return undefined;
  }

  resolve(id: string): StoredRecord {
    const uid = this.findUid(id);
    const record = uid === undefined ? undefined : this.collection.get(uid);
    if (!record) throw notFound(`No ${this.cls.label} found for ID=${id}`);
    return record;
  }

  /** The view of the record a URL names (see `view`), from the cache when unchanged. */
  viewOf(id: string): Readonly<Record<string, unknown>> {
    const uid = this.findUid(id);
    const cached = uid === undefined ? undefined : this.views.get(uid);
    return cached ?? this.cachedView(this.resolve(id));
  }

  /** Views of every record, keyed by uid (GET on the plural path). */
  viewAll(): Record<string, Readonly<Record<string, unknown>>> {
    const all: Record<string, Readonly<Record<string, unknown>>> = {};
    for (const uid of this.collection.uids()) {
      const view = this.views.get(uid) ?? (this.collection.get(uid) && this.cachedView(this.collection.get(uid)!));
      if (view) all[uid] = view;
    }
    return all;
  }

  private cachedView(record: StoredRecord): Readonly<Record<string, unknown>> {
    const view = Object.freeze(this.view(record));
    if (this.views.size >= VIEW_CACHE_SIZE) this.views.delete(this.views.keys().next().value!);
    this.views.set(record.uid, view);
    return view;
  }

  /** What the API returns for a record: schema fields (not write-only) and the meta fields. */
  view(record: StoredRecord): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) {
      const spec = this.fields[key] ?? META_FIELDS[key];
      if (spec && !spec.writeOnly && value !== undefined) out[key] = value;
    }
    this.cls.present?.(record, out, this.store);
    return out;
  }

  async create(actor: string, body: unknown): Promise<StoredRecord> {
    const record = await this.newRecord(body);
    return this.write(actor, (tx) => this.put(tx, undefined, record));
  }

  /** Create several records in one transaction: all of them or none (the reason names the item). */
  async createMany(actor: string, bodies: readonly unknown[]): Promise<StoredRecord[]> {
    const records: Record<string, unknown>[] = [];
    for (const [i, body] of bodies.entries()) records.push(await this.newRecord(body).catch((err: unknown) => { throw itemError(err, i); }));
    return this.write(actor, (tx) => records.map((record, i) => {
      try {
        return this.put(tx, undefined, record);
      } catch (err) {
        throw itemError(err, i);
      }
    }));
  }

  /** Change several records in one transaction (e.g. a naming-pool push); `change` sees each current record. */
  async modifyMany(actor: string, uids: readonly string[], change: (record: StoredRecord, tx: WriteTx) => Record<string, unknown>): Promise<StoredRecord[]> {
    return this.write(actor, (tx) => {
      const changed: StoredRecord[] = [];
      for (const uid of uids) {
        const previous = this.collection.get(uid);
        if (previous) changed.push(this.put(tx, previous, change(previous, tx)));
      }
      return changed;
    });
  }

  private async newRecord(body: unknown): Promise<Record<string, unknown>> {
    const fields = await this.accept(body, true);
    // The client's fields first, so records read back in the order they were written.
    const record = { ...fields };
    for (const [key, value] of Object.entries(this.cls.defaults?.() ?? {})) record[key] ??= value;
    return record;
  }

  /** PATCH (replace=false) changes only the given fields; PUT (replace=true) the whole record. */
  async update(actor: string, id: string, body: unknown, replace: boolean): Promise<StoredRecord> {
    const fields = await this.accept(body, replace);
    return this.write(actor, (tx) => {
      const previous = this.resolve(id);
      this.refuseIfFrozen(previous, fields);
      return this.put(tx, previous, replace ? { ...this.cls.defaults?.(), ...internal(previous, this.fields), ...fields } : { ...previous, ...fields });
    });
  }

  /** Change a record with a function of its current value, in one transaction. */
  async modify(actor: string, id: string, change: (record: StoredRecord) => Record<string, unknown>): Promise<StoredRecord> {
    return this.write(actor, (tx) => {
      const previous = this.resolve(id);
      this.refuseIfFrozen(previous, {});
      return this.put(tx, previous, change(previous));
    });
  }

  async remove(actor: string, id: string): Promise<void> {
    await this.write(actor, (tx) => {
      const previous = this.resolve(id);
      this.refuseIfFrozen(previous, {});
      const reason = this.cls.inUse?.(previous, this.store);
      if (reason) throw badRequest(reason);
      tx.remove(this.collection, previous.uid);
      this.checkInvariant(previous);
    });
  }

  private async accept(body: unknown, requireAll: boolean): Promise<Record<string, unknown>> {
    const fields = validateBody(this.fields, body, requireAll);
    const name = fields.name;
    if (typeof name === 'string' && (name === '' || UID_RE.test(name)))
      throw badRequest(`Field 'name' must be non-empty and not look like a UID`);
    return this.cls.prepare ? this.cls.prepare(fields) : fields;
  }

  private put(tx: WriteTx, previous: StoredRecord | undefined, record: Record<string, unknown>): StoredRecord {
    for (const [key, value] of Object.entries(record)) if (value === null) delete record[key];
    this.cls.derive?.(record, { previous, tx, store: this.store });
    const reason = this.cls.validate?.(record);
    if (reason) throw badRequest(reason);
    const stored = tx.put(this.collection, { ...record, uid: previous?.uid });
    if (previous) this.checkInvariant(previous);
    return stored;
  }

  private refuseIfFrozen(record: StoredRecord, change: Record<string, unknown>): void {
    if (!this.cls.frozenReason || record.frozen !== true) return;
    const unfreezing = Object.keys(change).length === 1 && change.frozen === false;
    if (!unfreezing) throw badRequest(this.cls.frozenReason);
  }

  private checkInvariant(previous: StoredRecord): void {
    const reason = this.cls.invariant?.(this.collection, previous);
    if (reason) throw badRequest(reason);
  }

  /** One write transaction; an index conflict becomes a 400 naming the key. */
  async write<R>(actor: string, fn: (tx: WriteTx) => R): Promise<R> {
    try {
      return await this.store.write(actor, fn);
    } catch (err) {
      if (err instanceof StoreConflict) throw badRequest(err.message);
      throw err;
    }
  }
}

/** An error about one item of a bulk request, prefixed with its position. */
function itemError(err: unknown, index: number): unknown {
  if (err instanceof StoreConflict) return badRequest(`Item ${index}: ${err.message}`);
  return err instanceof HttpError ? new HttpError(err.status, `Item ${index}: ${err.message}`, err.headers) : err;
}

/** Stored fields the client cannot see or set (e.g. a password hash): PUT keeps them. */
function internal(record: StoredRecord, fields: Schema): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([key]) => !Object.hasOwn(fields, key) && !Object.hasOwn(META_FIELDS, key)));
}

/** The `/…/meta` description of a class. */
export function describe(fields: Schema): { fields: { path: string[]; summary: string; source: string; format: string }[] } {
  return {
    fields: Object.entries({ ...META_FIELDS, ...fields })
      .filter(([, spec]) => !spec.writeOnly)
      .map(([key, spec]) => ({
        path: [key],
        summary: spec.summary,
        source: spec.source ?? (spec.readOnly ? 'keel' : 'admin'),
        format: spec.enum ? `one of ${spec.enum.join(', ')}` : spec.type,
      })),
  };
}

const objectStores = new WeakMap<Store, Map<string, ObjectStore>>();

/** The ObjectStore of a class over a store (one per class and store). */
export function objectStore(cls: ObjectClass, ctx: { store: Store }): ObjectStore {
  let byClass = objectStores.get(ctx.store);
  if (!byClass) objectStores.set(ctx.store, (byClass = new Map()));
  let objects = byClass.get(cls.name);
  if (!objects) byClass.set(cls.name, (objects = new ObjectStore(cls, ctx.store)));
  return objects;
}

/**
 * The standard routes of a class, under its own path segments or, for an alias such as
 * `/hosts` beside `/hostnames`, under the given ones.
 */
export function objectRoutes(cls: ObjectClass, paths: { one: string; many: string } = { one: cls.name, many: cls.plural }): Route[] {
  const objects = (ctx: ApiContext) => objectStore(cls, ctx);
  const one = `/${paths.one}/:id`;
  const many = `/${paths.many}`;
  const actor = (req: Request) => req.principal!.name;
  const fields = cls.frozenReason ? { ...cls.fields, frozen: FROZEN_FIELD } : cls.fields;
  return [
    {
      method: 'GET', path: many, access: cls.readAccess, summary: `List ${cls.plural}, keyed by uid`,
      handler: (_req, ctx) => objects(ctx).viewAll(),
    },
    {
      method: 'POST', path: many, access: cls.writeAccess,
      summary: cls.bulkCreate ? `Create a ${cls.label} (returns its uid) or a list of them in one transaction (returns their uids)` : `Create a ${cls.label}; returns its uid`,
      handler: async (req, ctx) => {
        if (cls.bulkCreate && Array.isArray(req.body)) return (await objects(ctx).createMany(actor(req), req.body)).map((r) => r.uid);
        return (await objects(ctx).create(actor(req), req.body)).uid;
      },
    },
    {
      method: 'GET', path: `${many}/meta`, access: 'public', summary: `Fields of ${cls.label} objects`,
      handler: () => describe(fields),
    },
    {
      method: 'GET', path: one, access: cls.readAccess, summary: `Get a ${cls.label} by uid or name`,
      handler: (req, ctx) => objects(ctx).viewOf(req.params.id!),
    },
    {
      method: 'PATCH', path: one, access: cls.writeAccess, summary: `Change the given fields of a ${cls.label}`,
      handler: async (req, ctx) => void (await objects(ctx).update(actor(req), req.params.id!, req.body, false)),
    },
    {
      method: 'PUT', path: one, access: cls.writeAccess, summary: `Replace a ${cls.label} (fields not sent are removed)`,
      handler: async (req, ctx) => void (await objects(ctx).update(actor(req), req.params.id!, req.body, true)),
    },
    {
      method: 'DELETE', path: one, access: cls.writeAccess, summary: `Delete a ${cls.label}`,
      handler: async (req, ctx) => void (await objects(ctx).remove(actor(req), req.params.id!)),
    },
  ];
}

