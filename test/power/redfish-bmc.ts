// A Redfish BMC for the tests: serves DMTF's public-rackmount1 mockup (../shared/fixtures/redfish)
// on loopback, applies Reset and PATCH of Boot to its own in-memory copy, authenticates with
// SessionService sessions (X-Auth-Token) or Basic, and injects vendor-style faults on demand:
// silent revert of a boot override, 5xx answers, slow answers, an OS that ignores graceful shutdown.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';

export const MOCKUP_DIR = '/work/shared/fixtures/redfish/public-rackmount1';
export const BMC_USER = 'rfadmin';
export const BMC_PASSWORD = 'rf-secret-9';

type Json = Record<string, unknown>;

export interface BmcFaults {
  /** Answer PATCH of Boot with success but keep the old values. */
  revertBoot: boolean;
  /** Answer this many next authenticated requests with 503. */
  errors5xx: number;
  /** Delay every answer by this many ms. */
  delayMs: number;
  /** GracefulShutdown is accepted but the system stays on. */
  ignoreGraceful: boolean;
  /** No session service: POST Sessions answers 405. */
  noSessions: boolean;
}

export interface RedfishBmc {
  port: number;
  url: string;
  faults: BmcFaults;
  /** Reset types received, in order. */
  resets: string[];
  sessionsCreated: number;
  sessionsDeleted: number;
  basicRequests: number;
  system(): Json;
  close(): Promise<void>;
}

function loadMockup(dir: string): Map<string, Json> {
  const resources = new Map<string, Json>();
  const walk = (path: string) => {
    for (const entry of readdirSync(path)) {
      const full = join(path, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (entry === 'index.json') {
        const rel = relative(dir, path);
        resources.set(rel === '' ? '/redfish/v1' : `/redfish/v1/${rel}`, JSON.parse(readFileSync(full, 'utf8')) as Json);
      }
    }
  };
  walk(dir);
  return resources;
}

const RESET_EFFECT: Record<string, 'On' | 'Off' | 'restart'> = {
  On: 'On', ForceOn: 'On', PushPowerButton: 'On', ForceOff: 'Off', GracefulShutdown: 'Off',
  ForceRestart: 'restart', GracefulRestart: 'restart', PowerCycle: 'restart', Nmi: 'restart',
};

export async function startRedfishBmc(options: { tls?: { key: string; cert: string } } = {}): Promise<RedfishBmc> {
  const resources = loadMockup(MOCKUP_DIR);
  const sessions = new Map<string, string>();
  const faults: BmcFaults = { revertBoot: false, errors5xx: 0, delayMs: 0, ignoreGraceful: false, noSessions: false };
  const systemPath = '/redfish/v1/Systems/437XR1138R2';
  const bmc = { resets: [] as string[], sessionsCreated: 0, sessionsDeleted: 0, basicRequests: 0 };

  const send = (res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}) => {
    const finish = () => {
      if (res.destroyed) return;
      const text = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
      res.end(text);
    };
    if (faults.delayMs > 0) setTimeout(finish, faults.delayMs);
    else finish();
  };
  const error = (res: ServerResponse, status: number, message: string) => send(res, status, { error: { code: 'Base.1.0.GeneralError', message } });

  const authenticated = (req: IncomingMessage): boolean => {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string' && sessions.has(token)) return true;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Basic ')) {
      const [user, ...rest] = Buffer.from(auth.slice(6), 'base64').toString().split(':');
      if (user === BMC_USER && rest.join(':') === BMC_PASSWORD) {
        bmc.basicRequests++;
        return true;
      }
    }
    return false;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    let data: Json = {};
    if (body !== '') {
      try {
        data = JSON.parse(body) as Json;
      } catch {
        return error(res, 400, 'malformed JSON');
      }
    }
    if (req.method === 'GET' && path === '/redfish/v1') return send(res, 200, resources.get(path));
    if (req.method === 'POST' && path === '/redfish/v1/SessionService/Sessions') {
      if (faults.noSessions) return error(res, 405, 'sessions not supported');
      if (data.UserName !== BMC_USER || data.Password !== BMC_PASSWORD) return error(res, 401, 'invalid credentials');
      const token = randomBytes(16).toString('hex');
      const id = randomBytes(4).toString('hex');
      sessions.set(token, id);
      bmc.sessionsCreated++;
      const location = `/redfish/v1/SessionService/Sessions/${id}`;
      return send(res, 201, { '@odata.id': location, Id: id, UserName: BMC_USER }, { 'X-Auth-Token': token, Location: location });
    }
    if (!authenticated(req)) return error(res, 401, 'authentication required');
    if (faults.errors5xx > 0) {
      faults.errors5xx--;
      return error(res, 503, 'service temporarily unavailable');
    }
    const sessionMatch = /^\/redfish\/v1\/SessionService\/Sessions\/([^/]+)$/.exec(path);
    if (req.method === 'DELETE' && sessionMatch) {
      for (const [token, id] of sessions) if (id === sessionMatch[1]) {
        sessions.delete(token);
        bmc.sessionsDeleted++;
        return send(res, 204);
      }
      return error(res, 404, 'no such session');
    }
    const system = resources.get(systemPath)!;
    if (req.method === 'POST' && path === `${systemPath}/Actions/ComputerSystem.Reset`) {
      const type = data.ResetType as string;
      const allowed = (system.Actions as Json)['#ComputerSystem.Reset'] as Json;
      if (!(allowed['ResetType@Redfish.AllowableValues'] as string[]).includes(type)) return error(res, 400, `ResetType ${type} not allowed`);
      bmc.resets.push(type);
      const effect = RESET_EFFECT[type];
      if (effect === 'restart') system.PowerState = 'On';
      else if (effect !== undefined && !(type === 'GracefulShutdown' && faults.ignoreGraceful)) system.PowerState = effect;
      return send(res, 204);
    }
    if (req.method === 'PATCH' && path === systemPath) {
      const boot = data.Boot as Json | undefined;
      if (boot === undefined) return error(res, 400, 'only Boot can be changed');
      const allowed = (system.Boot as Json)['BootSourceOverrideTarget@Redfish.AllowableValues'] as string[];
      if (boot.BootSourceOverrideTarget !== undefined && !allowed.includes(boot.BootSourceOverrideTarget as string)) return error(res, 400, 'target not allowed');
      if (!faults.revertBoot) Object.assign(system.Boot as Json, boot);
      return send(res, 204);
    }
    if (req.method === 'GET') {
      const resource = resources.get(path);
      return resource ? send(res, 200, resource) : error(res, 404, 'no such resource');
    }
    return error(res, 405, 'method not allowed');
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString()));
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, listener) : createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(bmc, {
    port,
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    faults,
    system: () => resources.get(systemPath)!,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  });
}
