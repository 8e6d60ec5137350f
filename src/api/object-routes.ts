// The standard routes of an object class (src/model/object-store.ts does the work): list (all, or
// those a selector or dynamic group picks), create (one or, where the class allows, a list), meta,
// get, patch, put and delete.
import { badRequest } from '../http/errors.js';
import { dyngroupClass } from '../model/classes/dyngroup.js';
import { nodeClass } from '../model/classes/node.js';
import { selectorSubjects } from '../model/cluster.js';
import { describe, fieldsOf, type ObjectClass } from '../model/object-store.js';
import { selectNodes, type SelectorSubject } from '../model/selector.js';
import type { ApiContext } from './context.js';
import { actor, type Route } from './route.js';

/**
 * What a selector on a class's list reads (docs/selector.md, "On lists"): a node as dynamic groups
 * see it (merged attributes, hardware, status); a record of another class with `attributes` (an
 * attribute group) as its own attributes, with no hardware or status; other classes have nothing
 * a selector can read, which the reason says.
 */
function selectorSubjectsOf(cls: ObjectClass, ctx: ApiContext): (SelectorSubject & { uid: string })[] {
  if (cls.name === nodeClass.name) return selectorSubjects(ctx.store);
  if (!Object.hasOwn(cls.fields, 'attributes'))
    throw badRequest(`A selector reads attributes, hardware and status, which ${cls.label} objects do not have: ?selector= applies to /nodes and /attribs`);
  return ctx.model.objects(cls).collection.list().map((record) => ({
    uid: record.uid,
    attributes: (record.attributes as Record<string, string> | undefined) ?? {},
    hardware: {},
    status: {},
  }));
}

/**
 * The uids `?selector=` or `?dyngroup=` picks from the class's records, in list order; undefined
 * when the query has neither. Evaluated exactly as GET /dyngroup/<id>/nodes does.
 */
function selectedUids(cls: ObjectClass, query: URLSearchParams, ctx: ApiContext): string[] | undefined {
  const selector = query.get('selector');
  const dyngroup = query.get('dyngroup');
  if (selector === null && dyngroup === null) return undefined;
  if (selector !== null && dyngroup !== null) throw badRequest(`Send ?selector= or ?dyngroup=, not both`);
  let text: string;
  if (dyngroup !== null) {
    if (cls.name !== nodeClass.name) throw badRequest(`A dynamic group selects nodes: ?dyngroup= applies to /nodes only`);
    text = ctx.model.objects(dyngroupClass).resolve(dyngroup).selector as string;
  } else text = selector!;
  const result = selectNodes(text, selectorSubjectsOf(cls, ctx));
  if (!result.ok) throw badRequest(`${dyngroup === null ? 'Selector' : `Selector of dynamic group ${dyngroup}`} at column ${result.column}: ${result.reason}`);
  return result.uids;
}

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
      method: 'GET', path: many, access: cls.readAccess,
      summary: `List ${cls.plural}, keyed by uid; ?selector=… (docs/selector.md)${cls.name === nodeClass.name ? ' or ?dyngroup=<id>' : ''} lists those it selects`,
      handler: (req, ctx) => {
        const objects = ctx.model.objects(cls);
        const uids = selectedUids(cls, req.query, ctx);
        if (uids === undefined) return objects.viewAll();
        return Object.fromEntries(uids.map((uid) => [uid, objects.viewOf(uid)]));
      },
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
