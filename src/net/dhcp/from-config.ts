// The head's DHCP server as the config describes it: off unless `dhcp.interfaces` names some; then
// proxy or authoritative per subnet (Network `dhcp_mode`), with leases in the head's store.
import type { Logger } from 'pino';
import type { KeelConfig } from '../../config.js';
import type { Model } from '../../model/model.js';
import { LeaseStore } from '../../store/leases.js';
import { DhcpDirectory, type DhcpDnsSettings } from './directory.js';
import { DhcpServer, type DhcpServerOptions } from './server.js';

export function startDhcpServer(config: KeelConfig, model: Model, httpPort: number, log: Logger, bootEvents?: DhcpServerOptions['bootEvents']): DhcpServer | undefined {
  if (config.dhcp.interfaces.length === 0) return undefined;
  const directory = new DhcpDirectory(model, dnsForDhcp(config));
  try {
    const server = new DhcpServer({ interfaces: config.dhcp.interfaces, directory, leases: new LeaseStore(model.store), httpPort, log: log.child({ component: 'dhcp' }), bootEvents });
    log.info({ interfaces: config.dhcp.interfaces }, 'DHCP listening (ports 67 and 4011)');
    return server;
  } catch (error) {
    directory.close();
    throw error;
  }
}

/** What DHCP tells nodes of keel's DNS server: nothing while it is off; a client cannot be told a port other than 53. */
function dnsForDhcp(config: KeelConfig): DhcpDnsSettings | undefined {
  if (!config.dns.enabled) return undefined;
  return { domain: config.dns.domain, nameKeel: config.dns.port === 53, address: config.dns.bind === '0.0.0.0' ? undefined : config.dns.bind };
}
