// An API route: an HTTP route (src/http/route.ts) whose handler gets the ApiContext, whose access
// is a role (or a refresh token), and whose JSON body is declared as a field schema. Both are
// checked by the API's hook (hooks.ts) before the handler runs.
import type { Route as HttpRoute } from '../http/route.js';
import type { Role } from '../model/roles.js';
import type { Schema } from '../model/schema.js';
import type { ApiContext } from './context.js';

export type { Principal, Request } from '../http/route.js';

/** `public`: no token. `refresh-token`: only a refresh token (GET /newtoken). Else the least role. */
export type RouteAccess = 'public' | 'refresh-token' | Role;

export type Route = HttpRoute<ApiContext, RouteAccess, Schema>;

/** The actor a change is recorded under: the authenticated admin's name. */
export const actor = (req: { principal?: { name: string } }): string => req.principal!.name;
