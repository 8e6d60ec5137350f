// Naming-pool objects (spec 001, Naming Pool Objects): how nodes are named and numbered, and
// where their addresses come from; pools inherit network and group from their parents.
import { parseIPv4 } from '../address.js';
import { namingPools, referrers } from '../cluster.js';
import { Invalid } from '../errors.js';
import { namingPoolIndexes } from '../indexes.js';
import { parsePattern } from '../naming.js';
import type { ObjectClass } from '../object-store.js';

export const namingPoolClass: ObjectClass = {
  name: 'namingpool',
  plural: 'namingpools',
  label: 'naming pool',
  indexes: namingPoolIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  references: [{ field: 'network', className: 'net' }, { field: 'group', className: 'attrib' }, { field: 'parent', className: 'namingpool' }],
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
    // References are uids by now (ObjectStore resolves them before derive).
    const parent = record.parent as string | undefined;
    if (parent !== undefined) {
      for (let next: string | undefined = parent, hops = 0; next !== undefined && hops < 64; hops++) {
        if (previous && next === previous.uid) throw new Invalid(`Field 'parent': naming pool ${String(record.name)} would be its own ancestor`);
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
