// Node objects (spec 001, Node Objects): the machines keel boots. A node is addressed by uid,
// name, MAC (any notation) or IP; its name, index and IP come from its naming pool and network
// (src/model/allocation.ts), its attributes from its groups then itself (src/model/cluster.ts).
// Groups and own attributes of many nodes at once: /nodes/groups, /nodes/attributes (docs/api.md).
// Routes only: the class itself (fields, rules) is src/model/classes/node.ts.
import { badRequest, forbidden, notFound } from '../../http/errors.js';
import { nodeClass } from '../../model/classes/node.js';
import { attribClass } from '../../model/classes/attrib.js';
import { mergedAttributes, nodes, normaliseAttributes } from '../../model/cluster.js';
import { DERIVED_STATUS_KEYS, MISSED_PERIODS_DOWN, REPORTED_AT_FIELD, statusWithDerived } from '../../model/node-state.js';
import { fillPowerUri, parsePowerUri, powerUriTemplate } from '../../model/power-uri.js';
import { isPlainObject, validateBody, type Schema } from '../../model/schema.js';
import { clusterSettings, statusPeriod } from '../../model/settings.js';
import type { StoredRecord } from '../../store/store.js';
import type { ApiContext } from '../context.js';
import { attributesFor, nodeViewFor, powerUriFor } from '../credentials.js';
import { objectRoutes } from '../object-routes.js';
import { actor, type Request, type Route } from '../route.js';
import { selection, SELECTION_BODY } from '../node-selection.js';
import { attributeKeys, attributeRoutes } from './attribs.js';

const nodesOf = (ctx: ApiContext) => ctx.model.nodes;

/** Group ids from a POST/DELETE body (or the body field `what` names): one or a list, resolved to uids. */
function groupUids(ctx: ApiContext, body: unknown, what = 'Request body'): string[] {
  const ids = typeof body === 'string' ? [body] : body;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string'))
    throw badRequest(`${what} must be an attribute group (uid or name) or a non-empty list of them`);
  return ids.map((id) => ctx.model.objects(attribClass).referenceTo('groups', id));
}

const groupsOf = (node: StoredRecord) => (node.groups as string[] | undefined) ?? [];
const ownAttributes = (node: StoredRecord) => (node.attributes as Record<string, string> | undefined) ?? {};

/** What a bulk assignment did to one node: the group uids or attribute keys it gained and lost. */
type NodeDiff = Record<string, string[]>;

const groupsDiff = (before: StoredRecord, after: StoredRecord): NodeDiff => ({
  added: groupsOf(after).filter((g) => !groupsOf(before).includes(g)),
  removed: groupsOf(before).filter((g) => !groupsOf(after).includes(g)),
});

/** Keys only: values may be BMC credentials, and the keys say what changed. */
const attributesDiff = (before: StoredRecord, after: StoredRecord): NodeDiff => ({
  set: Object.keys(ownAttributes(after)).filter((key) => ownAttributes(before)[key] !== ownAttributes(after)[key]),
  removed: Object.keys(ownAttributes(before)).filter((key) => !Object.hasOwn(ownAttributes(after), key)),
});

/**
 * One bulk assignment: the nodes the body names (list, selector or dynamic group; an unknown one
 * is a 404 naming it) changed by `change` in one transaction, all or none. Answers how many were
 * selected, what changed on which node and which were already as asked.
 */
async function assign(req: Request, ctx: ApiContext, change: (node: StoredRecord) => Record<string, unknown>, diff: (before: StoredRecord, after: StoredRecord) => NodeDiff) {
  const chosen = selection(ctx, req.body as Record<string, unknown>);
  const before = new Map<string, StoredRecord>();
  const after = chosen.length === 0 ? [] : await nodesOf(ctx).modifyMany(actor(req), chosen.map((node) => node.uid), (node) => {
    before.set(node.uid, node);
    return change(node);
  });
  const results = after.map((node) => ({ uid: node.uid, name: node.name, ...diff(before.get(node.uid)!, node) }));
  const changed = results.filter((result) => Object.values(result).some((value) => Array.isArray(value) && value.length > 0));
  return {
    selected: results.length,
    changed,
    unchanged: results.filter((result) => !changed.includes(result)).map(({ uid, name }) => ({ uid, name })),
  };
}

const BULK_GROUPS_BODY: Schema = { ...SELECTION_BODY, groups: { type: 'any', required: true, summary: 'Attribute group (uid or name) or a list of them' } };
const bulkAttributesBody = (summary: string): Schema => ({ ...SELECTION_BODY, attributes: { type: 'any', required: true, summary } });
const BULK_ANSWER = '{selected, changed: [{uid, name, …}], unchanged: [{uid, name}]}';

/** Groups and own attributes of many nodes at once (docs/api.md, "Bulk assignment"). */
const bulkRoutes: Route[] = [
  {
    method: 'POST', path: '/nodes/groups', access: nodeClass.writeAccess, body: BULK_GROUPS_BODY,
    summary: `Append attribute group(s) to every node named (nodes | selector | dyngroup), one transaction: ${BULK_ANSWER}, with added and removed group uids`,
    handler: async (req, ctx) => {
      const added = groupUids(ctx, (req.body as Record<string, unknown>).groups, `Field 'groups'`);
      return assign(req, ctx, (node) => ({ ...node, groups: [...groupsOf(node), ...added] }), groupsDiff);
    },
  },
  {
    method: 'DELETE', path: '/nodes/groups', access: nodeClass.writeAccess, body: BULK_GROUPS_BODY,
    summary: `Remove attribute group(s) from every node named (nodes | selector | dyngroup), one transaction: ${BULK_ANSWER}, with added and removed group uids`,
    handler: async (req, ctx) => {
      const removed = groupUids(ctx, (req.body as Record<string, unknown>).groups, `Field 'groups'`);
      return assign(req, ctx, (node) => ({ ...node, groups: groupsOf(node).filter((g) => !removed.includes(g)) }), groupsDiff);
    },
  },
  {
    method: 'PATCH', path: '/nodes/attributes', access: nodeClass.writeAccess, body: bulkAttributesBody('Key-value pairs to set'),
    summary: `Set the given own attributes of every node named (nodes | selector | dyngroup), keeping the others, one transaction: ${BULK_ANSWER}, with the keys set and removed`,
    handler: async (req, ctx) => {
      const pairs = normaliseAttributes((req.body as Record<string, unknown>).attributes, 'attributes');
      return assign(req, ctx, (node) => ({ ...node, attributes: { ...ownAttributes(node), ...pairs } }), attributesDiff);
    },
  },
  {
    method: 'PUT', path: '/nodes/attributes', access: nodeClass.writeAccess, body: bulkAttributesBody('Key-value pairs that replace the own attributes'),
    summary: `Replace the own attributes of every node named (nodes | selector | dyngroup), one transaction: ${BULK_ANSWER}, with the keys set and removed`,
    handler: async (req, ctx) => {
      const pairs = normaliseAttributes((req.body as Record<string, unknown>).attributes, 'attributes');
      return assign(req, ctx, (node) => ({ ...node, attributes: pairs }), attributesDiff);
    },
  },
  {
    method: 'DELETE', path: '/nodes/attributes', access: nodeClass.writeAccess, body: bulkAttributesBody('Attribute name or a list of names to remove'),
    summary: `Remove own attribute(s) of every node named (nodes | selector | dyngroup), one transaction: ${BULK_ANSWER}, with the keys set and removed`,
    handler: async (req, ctx) => {
      const keys = attributeKeys((req.body as Record<string, unknown>).attributes, `Field 'attributes'`);
      return assign(req, ctx, (node) => ({ ...node, attributes: Object.fromEntries(Object.entries(ownAttributes(node)).filter(([key]) => !keys.includes(key))) }), attributesDiff);
    },
  },
];

const STATUS_BODY: Schema = {
  status: { type: 'object', summary: 'Status values (replace the previous status)' },
  hardware: { type: 'object', summary: 'Hardware facts (replace the previous hardware)' },
};

/**
 * Store reported status and/or hardware on a node (each replaces the previous report) and when
 * it came, by the server's clock: the report time and the state derived from it (node-state.ts)
 * are keel's, so a report naming them is refused. One write of the node record: the change log
 * keeps one entry per object (src/store/store.ts), so reports do not grow it.
 */
async function putStatus(ctx: ApiContext, who: string, id: string, body: Record<string, unknown>): Promise<void> {
  if (body.status === undefined && body.hardware === undefined) throw badRequest(`Request body must have 'status' and/or 'hardware'`);
  const derived = isPlainObject(body.status) ? DERIVED_STATUS_KEYS.filter((key) => Object.hasOwn(body.status as object, key)) : [];
  if (derived.length > 0) throw badRequest(`Field 'status': ${derived.join(', ')} ${derived.length > 1 ? 'are' : 'is'} derived by keel from when reports arrive, not reported`);
  const reportedAt = ctx.clock() / 1000;
  await nodesOf(ctx).modify(who, id, (node) => ({
    ...node,
    ...(body.status === undefined ? {} : { status: body.status }),
    ...(body.hardware === undefined ? {} : { hardware: body.hardware }),
    [REPORTED_AT_FIELD]: reportedAt,
  }));
}

async function putAttribs(ctx: ApiContext, who: string, id: string, pairs: Record<string, unknown>): Promise<void> {
  const attributes = normaliseAttributes(pairs, 'attributes');
  await nodesOf(ctx).modify(who, id, (node) => ({ ...node, attributes: { ...(node.attributes as object | undefined), ...attributes } }));
}

/**
 * What a node may write about itself through the token-less PUT /node/putattribs: attributes named
 * `node_<letters, digits, _>`, values of at most NODE_ATTRIBUTE_MAX_LENGTH characters. Every other
 * key — console*, ipmi_*, redfish_*, power*, _boot_config, anything keel or an admin acts on — is
 * an admin's: the head opens devices, talks to BMCs and picks what a node boots from attributes,
 * and a source address is a weak identity (docs/security.md, "What a node may do").
 */
const NODE_WRITABLE_ATTRIBUTE = /^node_[A-Za-z0-9_]{1,59}$/;
const NODE_ATTRIBUTE_MAX_LENGTH = 1024;

/** The pairs a node sent, refused as a whole when any key is not a node's to write. */
function nodeWritablePairs(body: unknown): Record<string, unknown> {
  if (!isPlainObject(body)) throw badRequest('Request body must be a JSON object of key-value pairs');
  const refused = Object.keys(body).filter((key) => !NODE_WRITABLE_ATTRIBUTE.test(key));
  if (refused.length > 0) throw forbidden(`A node may set only node_<name> attributes; refused: ${refused.slice(0, 10).join(', ')}${refused.length > 10 ? ', …' : ''}`);
  const long = Object.keys(body).find((key) => String(body[key]).length > NODE_ATTRIBUTE_MAX_LENGTH);
  if (long !== undefined) throw badRequest(`Attribute '${long}' must have at most ${NODE_ATTRIBUTE_MAX_LENGTH} characters`);
  return body;
}

/**
 * The node a PUT /node/put* request comes from: the one whose IP is the connection's source
 * address. These routes take no token (compute nodes hold none); the address is the identity.
 */
function sourceNode(req: Request, ctx: ApiContext): StoredRecord {
  const uid = nodes(ctx.store).lookup('ip', req.remoteAddress);
  const node = uid === undefined ? undefined : nodes(ctx.store).get(uid);
  if (!node) throw notFound(`No node has IP=${req.remoteAddress}, the address this request came from; use POST with a uid and a token instead`);
  return node;
}

/** GET /nodes and GET /node/<id> with BMC credentials masked for callers below role.poweradmin. */
function withCredentialsMasked(route: Route): Route {
  if (route.method !== 'GET' || (route.path !== '/nodes' && route.path !== '/node/:id')) return route;
  return { ...route, handler: async (req, ctx) => nodeViewFor(req, ctx, await route.handler(req, ctx), route.path === '/nodes') };
}

export const nodeRoutes: Route[] = [
  ...objectRoutes(nodeClass).map(withCredentialsMasked),
  ...bulkRoutes,
  {
    method: 'GET', path: '/node/:id/groups', access: 'role.authuser', summary: 'The node\'s attribute groups (uids), in order',
    handler: (req, ctx) => nodesOf(ctx).resolve(req.params.id!).groups ?? [],
  },
  {
    method: 'POST', path: '/node/:id/groups', access: 'role.fulladmin', summary: 'Append attribute group(s): one or a list',
    handler: async (req, ctx) => {
      const added = groupUids(ctx, req.body);
      await nodesOf(ctx).modify(actor(req), req.params.id!, (node) => ({ ...node, groups: [...((node.groups as string[] | undefined) ?? []), ...added] }));
    },
  },
  {
    method: 'DELETE', path: '/node/:id/groups', access: 'role.fulladmin', summary: 'Remove attribute group(s): one or a list',
    handler: async (req, ctx) => {
      const removed = groupUids(ctx, req.body);
      await nodesOf(ctx).modify(actor(req), req.params.id!, (node) => ({ ...node, groups: ((node.groups as string[] | undefined) ?? []).filter((g) => !removed.includes(g)) }));
    },
  },
  ...attributeRoutes(nodeClass, 'The node\'s merged attributes: its groups\' in order, then its own (BMC credentials masked below role.poweradmin)', (req, ctx) =>
    attributesFor(req, ctx, mergedAttributes(ctx.store, nodesOf(ctx).resolve(req.params.id!)))),
  {
    method: 'GET', path: '/node/:id/status', access: 'role.authuser',
    summary: `The status the node last reported, with last_report (ISO time, null if never) and state: up, down (silent for ${MISSED_PERIODS_DOWN} status periods) or unknown (never reported)`,
    handler: (req, ctx) => statusWithDerived(nodesOf(ctx).resolve(req.params.id!), ctx.clock() / 1000, statusPeriod(clusterSettings(ctx.store))),
  },
  {
    method: 'GET', path: '/node/:id/boot', access: 'role.authuser',
    summary: 'The node\'s last boot and the one before, as keel saw them: phases (dhcp, tftp, script, kernel, initramfs, image, agent) with times and durations, and events (docs/boot-timeline.md)',
    handler: (req, ctx) => {
      const node = nodesOf(ctx).resolve(req.params.id!);
      return { node: node.uid, name: node.name, ...ctx.bootTimelines.timelines(node.uid) };
    },
  },
  {
    method: 'GET', path: '/node/:id/power_uri', access: 'role.authuser',
    summary: 'Where the node\'s BMC is: the field used (power_uri, else redfish_uri), the URI with placeholders filled (unparsed) and split into parts (parsed); credentials masked below role.poweradmin',
    handler: (req, ctx) => {
      const node = nodesOf(ctx).resolve(req.params.id!);
      const found = powerUriTemplate(node);
      if (found === undefined) return { field: null, unparsed: null, parsed: null };
      const unparsed = powerUriFor(req, fillPowerUri(found.template, mergedAttributes(ctx.store, node)));
      return { field: found.field, unparsed, parsed: parsePowerUri(unparsed) ?? null };
    },
  },
  {
    method: 'POST', path: '/node/putstatus', access: 'role.fulladmin', summary: 'Store status and/or hardware reported for the node `uid`',
    body: { uid: { type: 'string', required: true, summary: 'Node (uid, name, MAC or IP)' }, ...STATUS_BODY },
    handler: async (req, ctx) => {
      const body = req.body as Record<string, unknown>;
      await putStatus(ctx, actor(req), body.uid as string, body);
    },
  },
  {
    method: 'POST', path: '/node/putattribs', access: 'role.fulladmin', summary: 'Add the key-value pairs to the own attributes of the node `uid`',
    handler: async (req, ctx) => {
      if (!isPlainObject(req.body) || typeof req.body.uid !== 'string') throw badRequest(`Missing required field 'uid'`);
      const { uid, ...pairs } = req.body;
      await putAttribs(ctx, actor(req), uid, pairs);
    },
  },
  {
    // Public by design (spec): compute nodes report without a token; the source address says which node.
    method: 'PUT', path: '/node/putstatus', access: 'public', summary: 'A node reports its status and/or hardware; identified by its IP, no token',
    body: STATUS_BODY,
    handler: async (req, ctx) => {
      const node = sourceNode(req, ctx);
      await putStatus(ctx, `node:${String(node.name)}`, node.uid, validateBody(STATUS_BODY, req.body, false));
      ctx.bootTimelines.agentContact(node.uid);
    },
  },
  {
    // Public by design (spec), like PUT /node/putstatus.
    method: 'PUT', path: '/node/putattribs', access: 'public', summary: 'A node adds node_<name> key-value pairs to its own attributes; identified by its IP, no token',
    handler: async (req, ctx) => {
      const node = sourceNode(req, ctx);
      await putAttribs(ctx, `node:${String(node.name)}`, node.uid, nodeWritablePairs(req.body));
    },
  },
];
