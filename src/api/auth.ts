// Authentication and RBAC: public routes need nothing; others need a bearer token of the right kind
// whose admin still exists, has not revoked it, and holds the route's role (the admin is read from
// the store on each request, so a change or a revocation applies at once).
import { forbidden, unauthorized } from '../http/errors.js';
import { tokenGeneration } from '../model/classes/admin.js';
import { allows } from '../model/roles.js';
import type { ApiContext } from './context.js';
import type { Principal, Request, Route } from './route.js';

const BEARER = /^Bearer +(\S+)$/i;

export async function authenticate(route: Pick<Route, 'access' | 'method' | 'path'>, req: Request, ctx: ApiContext): Promise<Principal | undefined> {
  if (route.access === 'public') return undefined;
  const header = req.headers.authorization;
  if (!header) throw unauthorized('Missing Authorization header; log in and send "Authorization: Bearer <token>"');
  const token = BEARER.exec(header)?.[1];
  if (!token) throw unauthorized('Malformed Authorization header; expected "Bearer <token>"');
  const claims = await ctx.tokens.verify(token, route.access === 'refresh-token' ? 'refresh' : 'access');
  const admin = ctx.model.admins.collection.get(claims.sub);
  if (!admin) throw unauthorized('The account this token was issued to no longer exists');
  if (claims.gen !== tokenGeneration(admin)) throw unauthorized('This token was revoked (a password, role or key change, or a revocation); log in again');
  const principal: Principal = { uid: admin.uid, name: admin.name as string, roles: (admin.roles as string[] | undefined) ?? [] };
  if (route.access !== 'refresh-token' && !allows(principal.roles, route.access)) {
    throw forbidden(`${route.access} required for ${route.method} ${route.path}`);
  }
  return principal;
}
