// What power control needs to know about one node: its BMC (from power_uri, or redfish_uri), the
// credentials, and the per-node options read from its merged attributes. Cluster-wide defaults are
// the attributes of the cluster's default_group (merged first, so every node inherits them); keys
// nobody sets fall back to the built-in values of src/model/power-settings.ts.
import { mergedAttributes } from '../model/cluster.js';
import { hasPlaceholders } from '../model/placeholders.js';
import { fillPowerUri, powerUriTemplate } from '../model/power-uri.js';
import { PowerSettings, type RedfishQuirkName } from '../model/power-settings.js';
import type { Store, StoredRecord } from '../store/store.js';

export interface IpmiOptions {
  /** FreeIPMI driver type: LAN_2_0 (default) or LAN. */
  driverType: string;
  /** IPMI 2.0 cipher suite id, or undefined for FreeIPMI's default. */
  cipherSuite?: number;
  /** FreeIPMI workaround flags (comma list), e.g. `opensesspriv`. */
  workarounds: string;
  sessionTimeoutMs: number;
  retransmissionTimeoutMs: number;
}

export interface RedfishOptions {
  /** `verify` (default): the BMC certificate must chain to a trusted CA; `insecure`: accept any (self-signed). */
  tls: 'verify' | 'insecure';
  timeoutMs: number;
  /** Quirk sets applied in order over those chosen by the service root's Vendor (src/power/quirks.ts). */
  quirks: RedfishQuirkName[];
}

interface TargetBase {
  uid: string;
  name: string;
  host: string;
  username: string;
  password: string;
  /** Seconds a graceful shutdown may take before `power off` (without force) turns the node off hard. */
  softWaitS: number;
  /** Seconds to wait after a request's last action for the BMC to report its aim (BMCs apply actions late). */
  confirmWaitS: number;
}

export interface IpmiTarget extends TargetBase {
  kind: 'ipmi';
  port: number;
  options: IpmiOptions;
}

export interface RedfishTarget extends TargetBase {
  kind: 'redfish';
  /** `https://host[:port]` (or http:// when the URI is redfish+http:// or http://). */
  baseUrl: string;
  /** System id from the URI path; undefined = discover from the service root. */
  systemId?: string;
  options: RedfishOptions;
}

export type PowerTarget = IpmiTarget | RedfishTarget;

/** A node power control cannot reach, with the reason. */
export interface UnresolvedTarget {
  kind: 'none';
  uid: string;
  name: string;
  reason: string;
}

const IPMI_DEFAULT_PORT = 623;

function ipmiOptions(settings: PowerSettings): IpmiOptions {
  return {
    driverType: settings.choice('ipmi_driver_type'),
    cipherSuite: settings.optionalInteger('ipmi_cipher_suite'),
    workarounds: settings.workarounds(),
    sessionTimeoutMs: settings.integer('ipmi_session_timeout_ms'),
    retransmissionTimeoutMs: settings.integer('ipmi_retransmission_timeout_ms'),
  };
}

function redfishOptions(settings: PowerSettings): RedfishOptions {
  return { tls: settings.choice('redfish_tls'), timeoutMs: settings.integer('redfish_timeout_ms'), quirks: settings.quirks() };
}

/** A node's BMC URI with placeholders filled: which field it came from, and the value; undefined when it has neither field. */
function nodePowerUri(store: Store, node: StoredRecord, attrs = mergedAttributes(store, node)): { field: string; uri: string } | undefined {
  const found = powerUriTemplate(node);
  return found === undefined ? undefined : { field: found.field, uri: fillPowerUri(found.template, attrs) };
}

/** The Redfish system id in a plain http(s) URL's path: `/redfish/v1/Systems/<id>`, or nothing (discover). */
function systemIdInPath(pathname: string): string | undefined | Error {
  const path = pathname.replace(/\/+$/, '');
  if (path === '' || path === '/redfish/v1') return undefined;
  const match = /^\/redfish\/v1\/Systems\/([^/]+)$/.exec(path);
  return match ? decodeURIComponent(match[1]!) : new Error(`path must be /redfish/v1/Systems/<id> (or none), got '${path}'`);
}

/** Resolve a node to its power target, or the reason it has none. Never throws. */
export function resolveTarget(store: Store, node: StoredRecord): PowerTarget | UnresolvedTarget {
  const base = { uid: node.uid, name: String(node.name ?? node.uid) };
  const none = (reason: string): UnresolvedTarget => ({ kind: 'none', ...base, reason });
  try {
    const attrs = mergedAttributes(store, node);
    const found = nodePowerUri(store, node, attrs);
    if (found === undefined) return none('node has no power_uri (nor redfish_uri)');
    const { field, uri } = found;
    if (hasPlaceholders(uri)) return none(`${field} has placeholders without a value`);
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return none(`${field} is not a valid URI`);
    }
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    const credentials = { host: url.hostname.replace(/^\[|\]$/g, ''), username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    if (credentials.host === '') return none(`${field} has no host`);
    const settings = new PowerSettings(attrs);
    const waits = { softWaitS: settings.integer('power_soft_wait_s'), confirmWaitS: settings.integer('power_confirm_wait_s') };
    if (scheme === 'ipmi') {
      return { kind: 'ipmi', ...base, ...credentials, ...waits, port: url.port === '' ? IPMI_DEFAULT_PORT : Number(url.port), options: ipmiOptions(settings) };
    }
    const redfish = (protocol: 'http' | 'https', systemId: string | undefined): RedfishTarget =>
      ({ kind: 'redfish', ...base, ...credentials, ...waits, baseUrl: `${protocol}://${url.host}`, systemId, options: redfishOptions(settings) });
    if (scheme === 'redfish' || scheme === 'redfish+https' || scheme === 'redfish+http') {
      return redfish(scheme === 'redfish+http' ? 'http' : 'https', decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, '')) || undefined);
    }
    if (scheme === 'https' || scheme === 'http') {
      const systemId = systemIdInPath(url.pathname);
      if (systemId instanceof Error) return none(`${field}: ${systemId.message}`);
      return redfish(scheme, systemId);
    }
    return none(`${field} scheme '${scheme}' is not supported (ipmi, redfish, redfish+https, redfish+http, https, http)`);
  } catch (err) {
    return none((err as Error).message);
  }
}
