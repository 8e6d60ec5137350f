// Hostname objects (spec 001, Hostname Objects): address and service records the cluster's name
// lookups know besides its nodes (GET /cluster/hosts lists them with the nodes).
import { isIPv4, isIPv6 } from 'node:net';
import { normaliseMac } from '../address.js';
import { Invalid } from '../errors.js';
import { hostnameIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Fields each record type requires and allows (beyond name, type, description). */
const TYPE_FIELDS = {
  arec: { required: ['ip'], allowed: ['ip', 'mac'] },
  aaaarec: { required: ['ip'], allowed: ['ip', 'mac'] },
  srvrec: { required: ['target', 'port'], allowed: ['target', 'port', 'service', 'proto', 'weight', 'priority', 'domain'] },
} as const;

export const hostnameClass: ObjectClass = {
  name: 'hostname',
  plural: 'hostnames',
  label: 'hostname',
  indexes: hostnameIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  fields: {
    name: { type: 'string', required: true, summary: 'Host name' },
    type: { type: 'string', enum: Object.keys(TYPE_FIELDS), summary: 'arec (IPv4, default), aaaarec (IPv6) or srvrec (service)' },
    description: { type: 'string', summary: 'Free text' },
    ip: { type: 'string', summary: 'arec, aaaarec (required): the address' },
    mac: { type: 'string', summary: 'arec, aaaarec: MAC address of the host; an arec\'s host then gets its ip from keel\'s authoritative DHCP (docs/dns.md)' },
    target: { type: 'string', summary: 'srvrec (required): the server running the service' },
    port: { type: 'integer', summary: 'srvrec (required): the service port' },
    service: { type: 'string', summary: 'srvrec: service name (default: the record name)' },
    proto: { type: 'string', enum: ['tcp', 'udp'], summary: 'srvrec: tcp or udp' },
    weight: { type: 'integer', summary: 'srvrec: weight among records of equal priority' },
    priority: { type: 'integer', summary: 'srvrec: priority' },
    domain: { type: 'string', summary: 'srvrec: domain of the FQDN (default: the head\'s)' },
  },
  defaults: () => ({ type: 'arec' }),
  derive(record) {
    if (record.mac === undefined) return;
    const mac = normaliseMac(record.mac as string);
    if (mac === undefined) throw new Invalid(`Field 'mac' must be a MAC address, e.g. 52:54:00:12:34:56`);
    record.mac = mac;
  },
  validate(record) {
    if (!HOSTNAME.test(record.name as string)) return `Field 'name' must be a host name (letters, digits, '-', dots between labels)`;
    const type = record.type as keyof typeof TYPE_FIELDS;
    const { required, allowed } = TYPE_FIELDS[type];
    for (const field of required) if (record[field] === undefined) return `Missing required field '${field}' for a ${type} record`;
    const optional = Object.keys(hostnameClass.fields).filter((f) => !['name', 'type', 'description'].includes(f));
    for (const field of optional) {
      if (record[field] !== undefined && !(allowed as readonly string[]).includes(field)) return `Field '${field}' does not apply to a ${type} record`;
    }
    if (type === 'arec' && !isIPv4(record.ip as string)) return `Field 'ip' must be an IPv4 address for an arec record`;
    if (type === 'aaaarec' && !isIPv6(record.ip as string)) return `Field 'ip' must be an IPv6 address for an aaaarec record`;
    if (type === 'srvrec') {
      const port = record.port as number;
      if (port < 1 || port > 65535) return `Field 'port' must be 1-65535`;
      if (!HOSTNAME.test(record.target as string)) return `Field 'target' must be a host name`;
      for (const field of ['weight', 'priority']) {
        const value = record[field] as number | undefined;
        if (value !== undefined && (value < 0 || value > 65535)) return `Field '${field}' must be 0-65535`;
      }
    }
    return undefined;
  },
};
