// Naming-pool objects (spec 001, Naming Pool Objects): how nodes are named, numbered and
// addressed. Nodes without a pool are in the cluster's default pool (pattern from /cluster
// `naming`, default n{}).
import { parseIPv4 } from '../../cluster/address.js';
import { renumberNodesIn } from '../../cluster/allocation.js';
import { attribGroups, effectivePool, namingPools, networks, nodes, openClusterCollections, referrers, resolveRef } from '../../cluster/model.js';
import { parsePattern } from '../../cluster/naming.js';
import { namingPoolIndexes } from '../../store/classes.js';
import { badRequest } from '../errors.js';
import { objectRoutes, objectStore, type ObjectClass } from '../objects.js';
import type { Route } from '../route.js';
import { nodeClass } from './nodes.js';

export const namingPoolClass: ObjectClass = {
  name: 'namingpool',
  plural: 'namingpools',
  label: 'naming pool',
  indexes: namingPoolIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  opens: openClusterCollections,
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the pool' },
    pattern: { type: 'string', required: true, summary: 'Name pattern: letters, then {} / {:03d} / {:x} / {:04x}, then optional text, e.g. gpu{:03d}' },
    description: { type: 'string', summary: 'Free text' },
    first_index: { type: 'integer', summary: 'Index of the first node in the pool (default 0)' },
    ip_base: { type: 'string', summary: 'Address of the node with index first_index; the others follow by index (default: lowest free address of the network)' },
    ip_offset: { type: 'integer', summary: 'Like ip_base, as an offset from the network\'s first_ip' },
    network: { type: 'string', summary: 'Network (uid or name; stored as uid) the addresses come from; default: the parent\'s, else the cluster\'s default network' },
    group: { type: 'string', summary: 'Attribute group (uid or name; stored as uid) members inherit when they have no groups of their own' },
    parent: { type: 'string', summary: 'Parent pool (uid or name; stored as uid): network and group are inherited from it when not set' },
  },
  derive(record, { previous, store }) {
    if (record.network !== undefined) record.network = resolveRef(networks(store), 'network', 'network', record.network);
    if (record.group !== undefined) record.group = resolveRef(attribGroups(store), 'attribute group', 'group', record.group);
    if (record.parent !== undefined) {
      const parent = resolveRef(namingPools(store), 'naming pool', 'parent', record.parent);
      record.parent = parent;
      for (let next: string | undefined = parent, hops = 0; next !== undefined && hops < 64; hops++) {
        if (previous && next === previous.uid) throw badRequest(`Field 'parent': naming pool ${String(record.name)} would be its own ancestor`);
        next = namingPools(store).get(next)?.parent as string | undefined;
      }
    }
  },
  validate(record) {
    const pattern = parsePattern(record.pattern as string);
    if (typeof pattern === 'string') return `Field 'pattern' ${pattern}`;
    if ((record.first_index as number | undefined ?? 0) < 0) return `Field 'first_index' must be 0 or more`;
    if (record.ip_base !== undefined && parseIPv4(record.ip_base as string) === undefined) return `Field 'ip_base' must be an IPv4 address`;
    if (record.ip_offset !== undefined && (record.ip_offset as number) < 0) return `Field 'ip_offset' must be 0 or more`;
    if (record.ip_base !== undefined && record.ip_offset !== undefined) return `Fields 'ip_base' and 'ip_offset' exclude each other; give one`;
    return undefined;
  },
  inUse: (record, store) => referrers(store, record.uid, `naming pool ${String(record.name)}`),
};

export const namingPoolRoutes: Route[] = [
  ...objectRoutes(namingPoolClass),
  {
    method: 'GET', path: '/namingpools/info/:node', access: 'role.authuser', summary: 'The naming pool pattern and index that named NODE',
    handler: (req, ctx) => {
      const node = objectStore(nodeClass, ctx).resolve(req.params.node!);
      return { index: node.index, pattern: effectivePool(ctx.store, node.naming_pool as string | undefined).patternText };
    },
  },
  {
    method: 'PUT', path: '/namingpool/:id/push', access: 'role.fulladmin',
    summary: 'Recompute the names and addresses of the pool\'s nodes from the pool as it is now (one transaction); returns what changed',
    handler: async (req, ctx) => {
      const pool = objectStore(namingPoolClass, ctx).resolve(req.params.id!);
      const members = nodes(ctx.store).list().filter((node) => node.naming_pool === pool.uid).sort((a, b) => (a.index as number) - (b.index as number));
      const before = new Map(members.map((node) => [node.uid, node]));
      const after = await objectStore(nodeClass, ctx).modifyMany(req.principal!.name, [...before.keys()], (node, tx) => {
        renumberNodesIn(tx);
        return node;
      });
      return after
        .filter((node) => before.get(node.uid)!.name !== node.name || before.get(node.uid)!.ip !== node.ip)
        .map((node) => ({ uid: node.uid, name: node.name, ip: node.ip ?? null, was: { name: before.get(node.uid)!.name, ip: before.get(node.uid)!.ip ?? null } }));
    },
  },
];
