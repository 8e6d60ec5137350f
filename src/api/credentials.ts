// BMC credentials in API views: the power URIs and the attributes that fill their user or password
// are shown as they are only to callers holding the role that manages power (role.poweradmin);
// everyone else (role.authuser reads everything else) sees them masked (docs/power.md).
import { maskCredentialAttributes, maskNodeView, maskPowerUri } from '../model/power-uri.js';
import { allows } from '../model/roles.js';
import type { ApiContext } from './context.js';
import type { Request } from './route.js';

const seesCredentials = (req: Request) => allows(req.principal?.roles ?? [], 'role.poweradmin');

/** A node view (or views keyed by uid, with `many`) as the caller may see it. */
export function nodeViewFor(req: Request, ctx: ApiContext, data: unknown, many: boolean): unknown {
  if (seesCredentials(req)) return data;
  const names = ctx.model.credentialNames();
  const mask = (view: unknown) => maskNodeView(view as Record<string, unknown>, names);
  return many ? Object.fromEntries(Object.entries(data as Record<string, unknown>).map(([uid, view]) => [uid, mask(view)])) : mask(data);
}

/** Attributes (a node's merged ones, a group's) as the caller may see them. */
export function attributesFor(req: Request, ctx: ApiContext, attributes: Record<string, string>): Record<string, string> {
  return seesCredentials(req) ? attributes : maskCredentialAttributes(attributes, ctx.model.credentialNames());
}

/** Attribute-group views (or views keyed by uid, with `many`) as the caller may see them. */
export function groupViewFor(req: Request, ctx: ApiContext, data: unknown, many: boolean): unknown {
  if (seesCredentials(req)) return data;
  const names = ctx.model.credentialNames();
  const mask = (view: unknown) => {
    const group = view as Record<string, unknown>;
    return typeof group.attributes === 'object' && group.attributes !== null
      ? { ...group, attributes: maskCredentialAttributes(group.attributes as Record<string, string>, names) } : group;
  };
  return many ? Object.fromEntries(Object.entries(data as Record<string, unknown>).map(([uid, view]) => [uid, mask(view)])) : mask(data);
}

/** A power URI as the caller may see it. */
export function powerUriFor(req: Request, uri: string): string {
  return seesCredentials(req) ? uri : maskPowerUri(uri);
}
