// The generic object machinery: one declaration per object class (fields, indexes, roles,
// references, files) gives list, create, get by uid or name, patch, put and delete, with frozen
// records, references, attached files and the last_modified_* stamps handled once, here.
import type { ChunkStore } from '../store/chunks.js';
import { StoreConflict } from '../store/errors.js';
import type { Collection, IndexSpec, Store, StoredRecord, WriteTx } from '../store/store.js';
import { Conflict, DomainError, Invalid, NotFound } from './errors.js';
import { fileId, fileSummary } from './files.js';
import type { Role } from './roles.js';
import { validateBody, type FieldSpec, type Schema } from './schema.js';

/** A field holding a reference to another class's record: accepted as uid or name, stored as uid. */
export interface Reference {
  field: string;
  /** Name of the class referred to. */
  className: string;
  /** A list of references (e.g. a distro's repos). */
  list?: boolean;
}

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
  /** Fields naming records of other classes: resolved to uids on write; a referred record cannot be deleted. */
  references?: readonly Reference[];
  /** Slots of the large files a record carries (`content`, `kernel`…): shown in its view, deleted with it. */
  files?: readonly string[];
  /**
   * Complete a record inside the write transaction, before `validate` (computed fields such as
   * a node's name and IP). Throw a DomainError to refuse it.
   */
  derive?(record: Record<string, unknown>, change: { previous: StoredRecord | undefined; tx: WriteTx; store: Store }): void;
  /**
   * Add computed fields to what the API returns for a record (after the stored fields). Views are
   * cached until the record changes: `present` may read only the record and the classes named in
   * `viewReads`.
   */
  present?(record: StoredRecord, view: Record<string, unknown>, store: Store): void;
  /** Classes `present` reads (e.g. a node's network for its domain; may be the class itself): a change there drops every cached view. */
  viewReads?: readonly string[];
  /** Reason a record cannot be deleted besides declared references to it; checked in the transaction. */
  inUse?(record: StoredRecord, store: Store): string | undefined;
  /** Creating accepts a list as well: all created in one transaction. */
  bulkCreate?: boolean;
}

/** The other classes' stores, for references (the Model is one). */
export interface Catalog {
  objectsNamed(className: string): ObjectStore;
  all(): Iterable<ObjectStore>;
}

const NAME_ONLY: NonNullable<ObjectClass['idIndexes']> = [{ index: 'name' }];

const UID_RE = /^[0-9a-f]{32}$/;

/**
 * Longest object name. A name is a key of its class's name index, and an LMDB key holds at most
 * 1,978 bytes: 255 characters stay under it even at 4 UTF-8 bytes each (1,020).
 */
export const MAX_NAME_LENGTH = 255;

export const META_FIELDS: Schema = {
  uid: { type: 'string', summary: 'Unique identifier: 32 lower-case hex characters', readOnly: true, source: 'assigned by keel' },
  last_modified: { type: 'number', summary: 'Time of the last change, epoch seconds', readOnly: true, source: 'keel' },
  last_modified_on: { type: 'string', summary: 'Head that made the last change', readOnly: true, source: 'keel' },
  last_modified_by: { type: 'string', summary: 'Admin who made the last change', readOnly: true, source: 'keel' },
};

const FROZEN_FIELD: FieldSpec = { type: 'boolean', summary: 'When true, the object cannot be changed or deleted until unfrozen', source: 'admin' };

/** The fields a class's records carry: its own, plus `frozen` where records can be frozen. */
export function fieldsOf(cls: ObjectClass): Schema {
  return cls.frozenReason ? { ...cls.fields, frozen: FROZEN_FIELD } : cls.fields;
}

/**
 * Views kept per ObjectStore, so that a read of an unchanged object costs an index lookup instead
 * of a decode and a rebuild (GET /node/<id> is the API's hottest read). Bounded; oldest dropped.
 */
const VIEW_CACHE_SIZE = 100_000;

/** Typed access to one class's records, shared by its routes, sub-resource routes and other layers. */
export class ObjectStore {
  readonly collection: Collection;
  readonly fields: Schema;
  private readonly views = new Map<string, Readonly<Record<string, unknown>>>();

  constructor(
    readonly cls: ObjectClass,
    private readonly store: Store,
    private readonly chunks: ChunkStore,
    private readonly catalog: Catalog,
  ) {
    this.collection = store.collection(cls.name, cls.indexes);
    this.fields = fieldsOf(cls);
    // Committed changes invalidate before the writer's request returns, so a client always reads
    // its own writes; a change to a class that views read (the class itself, for an image's
    // parent) invalidates them all.
    store.subscribe((change) => {
      if (cls.viewReads?.includes(change.class)) this.views.clear();
      else if (change.class === cls.name) this.views.delete(change.uid);
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

  /** The record `id` names, if any. */
  find(id: string): StoredRecord | undefined {
    const uid = this.findUid(id);
    return uid === undefined ? undefined : this.collection.get(uid);
  }

  resolve(id: string): StoredRecord {
    const record = this.find(id);
    if (!record) throw new NotFound(`No ${this.cls.label} found for ID=${id}`);
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

  /**
   * What the API returns for a record: schema fields (not write-only), the meta fields, what the
   * class computes, and a summary of each attached file. Attaching or removing a file changes the
   * record in the same transaction, so a cached view never shows stale files.
   */
  view(record: StoredRecord): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) {
      const spec = this.fields[key] ?? META_FIELDS[key];
      if (spec && !spec.writeOnly && value !== undefined) out[key] = value;
    }
    this.cls.present?.(record, out, this.store);
    for (const slot of this.cls.files ?? []) {
      const manifest = this.chunks.stat(fileId(this.cls.name, record.uid, slot));
      if (manifest) out[slot] = fileSummary(this.chunks, manifest);
    }
    return out;
  }

  /** Create a record; `alongside` writes what belongs to it (e.g. its files) in the same transaction. */
  async create(actor: string, body: unknown, alongside?: (record: StoredRecord, tx: WriteTx) => void): Promise<StoredRecord> {
    const record = await this.newRecord(body);
    return this.write(actor, (tx) => {
      const stored = this.put(tx, undefined, record);
      alongside?.(stored, tx);
      return stored;
    });
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

  /**
   * Change several records in one transaction (a naming-pool push, bulk assignment): all or none.
   * `change` sees each current record; one gone meanwhile or frozen refuses the lot, naming it.
   */
  async modifyMany(actor: string, uids: readonly string[], change: (record: StoredRecord, tx: WriteTx) => Record<string, unknown>): Promise<StoredRecord[]> {
    return this.write(actor, (tx) => uids.map((uid) => {
      const previous = this.collection.get(uid);
      if (!previous) throw new NotFound(`No ${this.cls.label} found for ID=${uid}`);
      if (this.cls.frozenReason && previous.frozen === true) throw new Invalid(`${this.cls.label} ${String(previous.name ?? uid)}: ${this.cls.frozenReason}`);
      return this.put(tx, previous, change(previous, tx));
    }));
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

  /**
   * Change a record with a function of its current value, in one transaction; `change` may also
   * write what belongs to the record (e.g. link a file) through `tx`.
   */
  async modify(actor: string, id: string, change: (record: StoredRecord, tx: WriteTx) => Record<string, unknown>): Promise<StoredRecord> {
    return this.write(actor, (tx) => {
      const previous = this.resolve(id);
      this.refuseIfFrozen(previous, {});
      return this.put(tx, previous, change(previous, tx));
    });
  }

  /** Delete a record and its files, unless it is frozen, referred to, or its class's rules forbid it. */
  async remove(actor: string, id: string): Promise<void> {
    await this.write(actor, (tx) => {
      const previous = this.resolve(id);
      this.refuseIfFrozen(previous, {});
      const reason = this.cls.inUse?.(previous, this.store) ?? this.referredBy(previous);
      if (reason) throw new Invalid(reason);
      tx.remove(this.collection, previous.uid);
      for (const slot of this.cls.files ?? []) this.chunks.unlinkInTx(fileId(this.cls.name, previous.uid, slot));
      this.checkInvariant(previous);
    });
  }

  /** The reason `record` cannot go while records of other classes name it in a reference field. */
  private referredBy(record: StoredRecord): string | undefined {
    const found: string[] = [];
    for (const other of this.catalog.all()) {
      for (const ref of other.cls.references ?? []) {
        if (ref.className !== this.cls.name) continue;
        for (const referrer of other.collection.list()) {
          const value = referrer[ref.field];
          if (value === record.uid || (Array.isArray(value) && value.includes(record.uid))) found.push(`${other.cls.label} ${String(referrer.name ?? referrer.uid)} (${ref.field})`);
        }
      }
    }
    if (found.length === 0) return undefined;
    return `Cannot delete ${this.cls.label} ${String(record.name ?? record.uid)}: still used by ${found.slice(0, 5).join(', ')}${found.length > 5 ? ', …' : ''}`;
  }

  private async accept(body: unknown, requireAll: boolean): Promise<Record<string, unknown>> {
    const fields = validateBody(this.fields, body, requireAll);
    const name = fields.name;
    if (typeof name === 'string' && (name === '' || UID_RE.test(name)))
      throw new Invalid(`Field 'name' must be non-empty and not look like a UID`);
    if (typeof name === 'string' && name.length > MAX_NAME_LENGTH) throw new Invalid(`Field 'name' must have at most ${MAX_NAME_LENGTH} characters`);
    return this.cls.prepare ? this.cls.prepare(fields) : fields;
  }

  /** Store `record` (new, or replacing `previous`) after resolving, deriving and checking it. */
  private put(tx: WriteTx, previous: StoredRecord | undefined, record: Record<string, unknown>): StoredRecord {
    for (const [key, value] of Object.entries(record)) if (value === null) delete record[key];
    this.resolveReferences(record);
    this.cls.derive?.(record, { previous, tx, store: this.store });
    const reason = this.cls.validate?.(record);
    if (reason) throw new Invalid(reason);
    const stored = tx.put(this.collection, { ...record, uid: previous?.uid });
    if (previous) this.checkInvariant(previous);
    return stored;
  }

  private resolveReferences(record: Record<string, unknown>): void {
    for (const ref of this.cls.references ?? []) {
      const value = record[ref.field];
      if (value === undefined) continue;
      const target = this.catalog.objectsNamed(ref.className);
      record[ref.field] = ref.list ? (value as unknown[]).map((id) => target.referenceTo(ref.field, id)) : target.referenceTo(ref.field, value);
    }
  }

  /** The uid of the record `id` names, as the value of a reference field `field`; Invalid naming the field if none. */
  referenceTo(field: string, id: unknown): string {
    const uid = typeof id === 'string' ? this.findUid(id) : undefined;
    if (uid === undefined) throw new Invalid(`Field '${field}': no ${this.cls.label} found for ID=${String(id)}`);
    return uid;
  }

  refuseIfFrozen(record: StoredRecord, change: Record<string, unknown>): void {
    if (!this.cls.frozenReason || record.frozen !== true) return;
    const unfreezing = Object.keys(change).length === 1 && change.frozen === false;
    if (!unfreezing) throw new Invalid(this.cls.frozenReason);
  }

  private checkInvariant(previous: StoredRecord): void {
    const reason = this.cls.invariant?.(this.collection, previous);
    if (reason) throw new Invalid(reason);
  }

  /** One write transaction; an index conflict becomes a Conflict naming the key. */
  async write<R>(actor: string, fn: (tx: WriteTx) => R): Promise<R> {
    try {
      return await this.store.write(actor, fn);
    } catch (err) {
      if (err instanceof StoreConflict) throw new Conflict(err.message);
      throw err;
    }
  }
}

/** An error about one item of a bulk request, prefixed with its position. */
function itemError(err: unknown, index: number): unknown {
  const prefix = `Item ${index}: `;
  if (err instanceof StoreConflict) return new Conflict(prefix + err.message);
  return err instanceof DomainError ? err.withPrefix(prefix) : err;
}

/** Stored fields the client cannot see or set (e.g. a password hash): PUT keeps them. */
function internal(record: StoredRecord, fields: Schema): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([key]) => !Object.hasOwn(fields, key) && !Object.hasOwn(META_FIELDS, key)));
}

/** The `/…/meta` description of a class's fields. */
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
