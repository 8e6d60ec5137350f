// What a route is: method, path, the role it requires (declared next to its handler), an
// optional body schema (or `'stream'` for a raw body the handler reads as it arrives), and the
// handler. Handlers return the `data` of the success envelope (undefined → `{"success": true}`
// without data), a FileReply (raw bytes, no envelope), or throw an HttpError.
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
  /** The raw body, on routes declaring `body: 'stream'`; iterating it throws if the client aborts. */
  stream?: AsyncIterable<Buffer>;
  remoteAddress: string;
  /** The authenticated admin; absent on public routes. */
  principal?: Principal;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  access: RouteAccess;
  summary: string;
  /**
   * Fields the JSON body may carry (other fields get 400 `Unhandled parameter(s): …`), or
   * `'stream'`: any content type, no size limit, read by the handler from `req.stream` with
   * backpressure (uploads of large files).
   */
  body?: Schema | 'stream';
  handler(req: Request, ctx: ApiContext): unknown;
}
