// Everything a route handler may use, passed explicitly: made once by the composition root
// (src/serve.ts) and handed to every API route.
import type { Logger } from 'pino';
import type { BootTimelines } from '../boot/timeline.js';
import type { ClientPackages } from '../clientpkgs/directory.js';
import type { BuildQueue } from '../build/queue.js';
import type { KeelConfig } from '../config.js';
import type { GitRepoService } from '../git/service.js';
import type { RecentLog } from '../log.js';
import type { Model } from '../model/model.js';
import type { ConsoleService } from '../power/console-service.js';
import type { PowerService } from '../power/service.js';
import type { HeadKey } from '../ssh/keys.js';
import type { Store } from '../store/store.js';
import type { LocalLogin } from './local-login.js';
import type { LoginThrottle } from './login-throttle.js';
import type { TokenService } from './tokens.js';

export interface ApiContext {
  config: KeelConfig;
  store: Store;
  model: Model;
  power: PowerService;
  consoles: ConsoleService;
  /** The gitrepos' repositories and syncs. */
  git: GitRepoService;
  tokens: TokenService;
  /** Backoff state of password logins (POST /login). */
  loginThrottle: LoginThrottle;
  localLogin: LocalLogin;
  log: Logger;
  /** The log's most recent lines (what `log` wrote), for GET /cluster/head/<uid>/log. */
  recentLog: RecentLog;
  /** Epoch milliseconds; tests move it. */
  clock: () => number;
  /** Each node's last boots as DHCP, TFTP, /boot and its agent saw them (GET /node/<id>/boot, PUT /node/putstatus). */
  bootTimelines: BootTimelines;
  /** The head's SSH key pair (src/ssh/keys.ts): `ssh_public` of the head object, and the key PUT /node/<UID>/exec runs with. */
  headKey: HeadKey;
  /** The client packages directory nodes download from, and its RPM→TAR conversions (docs/install.md). */
  clientPackages: ClientPackages;
  /** The artifact builders' job queue (spec 004's /ipxes; docs/builders.md). */
  builds: BuildQueue;
  /** PEM of the CA certificates that verify the HTTPS listener (src/http/tls.ts): GET /cluster/cabundle, the head's `ca_pem`; '' when HTTPS is off. */
  caBundle: string;
}
