// One request through the API, independent of the HTTP server carrying it: route match, body,
// authentication and RBAC, body validation, handler, and the envelope. Every outcome, including an
// unexpected exception, becomes a Reply; nothing is thrown to the server.
import { FileReply } from '../boot/file-reply.js';
import { authenticate } from './auth.js';
import type { ApiContext } from './context.js';
import { HttpError, notFound, unsupportedMediaType } from './errors.js';
import type { Router } from './router.js';
import type { Request } from './route.js';
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

export interface DispatchOptions {
  /** Path prefix of this router's endpoints (default `/api/v1`). */
  prefix?: string;
  /**
   * Start streaming the request body, for routes declaring `body: 'stream'`. Called before any
   * await (the transport must attach its body reader inside the request callback); transports
   * without it refuse such routes.
   */
  openStream?: () => AsyncIterable<Buffer>;
}

export async function dispatch(router: Router, ctx: ApiContext, req: Request, readBody: () => Promise<unknown>, options: DispatchOptions = {}): Promise<Reply> {
  const prefix = options.prefix ?? API_PREFIX;
  try {
    if (req.path !== prefix && !req.path.startsWith(prefix + '/')) throw notFound(`No such endpoint: ${req.path}`);
    const { route, params } = router.match(req.method, req.path.slice(prefix.length));
    req.params = params;
    if (route.body === 'stream') {
      if (!options.openStream) throw unsupportedMediaType(`${req.headers['content-type'] ?? ''} (streamed uploads are not available on this transport)`);
      req.stream = options.openStream();
    } else if (METHODS_WITH_BODY.has(req.method)) req.body = await readBody();
    req.principal = await authenticate(route, req, ctx);
    if (route.body && route.body !== 'stream' && (req.body !== undefined || route.method !== 'DELETE')) validateBody(route.body, req.body ?? {}, true);
    const data = await route.handler(req, ctx);
    if (data instanceof FileReply) return { status: 200, payload: { success: true }, headers: {}, close: false, file: data };
    return { status: 200, payload: data === undefined ? { success: true } : { success: true, data }, headers: {}, close: false };
  } catch (err) {
    if (err instanceof HttpError) {
      ctx.log.debug({ method: req.method, path: req.path, status: err.status, reason: err.message }, 'request refused');
      return { status: err.status, payload: { success: false, reason: err.message }, headers: err.headers, close: err.status === 413 || err.status === 415 };
    }
    ctx.log.error({ err, method: req.method, path: req.path }, 'unexpected error in request handler');
    return { status: 500, payload: { success: false, reason: 'Internal server error' }, headers: {}, close: false };
  }
}
