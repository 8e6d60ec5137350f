// What a route is: method, path, the role it requires (declared next to its handler), an
// optional body schema, and the handler. Handlers return the `data` of the success envelope
// (undefined → `{"success": true}` without data) or throw an HttpError.
import type { ApiContext } from './context.js';
import type { Role } from './rbac.js';
import type { Schema } from './validation.js';

/** `public`: no token. `refresh-token`: only a refresh token (GET /newtoken). Else a role. */
export type RouteAccess = 'public' | 'refresh-token' | Role;

export interface Principal {
  uid: string;
  name: string;
  roles: readonly string[];
}

export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Lower-case header names. */
  headers: Record<string, string>;
  /** Parsed JSON body (validated against the route's schema when it declares one). */
  body: unknown;
  remoteAddress: string;
  /** The authenticated admin; absent on public routes. */
  principal?: Principal;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  access: RouteAccess;
  summary: string;
  /** Fields the JSON body may carry; other fields get 400 `Unhandled parameter(s): …`. */
  body?: Schema;
  handler(req: Request, ctx: ApiContext): unknown;
}
