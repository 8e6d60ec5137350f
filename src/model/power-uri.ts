// A node's power_uri is a template: `<key>` is replaced by the node's merged attribute `key`
// (then its hardware, then its status value); placeholders without a value stay as written
// (placeholders.ts). The filled URI is then split into the parts power control uses, as in the spec:
//   scheme[+schemes]://[server_username@]server[/path]
// where path may itself be `[username[:password]@]host` — the device behind the server (e.g. an
// outlet or a BMC behind a proxy).
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

/** `template` (a power_uri or redfish_uri) filled from the node's merged attributes, hardware and status. */
export function fillPowerUri(template: string, node: Readonly<Record<string, unknown>>, attributes: Readonly<Record<string, string>>): string {
  const facts = (field: string) => (node[field] as Record<string, unknown> | undefined) ?? {};
  return fillPlaceholders(template, fromSources(attributes, facts('hardware'), facts('status')));
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
