// A DhcpServer on loopback with its own store and a client socket, for the socket-side DHCP tests:
// the server listens on `lo` at a port pair derived from the pid (off 67/4011, unprivileged), and
// everything is closed and removed at teardown.
import type { ExecutionContext } from 'ava';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DhcpBackend } from '../../src/net/dhcp/backend.js';
import { DhcpServer, type DhcpServerOptions } from '../../src/net/dhcp/server.js';
import { LeaseStore } from '../../src/store/leases.js';
import { Store } from '../../src/store/store.js';

export interface LoopbackDhcp {
  server: DhcpServer;
  /** A UDP socket bound to 127.0.0.1, to send requests from and hear replies on. */
  client: Socket;
  /** The server port; the PXE port is `port + 1`. */
  port: number;
  store: Store;
  dataDir: string;
}

/**
 * Start a DhcpServer on loopback. `directory` builds the backend over the fresh store;
 * `portOffset` keeps the tests of one file (which share a pid) on different ports.
 */
export async function startLoopbackDhcp(
  t: ExecutionContext,
  options: {
    directory: (store: Store, dataDir: string) => DhcpBackend;
    portOffset?: number;
    /** The lease store the server writes to, made from the real one (e.g. one whose writes are slow). */
    leases?: (real: LeaseStore) => Pick<LeaseStore, 'put' | 'remove'>;
  } & Pick<DhcpServerOptions, 'log' | 'rateLimit' | 'clock'>,
): Promise<LoopbackDhcp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-dhcp-'));
  const store = new Store({ dataDir, headName: 't' });
  const port = 20000 + (process.pid % 20000) + (options.portOffset ?? 0);
  const server = new DhcpServer({
    interfaces: ['lo'], directory: options.directory(store, dataDir), leases: (options.leases ?? ((real) => real))(new LeaseStore(store)) as LeaseStore, httpPort: 8080,
    log: options.log, rateLimit: options.rateLimit, clock: options.clock, serverPort: port, pxePort: port + 1,
  });
  const client = createSocket('udp4');
  t.teardown(async () => {
    client.close();
    await server.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  return { server, client, port, store, dataDir };
}
