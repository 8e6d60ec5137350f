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
import { ensureInitialAdmin, signingSecret } from './bootstrap.js';
import type { KeelConfig } from './config.js';
import { assertNativeAddons } from './native.js';
import { startTftpServer } from './net/tftp/from-config.js';
import { closePowerService } from './power/service.js';
import type { TftpServer } from './net/tftp/server.js';
import { ChunkStore } from './store/chunks.js';
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
  /** Where the initial admin's password is, when this start created that admin. */
  initialPassword?: string;
  close(): Promise<void>;
}

export interface HeadOptions {
  config: KeelConfig;
  log: Logger;
  /** Initial admin password (KEEL_ADMIN_PASSWORD). */
  adminPassword?: string;
  clock?: () => number;
}

export async function startHead({ config, log, adminPassword, clock = Date.now }: HeadOptions): Promise<Head> {
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
  const context: ApiContext = { config, store, tokens, localLogin, log, clock };
  const api = new ApiServer(router, context);
  const httpPort = await api.listen(config.server.bind, config.http.port);
  log.info({ bind: config.server.bind, port: httpPort, dataDir }, 'API listening');
  let tftp: TftpServer;
  try {
    tftp = startTftpServer(config, new ChunkStore(store), log);
  } catch (error) {
    api.close();
    await localLogin.close();
    await store.close();
    throw error;
  }
  return {
    store,
    api: { router, context },
    httpPort,
    tftp,
    tftpPort: tftp.address().port,
    initialPassword,
    async close() {
      api.close();
      await tftp.close();
      await localLogin.close();
      await closePowerService(store);
      await store.close();
    },
  };
}
