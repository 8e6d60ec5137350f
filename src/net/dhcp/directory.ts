// The DHCP backend (backend.ts) over the object model: which mode a subnet is in (Network
// `dhcp_mode`), what a known node gets (its computed IP and its network's router, DNS, domain,
// lease time), whether unknown nodes may register, and their registration (as POST /nodes would).
// A MAC that no node has but an arec hostname record does gets that record's address (spec 001:
// "If a hostname record includes a MAC address, then [keel] will include it in its DHCP service").
// Networks and hostname records with a MAC are cached and refreshed from the change feed; nodes
// are read per request (one LMDB index lookup).
import { formatIPv4, inSubnet, parseIPv4, subnetBase } from '../../model/address.js';
import { DEFAULT_DOMAIN } from '../../model/classes/node.js';
import { networks, nodes } from '../../model/cluster.js';
import { hostnameIndexes } from '../../model/indexes.js';
import type { Model } from '../../model/model.js';
import { clusterSettings } from '../../model/settings.js';
import type { Store, StoredRecord } from '../../store/store.js';
import type { DhcpBackend, SubnetMode } from './backend.js';
import type { NodeBinding } from './handler-authoritative.js';

export const DEFAULT_LEASE_SECONDS = 3600;
const MODE_CACHE_LIMIT = 1024;

/** keel's DNS server as DHCP hands it out (docs/dns.md), when it runs. */
export interface DhcpDnsSettings {
  /** Domain (option 15) of nodes on networks without a `domain`: the DNS server's `dns.domain`. */
  domain: string;
  /** Name keel as DNS server (option 6) where a network lists no `dns_servers`: only when it listens on port 53. */
  nameKeel: boolean;
  /** The DNS server's own address when it is bound to one; else the address DHCP answers from. */
  address?: string;
}

export class DhcpDirectory implements DhcpBackend<StoredRecord> {
  private networkCache: StoredRecord[] | undefined;
  /** MAC → the arec hostname record that carries it. */
  private hostCache: Map<string, StoredRecord> | undefined;
  /** modeFor per address: asked once per request, from few distinct addresses (interfaces, relays). */
  private readonly modeCache = new Map<string, SubnetMode<StoredRecord>>();
  private readonly unsubscribe: () => void;
  private readonly store: Store;

  constructor(private readonly model: Model, private readonly dns?: DhcpDnsSettings) {
    this.store = model.store;
    this.unsubscribe = model.store.subscribe((change) => {
      if (change.class === 'hostname') this.hostCache = undefined;
      if (change.class !== 'net') return;
      this.networkCache = undefined;
      this.modeCache.clear();
    });
  }

  close(): void {
    this.unsubscribe();
  }

  /** The mode of the subnet `address` (the arrival interface's address, or the relay's giaddr) is in. */
  modeFor(address: string): SubnetMode<StoredRecord> {
    let mode = this.modeCache.get(address);
    if (mode === undefined) {
      // Bounded: a flood of forged giaddrs must not grow the cache without limit.
      if (this.modeCache.size >= MODE_CACHE_LIMIT) this.modeCache.clear();
      mode = this.findMode(address);
      this.modeCache.set(address, mode);
    }
    return mode;
  }

  private findMode(address: string): SubnetMode<StoredRecord> {
    const value = parseIPv4(address);
    if (value === undefined) return { mode: 'proxy' };
    this.networkCache ??= networks(this.store).list();
    const network = this.networkCache.find(
      (net) => net.dhcp_mode === 'authoritative' && inSubnet(value, subnetBase(parseIPv4(net.first_ip as string)!, net.mask_bits as number), net.mask_bits as number),
    );
    return network ? { mode: 'authoritative', network } : { mode: 'proxy' };
  }

  /**
   * What the node with `mac` gets on `network`; undefined when no node has that MAC. A node whose
   * address is on another network (or that has none) is a `problem`, not a binding.
   */
  binding(mac: string, network: StoredRecord): NodeBinding | { problem: string } | undefined {
    const collection = nodes(this.store);
    const uid = collection.lookup('mac', mac);
    const node = (uid === undefined ? undefined : collection.get(uid)) ?? this.hostWithMac(mac);
    if (!node) return undefined;
    if (typeof node.ip !== 'string') return { problem: `node ${String(node.name)} (${mac}) has no IP address: give its naming pool a network` };
    const maskBits = network.mask_bits as number;
    const base = subnetBase(parseIPv4(network.first_ip as string)!, maskBits);
    if (!inSubnet(parseIPv4(node.ip)!, base, maskBits)) {
      return { problem: `${node.type === 'arec' ? 'hostname record' : 'node'} ${String(node.name)} (${mac}) has IP ${node.ip}, outside ${formatIPv4(base)}/${maskBits} where it asked` };
    }
    const router = (network.router_ip ?? network.gateway_ip) as string | undefined;
    const ownDns = network.dns_servers as string[] | undefined;
    const nameKeel = ownDns === undefined && this.dns?.nameKeel === true;
    return {
      nodeUid: node.uid,
      ip: node.ip,
      subnetMask: formatIPv4(maskBits === 0 ? 0 : (0xffffffff << (32 - maskBits)) >>> 0),
      routers: router === undefined ? [] : [router],
      dnsServers: ownDns ?? (nameKeel && this.dns?.address !== undefined ? [this.dns.address] : []),
      dnsIsServer: nameKeel && this.dns?.address === undefined,
      domain: (network.domain as string | undefined) ?? this.dns?.domain ?? DEFAULT_DOMAIN,
      // A hostname record's name may be a full name: option 12 is the host's own label.
      hostname: String(node.name).split('.')[0]!,
      leaseSeconds: (network.lease_time as number | undefined) ?? DEFAULT_LEASE_SECONDS,
    };
  }

  private hostWithMac(mac: string): StoredRecord | undefined {
    if (this.hostCache === undefined) {
      this.hostCache = new Map();
      for (const record of this.store.collection('hostname', hostnameIndexes).list()) {
        if (record.type === 'arec' && typeof record.mac === 'string') this.hostCache.set(record.mac, record);
      }
    }
    return this.hostCache.get(mac);
  }

  acceptNewNodes(): boolean {
    return clusterSettings(this.store).accept_new_nodes === true;
  }

  /** Registers an unknown MAC as a node of the default pool, as POST /nodes would. */
  async registerNode(mac: string): Promise<StoredRecord> {
    return this.model.nodes.create('dhcp', { mac, description: 'registered by DHCP (accept_new_nodes)' });
  }
}
