// Node objects (spec 001, Node Objects): the machines keel boots. A node is addressed by uid,
// name, MAC (any notation) or IP; its name, index and IP come from its naming pool and network
// (../allocation.ts), its attributes from its groups then itself (../cluster.ts).
import { isIPv4 } from 'node:net';
import type { Store, StoredRecord } from '../../store/store.js';
import { normaliseMac } from '../address.js';
import { placeNode } from '../allocation.js';
import { mergedAttributes, networks, normaliseAttributes } from '../cluster.js';
import { Invalid } from '../errors.js';
import { bootConfigIndexes, nodeIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';

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
  bulkCreate: true,
  references: [{ field: 'groups', className: 'attrib', list: true }, { field: 'naming_pool', className: 'namingpool' }],
  fields: {
    name: { type: 'string', readOnly: true, summary: 'Computed from the naming pool pattern and the node\'s index: to rename, set naming_pool or change the pool\'s pattern (then PUT /namingpool/<id>/push)', source: 'naming pool' },
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
    if (mac === undefined) throw new Invalid(`Field 'mac' must be a MAC address, e.g. 52:54:00:12:34:56`);
    record.mac = mac;
    record.attributes = normaliseAttributes(record.attributes ?? {}, 'attributes');
    if (previous === undefined) giveDefaultBootConfig(store, record);
    // References are uids by now (ObjectStore resolves them before derive): a group named twice counts once.
    record.groups = [...new Set((record.groups as string[] | undefined) ?? [])];
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

/** Name of the boot config new nodes boot by default, created by `keel init --assets` (src/model/default-objects.ts). */
export const DEFAULT_BOOT_CONFIG = 'DefaultBoot';
/** The attribute naming a node's boot config (what src/boot/ipxe-script.ts reads). */
export const BOOT_CONFIG_ATTRIBUTE = '_boot_config';

/**
 * A new node gets `_boot_config: DefaultBoot` of its own (spec 001's node example) when it would
 * otherwise have none — neither its own nor from a group it joins at creation — and a boot config
 * named DefaultBoot exists. Without DefaultBoot it stays unset: naming a boot config that is not
 * there would give the node a retry script instead of whatever the admin sets up later.
 */
function giveDefaultBootConfig(store: Store, record: Record<string, unknown>): void {
  if (mergedAttributes(store, record)[BOOT_CONFIG_ATTRIBUTE] !== undefined) return;
  if (store.collection('bootconfig', bootConfigIndexes).lookup('name', DEFAULT_BOOT_CONFIG) === undefined) return;
  record.attributes = { ...(record.attributes as Record<string, string>), [BOOT_CONFIG_ATTRIBUTE]: DEFAULT_BOOT_CONFIG };
}

function nodeDomain(store: Store, node: StoredRecord): string {
  const net = typeof node.net === 'string' ? networks(store).get(node.net) : undefined;
  return (net?.domain as string | undefined) ?? DEFAULT_DOMAIN;
}
