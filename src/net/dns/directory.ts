// The DNS backend (backend.ts) over the object model: an in-memory index of keel's zones and names,
// rebuilt from the store when its change feed says a node, network or hostname record changed (at
// the next query after the change, so a burst of changes costs one rebuild) — never a store scan
// per query. What is in it:
// - forward zones: every network's `domain`, and the configured `dns.domain` (nodes on networks
//   without a domain, hostname records without one, and keel's own name live there);
// - a reverse zone (in-addr.arpa) per network, its subnet rounded down to an octet boundary;
// - nodes: `<name>.<domain of their network>` A → their IP, and the PTR back;
// - hostname records (spec 001): arec → A (and the PTR, when the address is in a reverse zone of
//   keel's), aaaarec → AAAA, srvrec → SRV at `_<service>._<proto>.<domain>`;
// - keel itself: `<server name>.<dns.domain>`, the zones' NS, whose A is the address asked.
import { isIPv4 } from 'node:net';
import type { SrvData } from 'dns-packet';
import { parseIPv4, subnetBase } from '../../model/address.js';
import { networks, nodes } from '../../model/cluster.js';
import { hostnameIndexes } from '../../model/indexes.js';
import type { Store, StoredRecord } from '../../store/store.js';
import type { DnsBackend, NameRecords, Zone } from './backend.js';

export interface DnsDirectoryOptions {
  /** Zone of whatever has no domain of its own (nodes on networks without one, hostname records). */
  domain: string;
  /** keel's own host name: its first label names the zones' name server. */
  serverName: string;
  ttl: number;
}

const CLASSES_INDEXED = new Set(['node', 'net', 'hostname']);
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

interface MutableRecords {
  a: string[];
  aaaa: string[];
  ptr: string[];
  srv: SrvData[];
  self?: boolean;
}

interface Index {
  zones: Map<string, Zone>;
  names: Map<string, MutableRecords>;
}

export class DnsDirectory implements DnsBackend {
  readonly ttl: number;
  private index: Index | undefined;
  private builds = 0;
  private readonly unsubscribe: () => void;

  constructor(private readonly store: Store, private readonly options: DnsDirectoryOptions) {
    this.ttl = options.ttl;
    this.unsubscribe = store.subscribe((change) => {
      if (CLASSES_INDEXED.has(change.class)) this.index = undefined;
    });
  }

  close(): void {
    this.unsubscribe();
  }

  generation(): number {
    this.current();
    return this.builds;
  }

  zoneOf(name: string): Zone | undefined {
    return this.zoneIn(this.current().zones, name);
  }

  recordsAt(name: string): NameRecords | undefined {
    return this.current().names.get(name);
  }

  private current(): Index {
    if (this.index === undefined) {
      this.index = this.build();
      this.builds += 1;
    }
    return this.index;
  }

  private build(): Index {
    const domain = this.options.domain.toLowerCase();
    const serial = (this.store.lastSeq % 0xffffffff) + 1;
    const firstLabel = this.options.serverName.split('.')[0]!.toLowerCase();
    const nameserver = `${LABEL.test(firstLabel) ? firstLabel : 'keel'}.${domain}`;
    const zones = new Map<string, Zone>();
    const names = new Map<string, MutableRecords>();
    const addZone = (name: string) => {
      if (!zones.has(name)) zones.set(name, { name, serial, nameserver });
    };
    const at = (name: string): MutableRecords => {
      let records = names.get(name);
      if (records === undefined) names.set(name, (records = { a: [], aaaa: [], ptr: [], srv: [] }));
      return records;
    };

    addZone(domain);
    const nets = networks(this.store).list();
    const netDomain = new Map<string, string>();
    for (const net of nets) {
      const zone = typeof net.domain === 'string' ? net.domain.toLowerCase() : domain;
      netDomain.set(net.uid, zone);
      addZone(zone);
      const first = parseIPv4(net.first_ip as string);
      if (first !== undefined) addZone(reverseZone(first, net.mask_bits as number));
    }
    at(nameserver).self = true;

    // Reverse names are answered only inside keel's reverse zones: an arec elsewhere gets no PTR.
    const addPtr = (ip: string, target: string) => {
      const reverse = reverseName(ip);
      if (this.zoneIn(zones, reverse) === undefined) return;
      const records = at(reverse);
      if (records.ptr.length === 0) records.ptr.push(target);
    };
    for (const node of nodes(this.store).list()) {
      if (typeof node.name !== 'string' || typeof node.ip !== 'string') continue;
      const fqdn = `${node.name.toLowerCase()}.${(typeof node.net === 'string' ? netDomain.get(node.net) : undefined) ?? domain}`;
      at(fqdn).a.push(node.ip);
      addPtr(node.ip, fqdn);
    }
    for (const record of this.store.collection('hostname', hostnameIndexes).list()) {
      this.addHostname(record, domain, zones, at, addPtr);
    }
    // Every name between a record and its zone's apex exists (an empty non-terminal: NODATA, not NXDOMAIN).
    for (const name of [...names.keys(), ...zones.keys()]) {
      const zone = this.zoneIn(zones, name);
      if (zone === undefined) continue;
      for (let parent = name; parent.length > zone.name.length; parent = parent.slice(parent.indexOf('.') + 1)) at(parent);
      at(zone.name);
    }
    return { zones, names };
  }

  private addHostname(record: StoredRecord, domain: string, zones: Map<string, Zone>, at: (name: string) => MutableRecords, addPtr: (ip: string, target: string) => void): void {
    const name = (record.name as string).toLowerCase();
    // A name with dots that already ends in one of keel's zones is a full name; any other is relative to dns.domain.
    const qualify = (relative: string, zone: string) => (relative.includes('.') && this.zoneIn(zones, relative) !== undefined ? relative : `${relative}.${zone}`);
    switch (record.type) {
      case 'arec': {
        const fqdn = qualify(name, domain);
        if (this.zoneIn(zones, fqdn) === undefined) return;
        at(fqdn).a.push(record.ip as string);
        if (isIPv4(record.ip as string)) addPtr(record.ip as string, fqdn);
        return;
      }
      case 'aaaarec': {
        const fqdn = qualify(name, domain);
        if (this.zoneIn(zones, fqdn) !== undefined) at(fqdn).aaaa.push(record.ip as string);
        return;
      }
      case 'srvrec': {
        const zone = typeof record.domain === 'string' ? record.domain.toLowerCase() : domain;
        if (!zones.has(zone)) return;
        const owner = `_${String(record.service ?? record.name).toLowerCase()}._${String(record.proto ?? 'tcp')}.${zone}`;
        at(owner).srv.push({
          priority: (record.priority as number | undefined) ?? 0,
          weight: (record.weight as number | undefined) ?? 0,
          port: record.port as number,
          target: qualify((record.target as string).toLowerCase(), zone),
        });
        return;
      }
    }
  }

  /** Longest match: the name itself, then without its first label, and so on. */
  private zoneIn(zones: Map<string, Zone>, name: string): Zone | undefined {
    for (let rest = name; ; rest = rest.slice(rest.indexOf('.') + 1)) {
      const zone = zones.get(rest);
      if (zone) return zone;
      if (!rest.includes('.')) return undefined;
    }
  }
}

/** `1.2.3.4` → `4.3.2.1.in-addr.arpa`. */
export function reverseName(ip: string): string {
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** The in-addr.arpa zone holding a network: its prefix rounded down to whole octets (at least one). */
export function reverseZone(address: number, maskBits: number): string {
  const octets = Math.max(1, Math.min(3, Math.floor(maskBits / 8)));
  const base = subnetBase(address, octets * 8);
  const parts = [base >>> 24, (base >>> 16) & 0xff, (base >>> 8) & 0xff].slice(0, octets);
  return `${parts.reverse().join('.')}.in-addr.arpa`;
}
