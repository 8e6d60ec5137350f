// The generic object machinery: one declaration per object class (fields, indexes, roles) gives
// list, create, get by uid or name, patch, put, delete and meta, with frozen records and the
// last_modified_* stamps handled once, here.
import type { Collection, IndexSpec, Store, StoredRecord, WriteTx } from '../store/store.js';
import { StoreConflict } from '../store/errors.js';
import type { ApiContext } from './context.js';
import { badRequest, notFound } from './errors.js';
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
}

const UID_RE = /^[0-9a-f]{32}$/;

export const META_FIELDS: Schema = {
  uid: { type: 'string', summary: 'Unique identifier: 32 lower-case hex characters', readOnly: true, source: 'assigned by keel' },
  last_modified: { type: 'number', summary: 'Time of the last change, epoch seconds', readOnly: true, source: 'keel' },
  last_modified_on: { type: 'string', summary: 'Head that made the last change', readOnly: true, source: 'keel' },
  last_modified_by: { type: 'string', summary: 'Admin who made the last change', readOnly: true, source: 'keel' },
};

const FROZEN_FIELD: FieldSpec = { type: 'boolean', summary: 'When true, the object cannot be changed or deleted until unfrozen', source: 'admin' };

/** Typed access to one class's records, shared by its routes and by sub-resource routes. */
export class ObjectStore {
  readonly collection: Collection;
  readonly fields: Schema;

  constructor(
    readonly cls: ObjectClass,
    private readonly store: Store,
  ) {
    this.collection = store.collection(cls.name, cls.indexes);
    this.fields = cls.frozenReason ? { ...cls.fields, frozen: FROZEN_FIELD } : cls.fields;
  }

  /** Uid of the record a URL names: its uid, or its name. */
  findUid(id: string): string | undefined {
    if (UID_RE.test(id) && this.collection.get(id)) return id;
    return this.collection.lookup('name', id);
  }

  resolve(id: string): StoredRecord {
    const uid = this.findUid(id);
    const record = uid === undefined ? undefined : this.collection.get(uid);
    if (!record) throw notFound(`No ${this.cls.label} found for ID=${id}`);
    return record;
  }

  /** What the API returns for a record: schema fields (not write-only) and the meta fields. */
  view(record: StoredRecord): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) {
      const spec = this.fields[key] ?? META_FIELDS[key];
      if (spec && !spec.writeOnly && value !== undefined) out[key] = value;
    }
    return out;
  }

  async create(actor: string, body: unknown): Promise<StoredRecord> {
    const fields = await this.accept(body, true);
    // The client's fields first, so records read back in the order they were written.
    const record = { ...fields };
    for (const [key, value] of Object.entries(this.cls.defaults?.() ?? {})) record[key] ??= value;
    return this.write(actor, (tx) => this.put(tx, undefined, record));
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

  private async write<R>(actor: string, fn: (tx: WriteTx) => R): Promise<R> {
    try {
      return await this.store.write(actor, fn);
    } catch (err) {
      if (err instanceof StoreConflict) throw badRequest(err.message);
      throw err;
    }
  }
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

/** The standard routes of a class. */
export function objectRoutes(cls: ObjectClass): Route[] {
  const objects = (ctx: ApiContext) => objectStore(cls, ctx);
  const one = `/${cls.name}/:id`;
  const actor = (req: Request) => req.principal!.name;
  const fields = cls.frozenReason ? { ...cls.fields, frozen: FROZEN_FIELD } : cls.fields;
  return [
    {
      method: 'GET', path: `/${cls.plural}`, access: cls.readAccess, summary: `List ${cls.plural}, keyed by uid`,
      handler: (_req, ctx) => {
        const store = objects(ctx);
        return Object.fromEntries(store.collection.list().map((r) => [r.uid, store.view(r)]));
      },
    },
    {
      method: 'POST', path: `/${cls.plural}`, access: cls.writeAccess, summary: `Create a ${cls.label}; returns its uid`,
      handler: async (req, ctx) => (await objects(ctx).create(actor(req), req.body)).uid,
    },
    {
      method: 'GET', path: `/${cls.plural}/meta`, access: 'public', summary: `Fields of ${cls.label} objects`,
      handler: () => describe(fields),
    },
    {
      method: 'GET', path: one, access: cls.readAccess, summary: `Get a ${cls.label} by uid or name`,
      handler: (req, ctx) => objects(ctx).view(objects(ctx).resolve(req.params.id!)),
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

