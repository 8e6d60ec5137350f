// Where a node's BMC is: its power_uri, else its redfish_uri (the spec's field for a Redfish
// service), a template in which `<key>` is replaced by the node's merged attribute `key`;
// placeholders without a value stay as written (placeholders.ts). Only attributes fill them, never
// the hardware or status a node reports about itself: a node must not be able to point its own BMC
// address at a host of its choosing and so receive the BMC credentials (nor from the `node_…`
// attributes a node may write itself). The filled URI is split
// into the parts of the spec:
//   scheme[+schemes]://[server_username@]server[/path]
// where path may itself be `[username[:password]@]host` — the device behind the server (e.g. an
// outlet or a BMC behind a proxy). The user:password parts are credentials: views for callers who
// may not manage power show them masked (maskPowerUri, maskCredentialAttributes).
import type { Store } from '../store/store.js';
import { nodes } from './cluster.js';
import { fillPlaceholders, fromSources } from './placeholders.js';

export interface ParsedPowerUri {
  scheme: string;
  schemes: string;
  server: string;
  path: string;
  server_username: string | null;
  username: string | null;
  password: string | null;
  host: string | null;
}

/** The field that says where a node's BMC is, and its template; undefined when the node has neither. */
export function powerUriTemplate(node: Readonly<Record<string, unknown>>): { field: 'power_uri' | 'redfish_uri'; template: string } | undefined {
  if (typeof node.power_uri === 'string' && node.power_uri !== '') return { field: 'power_uri', template: node.power_uri };
  if (typeof node.redfish_uri === 'string' && node.redfish_uri !== '') return { field: 'redfish_uri', template: node.redfish_uri };
  return undefined;
}

/**
 * Attributes a node writes about itself (token-less PUT /node/putattribs takes only `node_<name>`
 * keys): never BMC addresses or credentials.
 */
const NODE_WRITTEN_ATTRIBUTE = /^node_/;

/** `template` (a power_uri or redfish_uri) filled from the node's merged attributes, except those the node writes itself. */
export function fillPowerUri(template: string, attributes: Readonly<Record<string, string>>): string {
  const valueOf = fromSources(attributes);
  return fillPlaceholders(template, (name) => (NODE_WRITTEN_ATTRIBUTE.test(name) ? undefined : valueOf(name)));
}

/** The user:password of a URI's authority and of its path (the spec's device credentials). */
const USERINFO = /(:\/\/|\/)([^/@]*)@/g;

const MASK = '****';

/** `uri` with each user and password replaced by ****. */
export function maskPowerUri(uri: string): string {
  return uri.replace(USERINFO, (_all, before: string, userinfo: string) => `${before}${userinfo.includes(':') ? `${MASK}:${MASK}` : MASK}@`);
}

/** Attribute names that fill a user or password in any of `templates`: their values are credentials. */
function credentialAttributeNames(templates: Iterable<string>): Set<string> {
  const names = new Set<string>();
  for (const template of templates) {
    for (const [, , userinfo] of template.matchAll(USERINFO)) {
      for (const [, name] of userinfo!.matchAll(/<([^<>\s]+)>/g)) names.add(name!);
    }
  }
  return names;
}

/** `attributes` with the values of `names` replaced by ****. */
export function maskCredentialAttributes(attributes: Readonly<Record<string, string>>, names: ReadonlySet<string>): Record<string, string> {
  return Object.fromEntries(Object.entries(attributes).map(([key, value]) => [key, names.has(key) ? MASK : value]));
}

/** The parts of a power URI, or undefined when it has no `scheme://`. */
export function parsePowerUri(uri: string): ParsedPowerUri | undefined {
  const match = /^([A-Za-z][A-Za-z0-9.-]*(?:\+[A-Za-z0-9.+-]*)?):\/\/([^/]*)(?:\/(.*))?$/.exec(uri);
  if (!match) return undefined;
  const [, schemeText, authority, pathText] = match;
  const [scheme, ...schemes] = schemeText!.split('+');
  const at = authority!.lastIndexOf('@');
  const path = pathText ?? '';
  const pathAt = path.lastIndexOf('@');
  const credentials = pathAt < 0 ? undefined : path.slice(0, pathAt);
  const colon = credentials?.indexOf(':') ?? -1;
  return {
    scheme: scheme!,
    schemes: schemes.join('+'),
    server: at < 0 ? authority! : authority!.slice(at + 1),
    path,
    server_username: at < 0 ? null : authority!.slice(0, at),
    username: credentials === undefined ? null : colon < 0 ? credentials : credentials.slice(0, colon),
    password: credentials === undefined || colon < 0 ? null : credentials.slice(colon + 1),
    host: path === '' ? null : path.slice(pathAt + 1),
  };
}

/** The credential attribute names of the whole cluster: those any node's power_uri or redfish_uri fills a user or password with. */
export function clusterCredentialNames(store: Store): Set<string> {
  const templates: string[] = [];
  for (const node of nodes(store).list()) {
    for (const field of ['power_uri', 'redfish_uri']) if (typeof node[field] === 'string') templates.push(node[field] as string);
  }
  return credentialAttributeNames(templates);
}

/** A node's API view with its BMC credentials masked: the URIs, and attributes holding credentials. */
export function maskNodeView(view: Readonly<Record<string, unknown>>, names: ReadonlySet<string>): Record<string, unknown> {
  const masked: Record<string, unknown> = { ...view };
  for (const field of ['power_uri', 'redfish_uri']) if (typeof masked[field] === 'string') masked[field] = maskPowerUri(masked[field] as string);
  if (typeof masked.attributes === 'object' && masked.attributes !== null) masked.attributes = maskCredentialAttributes(masked.attributes as Record<string, string>, names);
  return masked;
}
