// Redfish with axios: one client per BMC (base URL + credentials + TLS policy), reused across
// requests. Authentication: a SessionService session (`X-Auth-Token`), created on first use,
// re-created once on a 401, deleted on close; Basic auth when the BMC has no usable session
// service. The system is discovered from the service root (never assumed to be /Systems/1).
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

function describe(res: AxiosResponse): string {
  const info = (res.data as { error?: { message?: string } } | undefined)?.error?.message;
  return `HTTP ${res.status}${info ? `: ${info}` : ''}`;
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
      return await this.http.request({ method, url, data, headers: { ...this.authHeaders(), ...headers } });
    } catch (err) {
      const e = err as { code?: string; message: string };
      if (e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT') throw new RedfishError(`BMC did not answer within ${this.target.options.timeoutMs} ms`);
      throw new RedfishError(`BMC unreachable: ${e.code ?? e.message}`);
    }
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

  private async login(root: Json): Promise<void> {
    if (this.quirks!.basicAuthOnly) {
      this.useBasic = true;
      return;
    }
    const sessionsUri = odataId((root.Links as Json | undefined)?.Sessions) ?? '/redfish/v1/SessionService/Sessions';
    const res = await this.http.request({
      method: 'POST', url: sessionsUri, data: { UserName: this.target.username, Password: this.target.password },
    }).catch((err: { code?: string; message: string }) => {
      throw new RedfishError(`BMC unreachable: ${err.code ?? err.message}`);
    });
    const token = res.headers['x-auth-token'] as string | undefined;
    if ((res.status === 200 || res.status === 201) && token) {
      this.token = token;
      this.sessionUri = (res.headers.location as string | undefined) ?? odataId(res.data);
      return;
    }
    if (res.status === 401 || res.status === 403) throw new RedfishError(`login refused (HTTP ${res.status}): wrong user or password`);
    // No usable session service (404/405/501/…): Basic auth on every request.
    this.useBasic = true;
  }

  private async request(method: string, url: string, data?: unknown, headers?: Record<string, string>): Promise<AxiosResponse> {
    let res = await this.send(method, url, data, headers);
    if (res.status === 401 && this.token !== undefined) {
      // The session expired or the BMC restarted: log in again, once.
      this.token = undefined;
      this.sessionUri = undefined;
      await this.login((await this.send('GET', '/redfish/v1/')).data as Json);
      res = await this.send(method, url, data, headers);
    }
    if (res.status === 401 || res.status === 403) throw new RedfishError(`BMC refused the credentials (HTTP ${res.status})`);
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

  async reset(action: PowerAction): Promise<void> {
    await this.connect();
    const system = await this.getJson(this.systemUri!);
    const resetAction = (system.Actions as Json | undefined)?.['#ComputerSystem.Reset'] as Json | undefined;
    const target = resetAction?.target as string | undefined;
    if (!target) throw new RedfishError('system has no ComputerSystem.Reset action');
    const allowed = resetAction!['ResetType@Redfish.AllowableValues'] as string[] | undefined;
    const candidates = this.quirks!.resetTypes[action];
    const resetType = allowed === undefined ? candidates[0] : candidates.find((c) => allowed.includes(c));
    if (!resetType) throw new RedfishError(`system allows no reset type for '${action}' (allows: ${(allowed ?? []).join(', ')})`);
    const res = await this.request('POST', target, { ResetType: resetType }, { 'Content-Type': 'application/json' });
    if (res.status >= 300) throw new RedfishError(`Reset ${resetType}: ${describe(res)}`);
  }

  /** Set the next boot device, then read it back; a BMC that silently reverts is retried, then reported. */
  async setBootDevice(device: BootDevice): Promise<void> {
    await this.connect();
    const wanted = this.quirks!.bootTargets[device];
    for (let attempt = 1; attempt <= this.quirks!.bootWriteAttempts; attempt++) {
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (this.quirks!.patchWithEtag) {
        const etag = (await this.request('GET', this.systemUri!)).headers.etag as string | undefined;
        if (etag) headers['If-Match'] = etag;
      }
      const res = await this.request('PATCH', this.systemUri!, { Boot: { BootSourceOverrideTarget: wanted, BootSourceOverrideEnabled: this.quirks!.bootOverrideEnabled } }, headers);
      if (res.status >= 300) throw new RedfishError(`PATCH Boot: ${describe(res)}`);
      if ((await this.bootTarget()) === wanted) return;
    }
    throw new RedfishError(`BMC did not keep BootSourceOverrideTarget=${wanted} (read back differs after ${this.quirks!.bootWriteAttempts} writes)`);
  }

  /** The boot device read back: pxe, disk, or the Redfish target name (lower case). */
  async getBootDevice(): Promise<string> {
    await this.connect();
    const target = await this.bootTarget();
    const known = (Object.entries(this.quirks!.bootTargets) as [BootDevice, string][]).find(([, name]) => name === target);
    return known ? known[0] : String(target ?? 'none').toLowerCase();
  }

  private async bootTarget(): Promise<string | undefined> {
    const boot = (await this.getJson(this.systemUri!)).Boot as Json | undefined;
    if (boot?.BootSourceOverrideEnabled === 'Disabled') return 'None';
    return boot?.BootSourceOverrideTarget as string | undefined;
  }

  /** Delete the session (best effort) and close idle sockets. */
  async close(): Promise<void> {
    if (this.sessionUri !== undefined) await this.send('DELETE', this.sessionUri).catch(() => undefined);
    this.token = undefined;
    this.sessionUri = undefined;
    (this.http.defaults.httpsAgent as HttpsAgent).destroy();
    (this.http.defaults.httpAgent as HttpAgent).destroy();
  }
}
