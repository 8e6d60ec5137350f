// Network objects (spec 001, Network Objects): the subnets nodes get addresses on, with what
// authoritative DHCP hands out there (docs/dhcp.md).
import { formatIPv4, inSubnet, parseIPv4, subnetBase, subnetSize } from '../address.js';
import { NETWORK_ORDER_FIELD, networkOrder, networks, referrers } from '../cluster.js';
import { networkIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';

const DOMAIN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IFACE = /^[^/:\s]{1,15}$/;

/** Reason a network record is not a usable subnet, naming the field; undefined when it is. */
export function networkProblem(record: Record<string, unknown>): string | undefined {
  const first = parseIPv4(record.first_ip as string);
  if (first === undefined) return `Field 'first_ip' must be an IPv4 address`;
  const maskBits = record.mask_bits as number;
  if (maskBits < 1 || maskBits > 32) return `Field 'mask_bits' must be between 1 and 32`;
  const base = subnetBase(first, maskBits);
  const size = subnetSize(maskBits);
  // Network and broadcast addresses are not for hosts, except in /31 and /32 (RFC 3021).
  const lowest = maskBits <= 30 ? base + 1 : base;
  const highest = maskBits <= 30 ? base + size - 2 : base + size - 1;
  const subnet = `${formatIPv4(base)}/${maskBits}`;
  if (first < lowest || first > highest) return `Field 'first_ip' ${formatIPv4(first)} is not a host address of its subnet ${subnet}`;
  const count = record.ip_count as number;
  if (count < 1) return `Field 'ip_count' must be at least 1`;
  if (first + count - 1 > highest)
    return `Field 'ip_count' ${count} does not fit mask_bits ${maskBits}: from ${formatIPv4(first)} at most ${highest - first + 1} addresses fit in ${subnet}`;
  for (const field of ['router_ip', 'gateway_ip']) {
    if (record[field] === undefined) continue;
    const address = parseIPv4(record[field] as string);
    if (address === undefined) return `Field '${field}' must be an IPv4 address`;
    if (!inSubnet(address, base, maskBits)) return `Field '${field}' ${formatIPv4(address)} is outside the subnet ${subnet}`;
  }
  if ((record.first_index as number | undefined ?? 0) < 0) return `Field 'first_index' must be 0 or more`;
  if (record.domain !== undefined && !DOMAIN.test(record.domain as string)) return `Field 'domain' must be a DNS domain name, e.g. cluster.local`;
  for (const [i, dns] of ((record.dns_servers as string[] | undefined) ?? []).entries())
    if (parseIPv4(dns) === undefined) return `Field 'dns_servers' item ${i} must be an IPv4 address`;
  if (record.lease_time !== undefined && ((record.lease_time as number) < 60 || (record.lease_time as number) > 0xfffffffe)) return `Field 'lease_time' must be between 60 and 4294967294 seconds`;
  if (record.node_iface !== undefined && !IFACE.test(record.node_iface as string)) return `Field 'node_iface' must be an interface name (1-15 characters, no '/', ':' or whitespace)`;
  return undefined;
}

export const networkClass: ObjectClass = {
  name: 'net',
  plural: 'nets',
  label: 'network',
  indexes: networkIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  fields: {
    first_ip: { type: 'string', required: true, summary: 'First IPv4 address nodes may be given on this network' },
    ip_count: { type: 'integer', required: true, summary: 'Number of addresses, from first_ip, that may be given to nodes' },
    mask_bits: { type: 'integer', required: true, summary: 'Network mask length (1-32)' },
    name: { type: 'string', summary: 'Optional name of the network' },
    description: { type: 'string', summary: 'Free text' },
    first_index: { type: 'integer', summary: 'Index of the first node on this network (informational; default 0)' },
    router_ip: { type: 'string', summary: 'IPv4 address of the router; must be inside the subnet' },
    gateway_ip: { type: 'string', summary: 'IPv4 address of the gateway; must be inside the subnet' },
    domain: { type: 'string', summary: 'DNS domain of the nodes on this network (default cluster.local)' },
    node_iface: { type: 'string', summary: 'Network interface the nodes boot from' },
    dhcp_mode: { type: 'string', enum: ['proxy', 'authoritative'], summary: 'DHCP on this subnet: proxy (default; boot information only, beside the site\'s DHCP server) or authoritative (keel leases node addresses; docs/dhcp.md)' },
    dns_servers: { type: 'string[]', summary: 'IPv4 addresses of DNS servers given to nodes by authoritative DHCP' },
    lease_time: { type: 'integer', summary: 'Authoritative DHCP lease time in seconds (default 3600)' },
  },
  derive(record, { previous, store }) {
    // The creation order decides the default network (cluster.ts, defaultNetwork); kept across
    // PATCH and PUT (an internal field), set once here. Writes are serialised, so no two
    // networks get the same number.
    if (previous !== undefined) return;
    let last = 0;
    for (const net of networks(store).list()) last = Math.max(last, networkOrder(net));
    record[NETWORK_ORDER_FIELD] = last + 1;
  },
  validate: networkProblem,
  inUse: (record, store) => referrers(store, record.uid, `network ${String(record.name ?? record.uid)}`),
};
