// What power control needs to know about one node: its BMC (from power_uri, or redfish_uri), the
// credentials, and the per-node options read from its merged attributes. Cluster-wide defaults are
// the attributes of the cluster's default_group (merged first, so every node inherits them); keys
// nobody sets fall back to the built-in values below.
import { mergedAttributes } from '../model/cluster.js';
import { hasPlaceholders } from '../model/placeholders.js';
import { fillPowerUri } from '../model/power-uri.js';
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
  /** Name of a quirks entry (src/power/quirks.ts); default: chosen from the service root's Vendor. */
  quirks?: string;
}

interface TargetBase {
  uid: string;
  name: string;
  host: string;
  username: string;
  password: string;
  /** Seconds a graceful shutdown may take before `power off` (without force) turns the node off hard. */
  softWaitS: number;
}

export interface IpmiTarget extends TargetBase {
  kind: 'ipmi';
  port: number;
  options: IpmiOptions;
}

export interface RedfishTarget extends TargetBase {
  kind: 'redfish';
  /** `https://host[:port]` (or http:// when the URI is redfish+http://). */
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

/** Attribute names read by power control (documented in docs/power.md). */
export const POWER_ATTRIBUTES = {
  driverType: 'ipmi_driver_type',
  cipherSuite: 'ipmi_cipher_suite',
  workarounds: 'ipmi_workarounds',
  sessionTimeoutMs: 'ipmi_session_timeout_ms',
  retransmissionTimeoutMs: 'ipmi_retransmission_timeout_ms',
  redfishTls: 'redfish_tls',
  redfishTimeoutMs: 'redfish_timeout_ms',
  redfishQuirks: 'redfish_quirks',
  softWaitS: 'power_soft_wait_s',
} as const;

export const POWER_DEFAULTS = {
  driverType: 'LAN_2_0',
  workarounds: '',
  sessionTimeoutMs: 5000,
  retransmissionTimeoutMs: 500,
  redfishTimeoutMs: 5000,
  softWaitS: 30,
} as const;

const DRIVER_TYPES = new Set(['LAN', 'LAN_2_0']);

function integer(attrs: Record<string, string>, key: string, fallback: number, min: number, max: number): number {
  const text = attrs[key];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`attribute ${key} must be an integer ${min}..${max}, got '${text}'`);
  return value;
}

function ipmiOptions(attrs: Record<string, string>): IpmiOptions {
  const driverType = (attrs[POWER_ATTRIBUTES.driverType] ?? POWER_DEFAULTS.driverType).toUpperCase();
  if (!DRIVER_TYPES.has(driverType)) throw new Error(`attribute ${POWER_ATTRIBUTES.driverType} must be LAN or LAN_2_0, got '${driverType}'`);
  const workarounds = attrs[POWER_ATTRIBUTES.workarounds] ?? POWER_DEFAULTS.workarounds;
  // Passed as one argv element; refuse anything that is not a flag list.
  if (!/^[a-z0-9,]*$/i.test(workarounds)) throw new Error(`attribute ${POWER_ATTRIBUTES.workarounds} must be a comma list of FreeIPMI workaround flags`);
  const cipher = attrs[POWER_ATTRIBUTES.cipherSuite];
  return {
    driverType,
    cipherSuite: cipher === undefined || cipher === '' ? undefined : integer(attrs, POWER_ATTRIBUTES.cipherSuite, 3, 0, 17),
    workarounds,
    sessionTimeoutMs: integer(attrs, POWER_ATTRIBUTES.sessionTimeoutMs, POWER_DEFAULTS.sessionTimeoutMs, 100, 600_000),
    retransmissionTimeoutMs: integer(attrs, POWER_ATTRIBUTES.retransmissionTimeoutMs, POWER_DEFAULTS.retransmissionTimeoutMs, 10, 60_000),
  };
}

function redfishOptions(attrs: Record<string, string>): RedfishOptions {
  const tls = attrs[POWER_ATTRIBUTES.redfishTls] ?? 'verify';
  if (tls !== 'verify' && tls !== 'insecure') throw new Error(`attribute ${POWER_ATTRIBUTES.redfishTls} must be verify or insecure, got '${tls}'`);
  return {
    tls,
    timeoutMs: integer(attrs, POWER_ATTRIBUTES.redfishTimeoutMs, POWER_DEFAULTS.redfishTimeoutMs, 100, 600_000),
    quirks: attrs[POWER_ATTRIBUTES.redfishQuirks] || undefined,
  };
}

/** The substituted power URI of a node: power_uri, else redfish_uri; undefined when it has neither. */
export function nodePowerUri(store: Store, node: StoredRecord, attrs = mergedAttributes(store, node)): string | undefined {
  const template = typeof node.power_uri === 'string' ? node.power_uri : typeof node.redfish_uri === 'string' ? node.redfish_uri : undefined;
  if (template === undefined) return undefined;
  return fillPowerUri(template, node, attrs);
}

/** Resolve a node to its power target, or the reason it has none. Never throws. */
export function resolveTarget(store: Store, node: StoredRecord): PowerTarget | UnresolvedTarget {
  const base = { uid: node.uid, name: String(node.name ?? node.uid) };
  try {
    const attrs = mergedAttributes(store, node);
    const uri = nodePowerUri(store, node, attrs);
    if (uri === undefined) return { kind: 'none', ...base, reason: 'node has no power_uri' };
    if (hasPlaceholders(uri)) return { kind: 'none', ...base, reason: 'power_uri has placeholders without a value' };
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return { kind: 'none', ...base, reason: 'power_uri is not a valid URI' };
    }
    const scheme = url.protocol.slice(0, -1).toLowerCase();
    const credentials = { host: url.hostname.replace(/^\[|\]$/g, ''), username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    const softWaitS = integer(attrs, POWER_ATTRIBUTES.softWaitS, POWER_DEFAULTS.softWaitS, 0, 3600);
    if (credentials.host === '') return { kind: 'none', ...base, reason: 'power_uri has no host' };
    if (scheme === 'ipmi') {
      return { kind: 'ipmi', ...base, ...credentials, softWaitS, port: url.port === '' ? 623 : Number(url.port), options: ipmiOptions(attrs) };
    }
    if (scheme === 'redfish' || scheme === 'redfish+https' || scheme === 'redfish+http') {
      const protocol = scheme === 'redfish+http' ? 'http' : 'https';
      const systemId = decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, '')) || undefined;
      return { kind: 'redfish', ...base, ...credentials, softWaitS, baseUrl: `${protocol}://${url.host}`, systemId, options: redfishOptions(attrs) };
    }
    return { kind: 'none', ...base, reason: `power_uri scheme '${scheme}' is not supported (ipmi, redfish, redfish+http)` };
  } catch (err) {
    return { kind: 'none', ...base, reason: (err as Error).message };
  }
}
