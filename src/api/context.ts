// Everything a route handler may use, passed explicitly (no globals).
import type { Logger } from 'pino';
import type { KeelConfig } from '../config.js';
import type { RecentLog } from '../log.js';
import type { Store } from '../store/store.js';
import type { LocalLogin } from './local-login.js';
import type { TokenService } from './tokens.js';

export interface ApiContext {
  config: KeelConfig;
  store: Store;
  tokens: TokenService;
  localLogin: LocalLogin;
  log: Logger;
  /** The log's most recent lines (what `log` wrote), for GET /cluster/head/<uid>/log. */
  recentLog: RecentLog;
  /** Epoch milliseconds; tests move it. */
  clock: () => number;
}
