// Redfish with axios: one client per BMC (base URL + credentials + TLS policy), reused across
// requests. Authentication: a SessionService session (`X-Auth-Token`) when the service root links
// one, created on first use, re-created once on a 401, deleted on close; Basic auth when the BMC
// has no session service or refuses to create a session (401/404/405…). Whether the credentials
// are wrong is decided only by an authenticated read with them, never by the session service (a
// BMC without one answers 401 there whatever the password). The system is discovered from the
// service root (never assumed to be /Systems/1).
import { Agent as HttpsAgent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import type { BootDevice, PowerAction } from './ipmi.js';
import { quirksFor, type RedfishQuirks } from './quirks.js';
import type { RedfishTarget } from './target.js';

type Json = Record<string, unknown>;

const odataId = (value: unknown): string | undefined => (value as { '@odata.id'?: string } | undefined)?.['@odata.id'];

/** A refused or failed Redfish exchange, with a message fit for the API (no credentials). */
export class RedfishError extends Error {}

/** The status, the error's message and every `@Message.ExtendedInfo` message (where BMCs say why). */
function describe(res: AxiosResponse): string {
  const error = (res.data as { error?: Json } | undefined)?.error;
  const extended = ((error?.['@Message.ExtendedInfo'] as Json[] | undefined) ?? [])
    .map((info) => [info.Message, info.Resolution].filter((text) => typeof text === 'string' && text !== '').join(' '))
    .filter((text) => text !== '');
  const message = typeof error?.message === 'string' ? error.message : undefined;
  return `HTTP ${res.status}${message === undefined ? '' : `: ${message}`}${extended.length === 0 ? '' : ` (${extended.join('; ')})`}`;
}

/** Node's certificate verification codes, as what is wrong with the certificate. */
const CERTIFICATE_PROBLEMS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'signed by a self-signed CA that is not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'issuer not trusted',
  UNABLE_TO_GET_ISSUER_CERT: 'issuer not trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'issuer not trusted',
  ERR_TLS_CERT_ALTNAME_INVALID: 'host name mismatch',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not yet valid',
};

/** A transport failure (no HTTP answer) as the API's reason. */
export function transportFailure(err: { code?: string; message: string }, timeoutMs: number): string {
  const code = err.code ?? '';
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT') return `BMC did not answer within ${timeoutMs} ms`;
  const problem = CERTIFICATE_PROBLEMS[code] ?? (/^(CERT_|ERR_TLS_CERT)/.test(code) ? 'invalid' : undefined);
  if (problem !== undefined) {
    const remedy = code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? 'use a host name the certificate names in the node\'s power_uri, or set redfish_tls=insecure on the node or a group'
      : 'add its CA to NODE_EXTRA_CA_CERTS, or set redfish_tls=insecure on the node or a group';
    return `BMC certificate refused: ${problem} (${code}); to accept it, ${remedy}`;
  }
  return `BMC unreachable: ${code || err.message}`;
}

export class RedfishClient {
  private readonly http: AxiosInstance;
  private token?: string;
  private sessionUri?: string;
  private useBasic = false;
  private quirks?: RedfishQuirks;
  private systemUri?: string;

  constructor(private readonly target: RedfishTarget) {
    const agentOptions = { keepAlive: true, maxSockets: 4 };
    this.http = axios.create({
      baseURL: target.baseUrl,
      timeout: target.options.timeoutMs,
      // Self-signed BMC certificates are accepted only when the node's redfish_tls says insecure.
      httpsAgent: new HttpsAgent({ ...agentOptions, rejectUnauthorized: target.options.tls === 'verify' }),
      httpAgent: new HttpAgent(agentOptions),
      validateStatus: () => true,
      headers: { Accept: 'application/json', 'OData-Version': '4.0' },
      maxRedirects: 0,
    });
  }

  private authHeaders(): Record<string, string> {
    if (this.token !== undefined) return { 'X-Auth-Token': this.token };
    const basic = Buffer.from(`${this.target.username}:${this.target.password}`).toString('base64');
    return { Authorization: `Basic ${basic}` };
  }

  private async send(method: string, url: string, data?: unknown, headers: Record<string, string> = {}): Promise<AxiosResponse> {
    try {
      return await this.http.request({ method, url, data, headers: { ...headers } });
    } catch (err) {
      throw new RedfishError(transportFailure(err as { code?: string; message: string }, this.target.options.timeoutMs));
    }
  }

  private authenticated(method: string, url: string, data?: unknown, headers: Record<string, string> = {}): Promise<AxiosResponse> {
    return this.send(method, url, data, { ...this.authHeaders(), ...headers });
  }

  /** Log in (session, or Basic when the BMC offers none) and learn quirks and the system, once. */
  private async connect(): Promise<void> {
    if (this.systemUri !== undefined) return;
    const rootRes = await this.send('GET', '/redfish/v1/');
    if (rootRes.status !== 200) throw new RedfishError(`service root: ${describe(rootRes)}`);
    const root = rootRes.data as Json;
    this.quirks = quirksFor(this.target.options.quirks, root);
    if (this.token === undefined && !this.useBasic) await this.login(root);
    const systemsUri = odataId(root.Systems);
    if (!systemsUri) throw new RedfishError('service root has no Systems');
    const systems = await this.getJson(systemsUri);
    const members = ((systems.Members as unknown[] | undefined) ?? []).map(odataId).filter((u): u is string => typeof u === 'string');
    const wanted = this.target.systemId;
    const uri = wanted === undefined ? members[0] : members.find((m) => m.replace(/\/+$/, '').endsWith(`/${wanted}`));
    if (!uri) throw new RedfishError(wanted === undefined ? 'BMC lists no systems' : `BMC has no system '${wanted}' (has: ${members.map((m) => m.split('/').pop()).join(', ')})`);
    this.systemUri = uri;
  }

  /** A session when the service root links a session service that grants one; else Basic. */
  private async login(root: Json): Promise<void> {
    const sessionsUri = odataId((root.Links as Json | undefined)?.Sessions);
    if (this.quirks!.basicAuthOnly || sessionsUri === undefined || root.SessionService === undefined) {
      this.useBasic = true;
      return;
    }
    const res = await this.send('POST', sessionsUri, { UserName: this.target.username, Password: this.target.password }, { 'Content-Type': 'application/json' });
    const token = res.headers['x-auth-token'] as string | undefined;
    if ((res.status === 200 || res.status === 201) && token) {
      this.token = token;
      this.sessionUri = (res.headers.location as string | undefined) ?? odataId(res.data);
      return;
    }
    // Refused (401/403/404/405/501…): Basic on every request; the next read says whether the
    // credentials themselves are wrong.
    this.useBasic = true;
  }

  private async request(method: string, url: string, data?: unknown, headers?: Record<string, string>): Promise<AxiosResponse> {
    let res = await this.authenticated(method, url, data, headers);
    if (res.status === 401 && this.token !== undefined) {
      // The session expired or the BMC restarted: log in again, once.
      this.token = undefined;
      this.sessionUri = undefined;
      await this.login((await this.send('GET', '/redfish/v1/')).data as Json);
      res = await this.authenticated(method, url, data, headers);
    }
    if (res.status === 401 || res.status === 403) throw new RedfishError(`BMC refused the credentials (${describe(res)}): wrong user or password`);
    return res;
  }

  private async getJson(url: string): Promise<Json> {
    const res = await this.request('GET', url);
    if (res.status !== 200) throw new RedfishError(`GET ${url}: ${describe(res)}`);
    return res.data as Json;
  }

  async powerState(): Promise<'on' | 'off' | { unknown: string }> {
    await this.connect();
    const state = (await this.getJson(this.systemUri!)).PowerState;
    if (state === 'On' || state === 'PoweringOff') return 'on';
    if (state === 'Off' || state === 'PoweringOn') return 'off';
    return { unknown: `BMC reports PowerState ${JSON.stringify(state ?? null)}` };
  }

  /** The ResetType values the system accepts: inline AllowableValues, else its ActionInfo; undefined when it says neither. */
  private async allowedResetTypes(resetAction: Json): Promise<string[] | undefined> {
    const inline = resetAction['ResetType@Redfish.AllowableValues'];
    if (Array.isArray(inline)) return inline as string[];
    const infoUri = resetAction['@Redfish.ActionInfo'];
    if (typeof infoUri !== 'string') return undefined;
    const parameters = ((await this.getJson(infoUri)).Parameters as Json[] | undefined) ?? [];
    const values = parameters.find((p) => p.Name === 'ResetType')?.AllowableValues;
    return Array.isArray(values) ? values as string[] : undefined;
  }

  async reset(action: PowerAction): Promise<void> {
    await this.connect();
    const system = await this.getJson(this.systemUri!);
    const resetAction = (system.Actions as Json | undefined)?.['#ComputerSystem.Reset'] as Json | undefined;
    const target = resetAction?.target as string | undefined;
    if (!target) throw new RedfishError('system has no ComputerSystem.Reset action');
    const allowed = await this.allowedResetTypes(resetAction!);
    const candidates = this.quirks!.resetTypes[action];
    const resetType = allowed === undefined ? candidates[0] : candidates.find((c) => allowed.includes(c));
    if (!resetType) throw new RedfishError(`system allows no reset type for '${action}' (wanted one of ${candidates.join(', ')}; allows ${allowed!.join(', ')})`);
    const res = await this.request('POST', target, { ResetType: resetType }, { 'Content-Type': 'application/json' });
    if (res.status >= 300) throw new RedfishError(`Reset ${resetType}: ${describe(res)}`);
  }

  /**
   * Set the next boot device, then read back both the target and whether it is one-time: a BMC
   * that keeps neither is written again, then reported.
   */
  async setBootDevice(device: BootDevice): Promise<void> {
    await this.connect();
    const wanted = { BootSourceOverrideTarget: this.quirks!.bootTargets[device], BootSourceOverrideEnabled: this.quirks!.bootOverrideEnabled };
    let kept: Json = {};
    for (let attempt = 1; attempt <= this.quirks!.bootWriteAttempts; attempt++) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (this.quirks!.patchWithEtag) {
        const etag = (await this.request('GET', this.systemUri!)).headers.etag as string | undefined;
        if (etag) headers['If-Match'] = etag;
      }
      const res = await this.request('PATCH', this.systemUri!, { Boot: wanted }, headers);
      if (res.status >= 300) throw new RedfishError(`PATCH Boot: ${describe(res)}`);
      kept = await this.boot();
      if (kept.BootSourceOverrideTarget === wanted.BootSourceOverrideTarget && kept.BootSourceOverrideEnabled === wanted.BootSourceOverrideEnabled) return;
    }
    const readBack = `BootSourceOverrideTarget=${String(kept.BootSourceOverrideTarget)}, BootSourceOverrideEnabled=${String(kept.BootSourceOverrideEnabled)}`;
    const hint = kept.BootSourceOverrideTarget === wanted.BootSourceOverrideTarget && kept.BootSourceOverrideEnabled === 'Continuous'
      ? ' (the BMC keeps a one-time override as continuous: the node would boot from it every time; redfish_quirks=boot-continuous asks for that knowingly)' : '';
    throw new RedfishError(`BMC did not keep BootSourceOverrideTarget=${wanted.BootSourceOverrideTarget}, BootSourceOverrideEnabled=${wanted.BootSourceOverrideEnabled} after ${this.quirks!.bootWriteAttempts} writes: reads back ${readBack}${hint}`);
  }

  /** The boot device read back: pxe, disk, or the Redfish target name (lower case). */
  async getBootDevice(): Promise<string> {
    await this.connect();
    const boot = await this.boot();
    const target = boot.BootSourceOverrideEnabled === 'Disabled' ? 'None' : boot.BootSourceOverrideTarget;
    const known = (Object.entries(this.quirks!.bootTargets) as [BootDevice, string][]).find(([, name]) => name === target);
    return known ? known[0] : String(target ?? 'none').toLowerCase();
  }

  private async boot(): Promise<Json> {
    return ((await this.getJson(this.systemUri!)).Boot as Json | undefined) ?? {};
  }

  /** Delete the session (best effort) and close idle sockets. */
  async close(): Promise<void> {
    if (this.sessionUri !== undefined) await this.authenticated('DELETE', this.sessionUri).catch(() => undefined);
    this.token = undefined;
    this.sessionUri = undefined;
    (this.http.defaults.httpsAgent as HttpsAgent).destroy();
    (this.http.defaults.httpAgent as HttpAgent).destroy();
  }
}
