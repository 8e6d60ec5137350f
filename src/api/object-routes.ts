// The standard routes of an object class (src/model/object-store.ts does the work): list, create
// (one or, where the class allows, a list), meta, get, patch, put and delete.
import { describe, fieldsOf, type ObjectClass } from '../model/object-store.js';
import { actor, type Route } from './route.js';

/**
 * The standard routes of a class, under its own path segments or, for an alias such as
 * `/hosts` beside `/hostnames`, under the given ones.
 */
export function objectRoutes(cls: ObjectClass, paths: { one: string; many: string } = { one: cls.name, many: cls.plural }): Route[] {
  const one = `/${paths.one}/:id`;
  const many = `/${paths.many}`;
  const meta = describe(fieldsOf(cls));
  return [
    {
      method: 'GET', path: many, access: cls.readAccess, summary: `List ${cls.plural}, keyed by uid`,
      handler: (_req, ctx) => ctx.model.objects(cls).viewAll(),
    },
    {
      method: 'POST', path: many, access: cls.writeAccess,
      summary: cls.bulkCreate ? `Create a ${cls.label} (returns its uid) or a list of them in one transaction (returns their uids)` : `Create a ${cls.label}; returns its uid`,
      handler: async (req, ctx) => {
        const objects = ctx.model.objects(cls);
        if (cls.bulkCreate && Array.isArray(req.body)) return (await objects.createMany(actor(req), req.body)).map((r) => r.uid);
        return (await objects.create(actor(req), req.body)).uid;
      },
    },
    {
      method: 'GET', path: `${many}/meta`, access: 'public', summary: `Fields of ${cls.label} objects`,
      handler: () => meta,
    },
    {
      method: 'GET', path: one, access: cls.readAccess, summary: `Get a ${cls.label} by uid or name`,
      handler: (req, ctx) => ctx.model.objects(cls).viewOf(req.params.id!),
    },
    {
      method: 'PATCH', path: one, access: cls.writeAccess, summary: `Change the given fields of a ${cls.label}`,
      handler: async (req, ctx) => void (await ctx.model.objects(cls).update(actor(req), req.params.id!, req.body, false)),
    },
    {
      method: 'PUT', path: one, access: cls.writeAccess, summary: `Replace a ${cls.label} (fields not sent are removed)`,
      handler: async (req, ctx) => void (await ctx.model.objects(cls).update(actor(req), req.params.id!, req.body, true)),
    },
    {
      method: 'DELETE', path: one, access: cls.writeAccess, summary: `Delete a ${cls.label}${cls.files ? ' and its files' : ''}`,
      handler: async (req, ctx) => void (await ctx.model.objects(cls).remove(actor(req), req.params.id!)),
    },
  ];
}
