// The head's DNS server as the config describes it: off unless dns.enabled; then authoritative for
// the cluster's zones on dns.bind:dns.port (UDP and TCP), forwarding other names to dns.upstreams (docs/dns.md).
import type { Logger } from 'pino';
import type { KeelConfig } from '../../config.js';
import type { Store } from '../../store/store.js';
import { DnsDirectory } from './directory.js';
import { DnsServer, type UdpPeer } from './server.js';

export const DNS_PORT = 53;

export async function startDnsServer(config: KeelConfig, store: Store, log: Logger): Promise<DnsServer | undefined> {
  if (!config.dns.enabled) return undefined;
  const backend = new DnsDirectory(store, { domain: config.dns.domain, serverName: config.server.name, ttl: config.dns.ttl });
  let server: DnsServer;
  try {
    server = new DnsServer({ bindAddress: config.dns.bind, port: config.dns.port, backend, upstreams: config.dns.upstreams.map(parseUpstream), log: log.child({ component: 'dns' }) });
  } catch (error) {
    backend.close();
    throw error;
  }
  try {
    await server.ready();
  } catch (error) {
    // UDP is what nodes ask over; without TCP only answers too big for a datagram fail (e.g. a
    // system resolver's stub listening on 127.0.0.53:53 holds the TCP port).
    log.warn({ err: error, bind: config.dns.bind, port: server.address().port }, 'DNS over TCP could not listen: answers too big for UDP will not resolve');
  }
  log.info({ bind: config.dns.bind, port: server.address().port, domain: config.dns.domain, upstreams: config.dns.upstreams }, 'DNS listening');
  return server;
}

/** `10.0.0.1` or `10.0.0.1:5353` (the config checked the form). */
export function parseUpstream(text: string): UdpPeer {
  const [address, port] = text.split(':');
  return { address: address!, port: port === undefined ? DNS_PORT : Number(port) };
}
