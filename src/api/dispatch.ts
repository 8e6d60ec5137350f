// One request through the API, independent of the HTTP server carrying it: route match, body,
// authentication and RBAC, body validation, handler, and the envelope. Every outcome, including an
// unexpected exception, becomes a Reply; nothing is thrown to the server.
import { FileReply } from '../boot/file-reply.js';
import { authenticate } from './auth.js';
import type { ApiContext } from './context.js';
import { HttpError, notFound, unsupportedMediaType } from './errors.js';
import type { Router } from './router.js';
import type { Request, Route } from './route.js';
import { validateBody } from './validation.js';

export const API_PREFIX = '/api/v1';

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface Reply {
  status: number;
  payload: { success: boolean; data?: unknown; reason?: string };
  headers: Readonly<Record<string, string>>;
  /** Close the connection after the reply (the rest of the request body was not read). */
  close: boolean;
  /** Raw bytes instead of the envelope (`payload` is then unused). */
  file?: FileReply;
}

/** What a transport offers dispatchNow: the request's body. */
export interface RequestBody {
  /** The JSON body, parsed; undefined when there is none. */
  readBody(): Promise<unknown>;
  /**
   * Start streaming the body, for routes declaring `body: 'stream'`. Called before any await (the
   * transport must attach its body reader inside its request callback); transports without it
   * refuse such routes.
   */
  openStream?(): AsyncIterable<Buffer>;
}

/**
 * One request through `router` (its endpoints under `prefix`). Answered synchronously where
 * nothing has to wait: a public route without a request body whose handler returns a value (the
 * boot path's file downloads), so that a transport can write the reply while still inside its
 * request callback, without a microtask hop per request. Every other request goes through
 * `dispatchAsync` and gets a promise.
 */
export function dispatchNow(router: Router, ctx: ApiContext, req: Request, body: RequestBody, prefix = API_PREFIX): Reply | Promise<Reply> {
  let route: Route;
  try {
    if (req.path !== prefix && !req.path.startsWith(prefix + '/')) throw notFound(`No such endpoint: ${req.path}`);
    const match = router.match(req.method, req.path.slice(prefix.length));
    route = match.route;
    req.params = match.params;
    if (route.access !== 'public' || route.body !== undefined || METHODS_WITH_BODY.has(req.method)) return dispatchAsync(route, ctx, req, body);
    req.principal = undefined;
    const data = route.handler(req, ctx);
    if (data instanceof Promise) return data.then(success, (err: unknown) => failure(ctx, req, err));
    return success(data);
  } catch (err) {
    return failure(ctx, req, err);
  }
}

async function dispatchAsync(route: Route, ctx: ApiContext, req: Request, body: RequestBody): Promise<Reply> {
  try {
    if (route.body === 'stream') {
      if (!body.openStream) throw unsupportedMediaType(`${req.headers['content-type'] ?? ''} (streamed uploads are not available on this transport)`);
      req.stream = body.openStream();
    } else if (METHODS_WITH_BODY.has(req.method)) req.body = await body.readBody();
    req.principal = await authenticate(route, req, ctx);
    if (route.body && route.body !== 'stream' && (req.body !== undefined || route.method !== 'DELETE')) validateBody(route.body, req.body ?? {}, true);
    return success(await route.handler(req, ctx));
  } catch (err) {
    return failure(ctx, req, err);
  }
}

function success(data: unknown): Reply {
  if (data instanceof FileReply) return { status: 200, payload: { success: true }, headers: {}, close: false, file: data };
  return { status: 200, payload: data === undefined ? { success: true } : { success: true, data }, headers: {}, close: false };
}

function failure(ctx: ApiContext, req: Request, err: unknown): Reply {
  if (err instanceof HttpError) {
    ctx.log.debug({ method: req.method, path: req.path, status: err.status, reason: err.message }, 'request refused');
    return { status: err.status, payload: { success: false, reason: err.message }, headers: err.headers, close: err.status === 413 || err.status === 415 };
  }
  ctx.log.error({ err, method: req.method, path: req.path }, 'unexpected error in request handler');
  return { status: 500, payload: { success: false, reason: 'Internal server error' }, headers: {}, close: false };
}
