// A Redfish BMC for the tests: serves DMTF's public-rackmount1 mockup (../shared/fixtures/redfish)
// on loopback, applies Reset and PATCH of Boot to its own in-memory copy, authenticates with
// SessionService sessions (X-Auth-Token) or Basic, and behaves like awkward real BMCs on demand
// (BmcFaults, set at start or at any time): no session service, power actions applied seconds
// late, a one-time boot override kept as continuous, a silently reverted override, graceful
// shutdown refused or ignored, reset types listed only in an ActionInfo, errors explained in
// @Message.ExtendedInfo, 5xx answers, slow answers, and connections accepted but never answered.
// selfSignedCertificate() makes the certificate of a BMC reached under another host name.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
  /** No session service: the service root links none, and POST to the usual Sessions path answers 401 (unauthenticated, like any unknown path). */
  noSessionService: boolean;
  /** A session service that refuses to create sessions: POST Sessions answers 405. */
  refuseSessions: boolean;
  /** Reset actions are accepted (204) at once and applied to PowerState this many ms later. */
  actionDelayMs: number;
  /** A PATCH asking for a one-time boot override (Once) stores it as Continuous. */
  bootOnceBecomesContinuous: boolean;
  /** GracefulShutdown is refused with 400 (the OS does not take ACPI requests). */
  refuseGraceful: boolean;
  /** When set: the Reset action lists its ResetType values only in an @Redfish.ActionInfo resource, and allows just these. */
  resetActionInfo?: string[];
  /** Error answers carry @Message.ExtendedInfo (the message that says why) besides a generic top-level message. */
  extendedInfo: boolean;
  /** Accept connections and requests, never answer. */
  hang: boolean;
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

/** A self-signed certificate (and key) for `hostName` only: a BMC reached as 127.0.0.1 presents the wrong name. */
export function selfSignedCertificate(hostName: string): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'keel-rf-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-subj', `/CN=${hostName}`, '-addext', `subjectAltName=DNS:${hostName}`], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ACTION_INFO_PATH = '/redfish/v1/Systems/437XR1138R2/ResetActionInfo';

export async function startRedfishBmc(options: { tls?: { key: string; cert: string }; faults?: Partial<BmcFaults> } = {}): Promise<RedfishBmc> {
  const resources = loadMockup(MOCKUP_DIR);
  const sessions = new Map<string, string>();
  const faults: BmcFaults = {
    revertBoot: false, errors5xx: 0, delayMs: 0, ignoreGraceful: false, noSessionService: false, refuseSessions: false, actionDelayMs: 0,
    bootOnceBecomesContinuous: false, refuseGraceful: false, extendedInfo: false, hang: false, ...options.faults,
  };
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
  const error = (res: ServerResponse, status: number, message: string) => send(res, status, faults.extendedInfo
    ? { error: { code: 'Base.1.0.GeneralError', message: 'A general error has occurred. See ExtendedInfo for more information.', '@Message.ExtendedInfo': [{ MessageId: 'Base.1.0.GeneralError', Message: message, Resolution: 'See the BMC documentation.' }] } }
    : { error: { code: 'Base.1.0.GeneralError', message } });

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
    if (faults.hang) return;
    if (req.method === 'GET' && path === '/redfish/v1') {
      const root = { ...resources.get(path) };
      if (faults.noSessionService) {
        delete root.SessionService;
        delete root.Links;
      }
      return send(res, 200, root);
    }
    if (req.method === 'POST' && path === '/redfish/v1/SessionService/Sessions' && !faults.noSessionService) {
      if (faults.refuseSessions) return error(res, 405, 'sessions not supported');
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
    const resetAction = (system.Actions as Json)['#ComputerSystem.Reset'] as Json;
    const allowedResetTypes = faults.resetActionInfo ?? resetAction['ResetType@Redfish.AllowableValues'] as string[];
    if (req.method === 'GET' && path === ACTION_INFO_PATH && faults.resetActionInfo) {
      return send(res, 200, { '@odata.id': ACTION_INFO_PATH, Id: 'ResetActionInfo', Parameters: [{ Name: 'ResetType', Required: true, DataType: 'String', AllowableValues: faults.resetActionInfo }] });
    }
    if (req.method === 'GET' && path === systemPath && faults.resetActionInfo) {
      const { 'ResetType@Redfish.AllowableValues': _inline, ...action } = resetAction;
      return send(res, 200, { ...system, Actions: { ...(system.Actions as Json), '#ComputerSystem.Reset': { ...action, '@Redfish.ActionInfo': ACTION_INFO_PATH } } });
    }
    if (req.method === 'POST' && path === `${systemPath}/Actions/ComputerSystem.Reset`) {
      const type = data.ResetType as string;
      if (!allowedResetTypes.includes(type)) return error(res, 400, `The value ${type} for the parameter ResetType is not in the list of acceptable values.`);
      if (type === 'GracefulShutdown' && faults.refuseGraceful) return error(res, 400, 'The operating system did not accept the graceful shutdown request.');
      bmc.resets.push(type);
      const effect = RESET_EFFECT[type];
      const apply = () => {
        if (effect === 'restart') system.PowerState = 'On';
        else if (effect !== undefined && !(type === 'GracefulShutdown' && faults.ignoreGraceful)) system.PowerState = effect;
      };
      if (faults.actionDelayMs > 0) setTimeout(apply, faults.actionDelayMs);
      else apply();
      return send(res, 204);
    }
    if (req.method === 'PATCH' && path === systemPath) {
      const boot = data.Boot as Json | undefined;
      if (boot === undefined) return error(res, 400, 'only Boot can be changed');
      const allowed = (system.Boot as Json)['BootSourceOverrideTarget@Redfish.AllowableValues'] as string[];
      if (boot.BootSourceOverrideTarget !== undefined && !allowed.includes(boot.BootSourceOverrideTarget as string)) return error(res, 400, 'target not allowed');
      const stored = faults.bootOnceBecomesContinuous && boot.BootSourceOverrideEnabled === 'Once' ? { ...boot, BootSourceOverrideEnabled: 'Continuous' } : boot;
      if (!faults.revertBoot) Object.assign(system.Boot as Json, stored);
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
