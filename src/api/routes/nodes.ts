// Node objects (spec 001, Node Objects): the machines keel boots. A node is addressed by uid,
// name, MAC (any notation) or IP; its name, index and IP come from its naming pool and network
// (src/cluster/allocation.ts), its attributes from its groups then itself (src/cluster/model.ts).
import { isIPv4 } from 'node:net';
import { normaliseMac } from '../../cluster/address.js';
import { placeNode } from '../../cluster/allocation.js';
import { attribGroups, mergedAttributes, namingPools, networks, nodes, normaliseAttributes, openClusterCollections, resolveRef } from '../../cluster/model.js';
import { parsePowerUri, substitutePowerUri } from '../../cluster/power-uri.js';
import { nodeIndexes } from '../../store/classes.js';
import type { Store, StoredRecord } from '../../store/store.js';
import type { ApiContext } from '../context.js';
import { badRequest, notFound } from '../errors.js';
import { objectRoutes, objectStore, type ObjectClass } from '../objects.js';
import type { Request, Route } from '../route.js';
import { isPlainObject, validateBody, type Schema } from '../validation.js';
import { attributeRoutes } from './attribs.js';

export const NODE_TYPES = ['unknown', 'compute', 'head', 'simulated'] as const;

/** Domain of nodes on networks without one. */
export const DEFAULT_DOMAIN = 'cluster.local';

export const nodeClass: ObjectClass = {
  name: 'node',
  plural: 'nodes',
  label: 'node',
  indexes: nodeIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  opens: openClusterCollections,
  bulkCreate: true,
  fields: {
    name: { type: 'string', readOnly: true, summary: 'Computed from the naming pool pattern and the node\'s index', source: 'naming pool' },
    description: { type: 'string', summary: 'Free text' },
    type: { type: 'string', enum: NODE_TYPES, summary: 'Kind of node (default compute)' },
    mac: { type: 'string', required: true, summary: 'MAC address of the boot interface; unique; any notation, stored as aa:bb:cc:dd:ee:ff' },
    attributes: { type: 'object', summary: 'The node\'s own attributes; they override those of its groups' },
    groups: { type: 'string[]', summary: 'Attribute groups (uids or names; stored as uids), applied in order' },
    naming_pool: { type: 'string', summary: 'Naming pool (uid or name; stored as uid); default: the cluster\'s default pool' },
    index: { type: 'integer', readOnly: true, summary: 'Place of the node in its naming pool: the lowest free index', source: 'naming pool' },
    ip: { type: 'string', readOnly: true, summary: 'IPv4 address, from the naming pool and its network', source: 'naming pool and network' },
    hostname: { type: 'string', readOnly: true, summary: 'Host name (the node\'s name)', source: 'naming pool' },
    domain: { type: 'string', readOnly: true, summary: 'DNS domain, from the node\'s network (default cluster.local)', source: 'network' },
    power_uri: { type: 'string', summary: 'URI of the power controller; <attribute> placeholders are filled from the node\'s attributes' },
    redfish_uri: { type: 'string', summary: 'URI of the node\'s Redfish service' },
    hardware: { type: 'object', readOnly: true, summary: 'Hardware facts reported by the node (PUT /node/putstatus)', source: 'node' },
  },
  idIndexes: [
    { index: 'name' },
    { index: 'mac', key: normaliseMac },
    { index: 'ip', key: (id) => (isIPv4(id) ? id : undefined) },
  ],
  defaults: () => ({ type: 'compute', attributes: {}, groups: [] }),
  derive(record, { previous, tx, store }) {
    const mac = normaliseMac(record.mac as string);
    if (mac === undefined) throw badRequest(`Field 'mac' must be a MAC address, e.g. 52:54:00:12:34:56`);
    record.mac = mac;
    record.attributes = normaliseAttributes(record.attributes ?? {}, 'attributes');
    const groups = attribGroups(store);
    record.groups = [...new Set(((record.groups as string[] | undefined) ?? []).map((id) => resolveRef(groups, 'attribute group', 'groups', id)))];
    if (record.naming_pool !== undefined) record.naming_pool = resolveRef(namingPools(store), 'naming pool', 'naming_pool', record.naming_pool);
    placeNode(store, tx, record, previous);
  },
  viewReads: ['net'],
  present(record, view, store) {
    view.groups ??= [];
    view.attributes ??= {};
    view.hardware ??= {};
    view.power_uri ??= null;
    if (record.name !== undefined) view.hostname = record.name;
    view.domain = nodeDomain(store, record);
  },
};

function nodeDomain(store: Store, node: StoredRecord): string {
  const net = typeof node.net === 'string' ? networks(store).get(node.net) : undefined;
  return (net?.domain as string | undefined) ?? DEFAULT_DOMAIN;
}

const nodesOf = (ctx: ApiContext) => objectStore(nodeClass, ctx);
const actor = (req: Request) => req.principal!.name;

/** Group ids from a POST/DELETE body (one or a list), resolved to uids. */
function groupUids(ctx: ApiContext, body: unknown): string[] {
  const ids = typeof body === 'string' ? [body] : body;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((id) => typeof id === 'string'))
    throw badRequest('Request body must be an attribute group (uid or name) or a non-empty list of them');
  return ids.map((id) => resolveRef(attribGroups(ctx.store), 'attribute group', 'groups', id));
}

const STATUS_BODY: Schema = {
  status: { type: 'object', summary: 'Status values (replace the previous status)' },
  hardware: { type: 'object', summary: 'Hardware facts (replace the previous hardware)' },
};

/** Store reported status and/or hardware on a node (each replaces the previous report). */
async function putStatus(ctx: ApiContext, who: string, id: string, body: Record<string, unknown>): Promise<void> {
  if (body.status === undefined && body.hardware === undefined) throw badRequest(`Request body must have 'status' and/or 'hardware'`);
  await nodesOf(ctx).modify(who, id, (node) => ({
    ...node,
    ...(body.status === undefined ? {} : { status: body.status }),
    ...(body.hardware === undefined ? {} : { hardware: body.hardware }),
  }));
}

async function putAttribs(ctx: ApiContext, who: string, id: string, pairs: Record<string, unknown>): Promise<void> {
  const attributes = normaliseAttributes(pairs, 'attributes');
  await nodesOf(ctx).modify(who, id, (node) => ({ ...node, attributes: { ...(node.attributes as object | undefined), ...attributes } }));
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

export const nodeRoutes: Route[] = [
  ...objectRoutes(nodeClass),
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
  ...attributeRoutes(nodeClass, 'The node\'s merged attributes: its groups\' in order, then its own', (req, ctx) =>
    mergedAttributes(ctx.store, nodesOf(ctx).resolve(req.params.id!))),
  {
    method: 'GET', path: '/node/:id/status', access: 'role.authuser', summary: 'The status the node last reported',
    handler: (req, ctx) => nodesOf(ctx).resolve(req.params.id!).status ?? {},
  },
  {
    method: 'GET', path: '/node/:id/power_uri', access: 'role.authuser', summary: 'The power URI with placeholders filled in (unparsed) and split into parts (parsed)',
    handler: (req, ctx) => {
      const node = nodesOf(ctx).resolve(req.params.id!);
      if (typeof node.power_uri !== 'string') return { unparsed: null, parsed: null };
      const unparsed = substitutePowerUri(node.power_uri, mergedAttributes(ctx.store, node), node.hardware as Record<string, unknown> ?? {}, node.status as Record<string, unknown> ?? {});
      return { unparsed, parsed: parsePowerUri(unparsed) ?? null };
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
    },
  },
  {
    // Public by design (spec), like PUT /node/putstatus.
    method: 'PUT', path: '/node/putattribs', access: 'public', summary: 'A node adds key-value pairs to its own attributes; identified by its IP, no token',
    handler: async (req, ctx) => {
      const node = sourceNode(req, ctx);
      if (!isPlainObject(req.body)) throw badRequest('Request body must be a JSON object of key-value pairs');
      await putAttribs(ctx, `node:${String(node.name)}`, node.uid, req.body);
    },
  },
];
