// What a route is: method, path, who may call it (declared next to its handler), an optional body
// declaration, and the handler. Handlers return the `data` of the success envelope (undefined →
// `{"success": true}` without data), a FileReply (raw bytes, no envelope), a StreamReply (raw bytes
// of unknown length, produced while sent), or throw. The HTTP layer
// knows no roles and no schemas: `access` and a JSON `body` declaration are what the mount's hooks
// check (src/api/hooks.ts for the API); it acts only on `'public'` and `'stream'`.

/** The authenticated caller, as a mount's authenticate hook found it. */
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
  /** Parsed JSON body (checked against the route's body declaration by the mount's hook). */
  body: unknown;
  /** The raw body, on routes declaring `body: 'stream'`; iterating it throws if the client aborts. */
  stream?: AsyncIterable<Buffer>;
  remoteAddress: string;
  /** Whether it came over TLS (the HTTPS port): what scheme URLs handed back to the caller use. */
  secure?: boolean;
  /** The authenticated caller; absent on public routes. */
  principal?: Principal;
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Route<Ctx = unknown, Access extends string = string, BodySchema = unknown> {
  method: Method;
  path: string;
  /** `public`: anyone, no hook runs. Anything else is for the mount's authenticate hook. */
  access: 'public' | Access;
  summary: string;
  /**
   * What the JSON body may carry, for the mount's validate hook, or `'stream'`: any content type,
   * no size limit, read by the handler from `req.stream` with backpressure (uploads of large files).
   */
  body?: BodySchema | 'stream';
  handler(req: Request, ctx: Ctx): unknown;
}
