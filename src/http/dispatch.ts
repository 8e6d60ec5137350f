// One request through a mount, independent of the HTTP server carrying it: route match, body, the
// mount's hook (authentication, body validation), handler, and the envelope. Every outcome,
// including an unexpected exception, becomes a Reply; nothing is thrown to the server.
import type { Logger } from 'pino';
import { FileReply } from './file-reply.js';
import { StreamReply } from './stream-reply.js';
import { notFound, toHttpError, unsupportedMediaType, type ErrorStatus } from './errors.js';
import type { Router } from './router.js';
import type { Request, Route } from './route.js';

const METHODS_WITH_BODY = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface Reply {
  status: number;
  payload: { success: boolean; data?: unknown; reason?: string };
  headers: Readonly<Record<string, string>>;
  /** Close the connection after the reply (the rest of the request body was not read). */
  close: boolean;
  /** Raw bytes instead of the envelope (`payload` is then unused). */
  file?: FileReply;
  /** A raw body of unknown length, produced while it is sent (`payload` is then unused). */
  stream?: StreamReply;
}

/** What a transport offers dispatch: the request's body. */
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

/** What a mount adds to the plumbing (fastify's hooks): the checks before a handler, and errors. */
export interface Hooks<Ctx, R extends Route<Ctx>> {
  /**
   * Runs before the handler of every request that is not answered at once — a route that is not
   * public, declares a body, or is called with POST, PUT, PATCH or DELETE — after the body is read:
   * finds the caller (`req.principal`) and checks the body, or throws to refuse.
   */
  beforeHandler?(route: R, req: Request, ctx: Ctx): Promise<void>;
  /** Error classes of the layers below that are refusals, and the status each answers with. */
  errorStatuses: readonly ErrorStatus[];
  log: Logger;
}

/** A router with its context and hooks under a path prefix: what the HTTP server dispatches to. */
export interface Mount {
  prefix: string;
  dispatch(req: Request, body: RequestBody): Reply | Promise<Reply>;
}

export function mount<Ctx, R extends Route<Ctx>>(prefix: string, router: Router<R>, ctx: Ctx, hooks: Hooks<Ctx, R>): Mount {
  return { prefix, dispatch: (req, body) => dispatchNow(router, ctx, hooks, req, body, prefix) };
}

/**
 * One request through `router` (its endpoints under `prefix`). Answered synchronously where
 * nothing has to wait: a public route without a request body whose handler returns a value (the
 * boot path's file downloads), so that a transport can write the reply while still inside its
 * request callback, without a microtask hop per request. Every other request goes through
 * `dispatchAsync` and gets a promise.
 */
export function dispatchNow<Ctx, R extends Route<Ctx>>(router: Router<R>, ctx: Ctx, hooks: Hooks<Ctx, R>, req: Request, body: RequestBody, prefix: string): Reply | Promise<Reply> {
  let route: R;
  try {
    if (req.path !== prefix && !req.path.startsWith(prefix + '/')) throw notFound(`No such endpoint: ${req.path}`);
    const match = router.match(req.method, req.path.slice(prefix.length));
    route = match.route;
    req.params = match.params;
    if (route.access !== 'public' || route.body !== undefined || METHODS_WITH_BODY.has(req.method)) return dispatchAsync(route, ctx, hooks, req, body);
    req.principal = undefined;
    const data = route.handler(req, ctx);
    if (data instanceof Promise) return data.then(success, (err: unknown) => failure(hooks, req, err));
    return success(data);
  } catch (err) {
    return failure(hooks, req, err);
  }
}

async function dispatchAsync<Ctx, R extends Route<Ctx>>(route: R, ctx: Ctx, hooks: Hooks<Ctx, R>, req: Request, body: RequestBody): Promise<Reply> {
  try {
    if (route.body === 'stream') {
      if (!body.openStream) throw unsupportedMediaType(`${req.headers['content-type'] ?? ''} (streamed uploads are not available on this transport)`);
      req.stream = body.openStream();
    } else if (METHODS_WITH_BODY.has(req.method)) req.body = await body.readBody();
    req.principal = undefined;
    await hooks.beforeHandler?.(route, req, ctx);
    return success(await route.handler(req, ctx));
  } catch (err) {
    return failure(hooks, req, err);
  }
}

function success(data: unknown): Reply {
  if (data instanceof FileReply) return { status: 200, payload: { success: true }, headers: {}, close: false, file: data };
  if (data instanceof StreamReply) return { status: data.status, payload: { success: true }, headers: {}, close: false, stream: data };
  return { status: 200, payload: data === undefined ? { success: true } : { success: true, data }, headers: {}, close: false };
}

function failure<Ctx, R extends Route<Ctx>>(hooks: Hooks<Ctx, R>, req: Request, err: unknown): Reply {
  const refusal = toHttpError(err, hooks.errorStatuses);
  if (refusal) {
    hooks.log.debug({ method: req.method, path: req.path, status: refusal.status, reason: refusal.message }, 'request refused');
    return { status: refusal.status, payload: { success: false, reason: refusal.message }, headers: refusal.headers, close: refusal.status === 413 || refusal.status === 415 };
  }
  hooks.log.error({ err, method: req.method, path: req.path }, 'unexpected error in request handler');
  return { status: 500, payload: { success: false, reason: 'Internal server error' }, headers: {}, close: false };
}
