// The head's DHCP server as the config describes it: off unless `dhcp.interfaces` names some; then
// proxy or authoritative per subnet (Network `dhcp_mode`), with leases in the head's store.
import type { Logger } from 'pino';
import type { KeelConfig } from '../../config.js';
import type { Model } from '../../model/model.js';
import { LeaseStore } from '../../store/leases.js';
import { DhcpDirectory } from './directory.js';
import { DhcpServer } from './server.js';

export function startDhcpServer(config: KeelConfig, model: Model, httpPort: number, log: Logger): DhcpServer | undefined {
  if (config.dhcp.interfaces.length === 0) return undefined;
  const directory = new DhcpDirectory(model);
  try {
    const server = new DhcpServer({ interfaces: config.dhcp.interfaces, directory, leases: new LeaseStore(model.store), httpPort, log: log.child({ component: 'dhcp' }) });
    log.info({ interfaces: config.dhcp.interfaces }, 'DHCP listening (ports 67 and 4011)');
    return server;
  } catch (error) {
    directory.close();
    throw error;
  }
}
