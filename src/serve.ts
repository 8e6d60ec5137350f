// A running keel head: store, API server and local login socket, started and stopped together.
// `keel serve` and the integration tests both use startHead.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ApiContext } from './api/context.js';
import type { Router } from './api/router.js';
import { ApiServer } from './api/server.js';
import { LocalLogin } from './api/local-login.js';
import { TokenService } from './api/tokens.js';
import { buildRouter } from './api/routes/index.js';
import { BOOT_PREFIX, buildBootRouter } from './boot/http.js';
import { buildMetricsRouter, METRICS_PREFIX, type MetricsSources } from './api/metrics.js';
import { ensureInitialAdmin, signingSecret } from './bootstrap.js';
import type { KeelConfig } from './config.js';
import type { RecentLog } from './log.js';
import { assertNativeAddons } from './native.js';
import { closePowerService } from './power/service.js';
import { closeConsoleService } from './power/console-service.js';
import { consoleWebSocket } from './api/routes/console.js';
import { API_PREFIX } from './api/dispatch.js';
import { startTftpServer } from './net/tftp/from-config.js';
import { chunkStoreOf } from './api/content.js';
import { importIpxeBinaries } from './boot/ipxe-binaries.js';
import { startDhcpServer } from './net/dhcp/from-config.js';
import type { DhcpServer } from './net/dhcp/server.js';
import type { TftpServer } from './net/tftp/server.js';
import { Store } from './store/store.js';

export const LOCAL_LOGIN_SOCKET = 'login.sock';

export interface Head {
  store: Store;
  /** The API's routes and context, for transports other than the uWS server (bench/api). */
  api: { router: Router; context: ApiContext };
  httpPort: number;
  /** The TFTP server (stats() for the metrics endpoint) and its bound port. */
  tftp: TftpServer;
  tftpPort: number;
  /** The DHCP server (stats() for the metrics endpoint); undefined while dhcp.interfaces is empty. */
  dhcp?: DhcpServer;
  /** Where the initial admin's password is, when this start created that admin. */
  initialPassword?: string;
  close(): Promise<void>;
}

export interface HeadOptions {
  config: KeelConfig;
  log: Logger;
  /** Where `log` also writes its recent lines (see createLogger). */
  recentLog: RecentLog;
  /** Initial admin password (KEEL_ADMIN_PASSWORD). */
  adminPassword?: string;
  clock?: () => number;
  /** Import missing iPXE binaries from this directory at start (`keel serve`: Debian's /usr/lib/ipxe). */
  ipxeImportDir?: string;
}

export async function startHead({ config, log, recentLog, adminPassword, clock = Date.now, ipxeImportDir }: HeadOptions): Promise<Head> {
  assertNativeAddons();
  const dataDir = resolve(config.server.data_dir);
  // 0700: the store, the one-time password file and the login socket are the owner's alone.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const store = new Store({ dataDir, headName: config.server.name, clock });
  const tokens = new TokenService(await signingSecret(store), config.server.name, {
    access: config.auth.access_token_ttl,
    refresh: config.auth.refresh_token_ttl,
  }, clock);
  const initialPassword = await ensureInitialAdmin(store, dataDir, log, adminPassword);
  const localLogin = new LocalLogin(clock, log);
  await localLogin.listen(join(dataDir, LOCAL_LOGIN_SOCKET));
  const router = buildRouter();
  const context: ApiContext = { config, store, tokens, localLogin, log, recentLog, clock };
  const metrics: MetricsSources = {}; // the servers join as they start
  const api = new ApiServer(router, context, [{ prefix: BOOT_PREFIX, router: buildBootRouter() }, { prefix: METRICS_PREFIX, router: buildMetricsRouter(metrics) }]);
  // The live console (docs/power.md); building it starts console capture for the nodes that ask.
  api.webSocket(`${API_PREFIX}/node/:id/console`, consoleWebSocket(context));
  const httpPort = await api.listen(config.server.bind, config.http.port);
  log.info({ bind: config.server.bind, port: httpPort, dataDir }, 'API listening');
  let tftp: TftpServer | undefined;
  let dhcp: DhcpServer | undefined;
  try {
    // The one ChunkStore of this store: pins (GC safety) and the manifest cache are per instance.
    tftp = startTftpServer(config, chunkStoreOf(context), log);
    if (ipxeImportDir !== undefined) await importIpxeBinaries(chunkStoreOf(context), log, ipxeImportDir);
    dhcp = startDhcpServer(config, store, httpPort, log);
    metrics.tftp = tftp.stats.bind(tftp);
    if (dhcp) metrics.dhcp = dhcp.stats.bind(dhcp);
  } catch (error) {
    await tftp?.close();
    api.close();
    await localLogin.close();
    await closeConsoleService(store);
    await store.close();
    throw error;
  }
  return {
    store,
    api: { router, context },
    httpPort,
    tftp,
    tftpPort: tftp.address().port,
    dhcp,
    initialPassword,
    async close() {
      await dhcp?.close();
      api.close();
      await tftp.close();
      await localLogin.close();
      await closeConsoleService(store);
      await closePowerService(store);
      await store.close();
    },
  };
}
