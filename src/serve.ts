// The composition root: a running keel head. Creates every service of a head explicitly — store,
// model, power and console services, API, boot path and metrics on one HTTP server, TFTP, DNS, DHCP and
// the local login socket — starts them, and stops them in reverse order. `keel serve` and the
// integration tests both use startHead; nothing else keeps a service of its own.
import { mkdirSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ApiContext } from './api/context.js';
import { DOMAIN_ERROR_STATUSES } from './api/errors.js';
import { apiHooks } from './api/hooks.js';
import { LOCAL_LOGIN_SOCKET, LocalLogin } from './api/local-login.js';
import { LoginThrottle } from './api/login-throttle.js';
import { buildMetricsRouter, KeelMetrics, METRICS_PREFIX } from './api/metrics.js';
import { consoleWebSocket } from './api/routes/console.js';
import { GitRepoService } from './git/service.js';
import { buildApiRouter } from './api/routes/index.js';
import { TokenService } from './api/tokens.js';
import type { BootContext, BootPathEvents } from './boot/context.js';
import { importIpxeBinaries, missingIpxeBinaries } from './boot/ipxe-binaries.js';
import { BOOT_PREFIX, buildBootRouter } from './boot/routes.js';
import { BootTimelines, modelNodeFinder } from './boot/timeline.js';
import { ClientPackages } from './clientpkgs/directory.js';
import { IpxeBuilder } from './build/ipxe.js';
import { BuildJobs } from './build/jobs.js';
import { BuildQueue } from './build/queue.js';
import { ensureInitialAdmin, signingSecret } from './bootstrap.js';
import type { KeelConfig } from './config.js';
import { mount, type Mount } from './http/dispatch.js';
import { HttpServer } from './http/server.js';
import { describeCertificates, ensureTlsCertificates, serverNames, type TlsCertificates } from './http/tls.js';
import type { RecentLog } from './log.js';
import { defaultObjectsAtStart } from './model/default-objects.js';
import { Model } from './model/model.js';
import { assertNativeAddons } from './native.js';
import { startDhcpServer } from './net/dhcp/from-config.js';
import type { DhcpServer } from './net/dhcp/server.js';
import { startDnsServer } from './net/dns/from-config.js';
import type { DnsServer } from './net/dns/server.js';
import { startTftpServer } from './net/tftp/from-config.js';
import type { TftpServer } from './net/tftp/server.js';
import { ConsoleService, consoleRuntimeDir } from './power/console-service.js';
import { PowerService, powerRuntimeDir } from './power/service.js';
import { ensureHeadKey } from './ssh/keys.js';
import { LocalnodeProbe } from './ssh/reachability.js';
import { localnodeClass } from './model/classes/localnode.js';
import { Store } from './store/store.js';

export const API_PREFIX = '/api/v1';

export interface Head {
  store: Store;
  model: Model;
  /** The API as mounted on the HTTP server, for transports other than the uWS server (bench/api). */
  api: Mount;
  power: PowerService;
  httpPort: number;
  /** The HTTPS listener's port, when https.enabled. */
  httpsPort?: number;
  /** The TFTP server (stats() for the metrics endpoint) and its bound port. */
  tftp: TftpServer;
  tftpPort: number;
  /** The DHCP server (stats() for the metrics endpoint); undefined while dhcp.interfaces is empty. */
  dhcp?: DhcpServer;
  /** The DNS server (stats(), address()); undefined while dns.enabled is false. */
  dns?: DnsServer;
  /** What DHCP, TFTP, /boot and the node agents saw of each node's last boots (GET /node/<id>/boot). */
  bootTimelines: BootTimelines;
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
  // Checked first, so that a bad https.* setting stops start-up before anything is open.
  const tls = config.https.enabled ? await headCertificates(config, dataDir, log) : undefined;
  const store = new Store({
    dataDir, headName: config.server.name, clock,
    minFreeBytes: config.store.min_free_bytes, changeLogRetention: config.store.change_log_retention,
  });
  const model = new Model(store, { dataDir });
  const tokens = new TokenService(await signingSecret(store), config.server.name, {
    access: config.auth.access_token_ttl,
    refresh: config.auth.refresh_token_ttl,
  }, clock);
  const initialPassword = await ensureInitialAdmin(model, dataDir, log, adminPassword);
  // DefaultImage and DefaultBoot from boot.assets_dir, at the first start that finds the assets (docs/content.md).
  const defaults = await defaultObjectsAtStart(model, config.boot.assets_dir, 'keel');
  if (defaults && 'missing' in defaults) log.info(defaults, 'no default image and boot config yet: the assets directory lacks files');
  else if (defaults) log.info(defaults, 'default image and boot config');
  const localLogin = new LocalLogin(clock, log);
  await localLogin.listen(join(dataDir, LOCAL_LOGIN_SOCKET));
  const power = new PowerService(store, powerRuntimeDir(dataDir), log);
  // Console capture for the nodes whose attributes ask for it (docs/power.md), from start.
  const consoles = new ConsoleService(store, consoleRuntimeDir(dataDir), log, config.console.device_patterns);
  consoles.start();
  // The gitrepos' repositories under <data-dir>/gitrepos and their scheduled syncs (docs/gitrepos.md).
  const git = new GitRepoService(store, model.gitRepos, dataDir, log);
  git.start();
  // The metrics and the boot timelines (docs/boot-timeline.md, in memory): every server that reports to them is handed them.
  const metrics = new KeelMetrics();
  const bootTimelines = new BootTimelines({ nodes: modelNodeFinder(model), clock, onPhaseDuration: (phase, seconds) => metrics.phaseDuration(phase, seconds) });
  metrics.addTimelines(bootTimelines);
  const bootPath: BootPathEvents = {
    now: clock,
    served(reply) {
      bootTimelines.httpServed(reply);
      metrics.bootServed(reply);
    },
    scriptServed: (mac, from, problem) => bootTimelines.scriptServed(mac, from, problem),
  };
  // The head's SSH key pair, made at first start (<data-dir>/ssh/, private key 0600; docs/security.md).
  const headKey = ensureHeadKey(dataDir, config.server.name);
  // The client packages nodes download (docs/install.md): its directories made, a crashed conversion's leftovers removed.
  const clientPackages = new ClientPackages(config.install.clientpkgs_dir ?? join(dataDir, 'clientpkgs'), config.install.max_expanded_bytes, log);
  clientPackages.prepare();
  // Spec 004's localnodes' `pingable`, re-checked in the background (docs/registries.md).
  const localnodeProbe = new LocalnodeProbe(model.objects(localnodeClass), log);
  localnodeProbe.start();
  // Spec 004's artifact builds: jobs in the store, run in the background; what a stop interrupted is queued again (docs/builders.md).
  const builds = new BuildQueue({
    jobs: new BuildJobs(store), chunks: model.chunks, concurrency: config.build.concurrency, logDir: join(dataDir, 'build-logs'), log,
    builders: [new IpxeBuilder({ source: config.build.ipxe_source, workDir: config.build.work_dir ?? join(dataDir, 'build') })],
  });
  await builds.start();
  const context: ApiContext = { config, store, model, power, consoles, git, tokens, loginThrottle: new LoginThrottle(clock), localLogin, log, recentLog, clock, bootTimelines, headKey, clientPackages, builds, caBundle: tls?.caPem ?? '' };
  const bootContext: BootContext = { model, config, log, bootPath };
  const plain = { errorStatuses: DOMAIN_ERROR_STATUSES, log };
  const api = metrics.countRequests(mount(API_PREFIX, buildApiRouter(), context, apiHooks(log)));
  const mounts = [mount(BOOT_PREFIX, buildBootRouter(), bootContext, plain), mount(METRICS_PREFIX, buildMetricsRouter(metrics), undefined, plain), api];
  const http = new HttpServer({ mounts, maxBodyBytes: config.http.max_body_bytes, log });
  const consoleSockets = consoleWebSocket(context);
  http.webSocket(`${API_PREFIX}/node/:id/console`, consoleSockets);
  // HTTPS serves the same mounts on a port of its own: firmware fetches /boot over plain HTTP
  // (most cannot do TLS), and plain http:// URLs keep working (docs/security.md, "HTTPS").
  let https: HttpServer | undefined;
  let httpsPort: number | undefined;
  let tftp: TftpServer | undefined;
  let dhcp: DhcpServer | undefined;
  let dns: DnsServer | undefined;
  let httpPort: number;
  try {
    httpPort = await http.listen(config.server.bind, config.http.port);
    log.info({ bind: config.server.bind, port: httpPort, dataDir }, 'API listening');
    if (tls) {
      https = new HttpServer({ mounts, maxBodyBytes: config.http.max_body_bytes, log, tls });
      https.webSocket(`${API_PREFIX}/node/:id/console`, consoleSockets);
      httpsPort = await https.listen(config.server.bind, config.https.port);
      log.info({ bind: config.server.bind, port: httpsPort }, 'API listening over HTTPS');
    }
    tftp = startTftpServer(config, model.chunks, log, bootTimelines);
    if (ipxeImportDir !== undefined) await importIpxeBinaries(model.chunks, log, ipxeImportDir);
    const missing = missingIpxeBinaries(model.chunks);
    if (missing.length > 0) log.warn({ missing }, 'iPXE binaries missing: firmware that needs them cannot boot (Debian\'s ipxe package gives BIOS and x86-64 UEFI; docs/boot-policy.md)');
    dns = await startDnsServer(config, store, log);
    dhcp = startDhcpServer(config, model, httpPort, log, bootTimelines);
    metrics.addTftp(tftp.stats.bind(tftp));
    if (dhcp) metrics.addDhcp(dhcp.stats.bind(dhcp));
    if (dns) metrics.addDns(dns.stats.bind(dns));
  } catch (error) {
    await dns?.close();
    await tftp?.close();
    https?.close();
    http.close();
    await localLogin.close();
    await localnodeProbe.close();
    await builds.close();
    await git.close();
    await consoles.close();
    await power.close();
    await store.close();
    throw error;
  }
  return {
    store,
    model,
    api,
    power,
    httpPort,
    httpsPort,
    tftp,
    tftpPort: tftp.address().port,
    dhcp,
    dns,
    bootTimelines,
    initialPassword,
    async close() {
      await dhcp?.close();
      await dns?.close();
      https?.close();
      http.close();
      await tftp.close();
      await localLogin.close();
      await localnodeProbe.close();
      await builds.close();
      await git.close();
      await consoles.close();
      await power.close();
      await store.close();
    },
  };
}

/**
 * The HTTPS listener's certificate: the configured files, checked, or the CA and server certificate
 * generated under <data-dir>/tls, the server certificate covering this head's names and addresses.
 */
async function headCertificates(config: KeelConfig, dataDir: string, log: Logger): Promise<TlsCertificates> {
  const addresses = Object.values(networkInterfaces()).flatMap((entries) => (entries ?? []).map((entry) => entry.address));
  const tls = await ensureTlsCertificates({
    dataDir,
    headName: config.server.name,
    names: serverNames({ headName: config.server.name, hostname: hostname(), domain: config.dns.domain, addresses, extra: config.https.extra_names }),
    configured: { certFile: config.https.cert_file, keyFile: config.https.key_file, caFile: config.https.ca_file },
  });
  const ca = describeCertificates(tls.caPem)[0];
  // The CA's fingerprint in the log: what an admin compares before trusting a CA fetched over plain HTTP.
  log.info({ certificate: tls.certFile, change: tls.change, names: tls.names.map((n) => n.value), not_after: tls.notAfter.toISOString(), ca_sha256: ca?.sha256_fingerprint }, 'HTTPS certificate');
  return tls;
}
