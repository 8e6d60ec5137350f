// Attribute-group objects (spec 001, Attribute-Group Objects): named sets of attributes nodes
// inherit in the order of their groups. A change to a group changes every member's merged
// attributes at once, because merged attributes are computed when read, never copied.
// Routes only: the class itself (fields, rules) is src/model/classes/attrib.ts.
import { badRequest } from '../../http/errors.js';
import { attribClass } from '../../model/classes/attrib.js';
import { normaliseAttributes } from '../../model/cluster.js';
import type { ObjectClass } from '../../model/object-store.js';
import { objectRoutes } from '../object-routes.js';
import { attributesFor, groupViewFor } from '../credentials.js';
import type { Route } from '../route.js';

/** Attribute keys from a DELETE body (or the body field `what` names): one key or a list of keys. */
export function attributeKeys(body: unknown, what = 'Request body'): string[] {
  const keys = typeof body === 'string' ? [body] : body;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((key) => typeof key === 'string'))
    throw badRequest(`${what} must be an attribute name or a non-empty list of them`);
  return keys;
}

/**
 * GET/PUT/PATCH/DELETE `<path>` on the `attributes` field of a class's records (attribute groups
 * and, for their own attributes, nodes): PUT replaces, PATCH merges, DELETE removes keys.
 */
export function attributeRoutes(cls: ObjectClass, getSummary: string, get: Route['handler']): Route[] {
  const path = `/${cls.name}/:id/attributes`;
  const change = (fn: (current: Record<string, string>, body: unknown) => Record<string, string>): Route['handler'] => async (req, ctx) => {
    await ctx.model.objects(cls).modify(req.principal!.name, req.params.id!, (record) => ({
      ...record, attributes: fn({ ...(record.attributes as Record<string, string> | undefined) }, req.body),
    }));
  };
  return [
    { method: 'GET', path, access: cls.readAccess, summary: getSummary, handler: get },
    {
      method: 'PUT', path, access: cls.writeAccess, summary: `Replace the ${cls.label}'s own attributes`,
      handler: change((_current, body) => normaliseAttributes(body, 'attributes')),
    },
    {
      method: 'PATCH', path, access: cls.writeAccess, summary: `Set the given attributes of the ${cls.label}, keeping the others`,
      handler: change((current, body) => ({ ...current, ...normaliseAttributes(body, 'attributes') })),
    },
    {
      method: 'DELETE', path, access: cls.writeAccess, summary: `Remove attribute(s) of the ${cls.label}: one key or a list`,
      handler: change((current, body) => {
        for (const key of attributeKeys(body)) delete current[key];
        return current;
      }),
    },
  ];
}

/** GET /attribs and GET /attrib/<id> with BMC credentials masked for callers below role.poweradmin. */
function withCredentialsMasked(route: Route): Route {
  if (route.method !== 'GET' || (route.path !== '/attribs' && route.path !== '/attrib/:id')) return route;
  return { ...route, handler: async (req, ctx) => groupViewFor(req, ctx, await route.handler(req, ctx), route.path === '/attribs') };
}

export const attribRoutes: Route[] = [
  ...objectRoutes(attribClass).map(withCredentialsMasked),
  ...attributeRoutes(attribClass, 'The attribute group\'s key-value pairs (BMC credentials masked below role.poweradmin)', (req, ctx) =>
    attributesFor(req, ctx, (ctx.model.objects(attribClass).resolve(req.params.id!).attributes ?? {}) as Record<string, string>)),
];
