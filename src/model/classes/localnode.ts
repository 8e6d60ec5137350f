// Spec 004's localnodes: installed machines that registered themselves from their postboot script
// (`POST /localnodes?ip=&artifactId=&pingable=`), reachable over SSH from the head's networks, with
// spec 004's sequential `id`. One record per address: a machine that registers again (a reinstall)
// updates its record. docs/registries.md, "Localnodes".
import { inSubnet, parseIPv4 } from '../address.js';
import type { Store } from '../../store/store.js';
import type { ObjectClass } from '../object-store.js';
import { networkClass } from './network.js';
import { allocateId, registryIdKey, registryIndexes } from './registry.js';

export const localnodeClass: ObjectClass = {
  name: 'localnode',
  plural: 'localnodes',
  label: 'localnode',
  indexes: [...registryIndexes('Localnode'), { name: 'ip', keys: (record) => record.ip as string | undefined, conflict: (ip) => `Localnode with ip=${ip} already exists.` }],
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  idIndexes: [{ index: 'id', key: registryIdKey }, { index: 'name' }, { index: 'ip' }],
  fields: {
    ip: { type: 'string', required: true, summary: 'IPv4 address the machine registered (its SSH server)' },
    artifactId: { type: 'string', summary: 'Tag of the artifacts the machine was installed from (spec 004)' },
    pingable: { type: 'boolean', summary: 'Whether the machine answered the last reachability check (its SSH port)' },
    ssh_port: { type: 'integer', summary: 'Port of its SSH server when not 22 (set by an admin)' },
    name: { type: 'string', summary: 'Name (default localnode-<id>)' },
    description: { type: 'string', summary: 'Free text' },
    id: { type: 'integer', readOnly: true, summary: 'Sequential number (spec 004\'s /localnodes/<id>); never reused', source: 'assigned by keel' },
  },
  derive(record, { previous, store }) {
    record.id = previous ? previous.id : allocateId(store, 'localnode');
    record.name ??= `localnode-${String(record.id)}`;
  },
  validate(record) {
    if (parseIPv4(record.ip as string) === undefined) return `Field 'ip' must be an IPv4 address`;
    const port = record.ssh_port;
    if (port !== undefined && !(typeof port === 'number' && port >= 1 && port <= 65535)) return `Field 'ssh_port' must be a port number (1..65535)`;
    return undefined;
  },
};

/** Whether `address` lies in one of keel's networks (the `nets` objects): where self-registration is accepted. */
export function inKeelNetwork(store: Store, address: string): boolean {
  const ip = parseIPv4(address);
  if (ip === undefined) return false;
  return store.collection(networkClass.name).list().some((net) => {
    const first = parseIPv4(net.first_ip as string);
    return first !== undefined && typeof net.mask_bits === 'number' && inSubnet(ip, first, net.mask_bits);
  });
}
