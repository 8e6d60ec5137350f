// The HTTP server: uWebSockets.js sockets and lifecycle, request bodies read with onData/onAborted
// under a size limit, and the JSON envelope. Routing, auth and validation live in their own files.
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { loadUws } from '../native.js';
import type { ApiContext } from './context.js';
import { dispatch, type Reply } from './dispatch.js';
import { badRequest, payloadTooLarge, unsupportedMediaType } from './errors.js';
import type { Router } from './router.js';
import type { Request } from './route.js';

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found',
  405: '405 Method Not Allowed', 413: '413 Payload Too Large', 415: '415 Unsupported Media Type',
  500: '500 Internal Server Error', 501: '501 Not Implemented',
};


/**
 * Body types read as JSON. Besides JSON itself: `application/x-www-form-urlencoded` is what
 * `curl --data` sends by default (the spec's own examples send JSON that way) and `text/plain` is
 * what fetch() and many HTTP libraries send for a string body.
 */
const JSON_BODY_TYPES = new Set(['', 'application/json', 'text/json', 'application/x-www-form-urlencoded', 'text/plain']);

function isJsonType(contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return JSON_BODY_TYPES.has(type) || type.endsWith('+json');
}

/** Per-request state that outlives the synchronous uWS handler. */
interface Exchange {
  res: HttpResponse;
  aborted: boolean;
  done: boolean;
}

function normaliseAddress(text: string): string {
  return text.startsWith('::ffff:') ? text.slice(7) : text;
}

export class ApiServer {
  private readonly app: TemplatedApp;
  private listenSocket?: us_listen_socket;

  constructor(
    private readonly router: Router,
    private readonly ctx: ApiContext,
  ) {
    this.app = loadUws().App();
    this.app.any('/*', (res, req) => this.onRequest(res, req));
  }

  /** Listen on host:port (0 = any free port); resolves to the bound port. */
  listen(host: string, port: number): Promise<number> {
    const uws = loadUws();
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new Error(`cannot listen on ${host}:${port} (address in use or not permitted)`));
        this.listenSocket = socket;
        resolve(uws.us_socket_local_port(socket));
      });
    });
  }

  close(): void {
    if (this.listenSocket) loadUws().us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
  }

  private onRequest(res: HttpResponse, raw: HttpRequest): void {
    const exchange: Exchange = { res, aborted: false, done: false };
    res.onAborted(() => {
      exchange.aborted = true;
    });
    // Everything from `raw` must be read now: uWS invalidates it when this function returns.
    const method = raw.getCaseSensitiveMethod().toUpperCase();
    const url = raw.getUrl();
    const headers: Record<string, string> = {};
    raw.forEach((key, value) => {
      headers[key] = value;
    });
    const req: Request = {
      method,
      path: url,
      params: {},
      query: new URLSearchParams(raw.getQuery() ?? ''),
      headers,
      body: undefined,
      remoteAddress: normaliseAddress(Buffer.from(res.getRemoteAddressAsText()).toString()),
    };
    void this.handle(exchange, req);
  }

  private async handle(exchange: Exchange, req: Request): Promise<void> {
    const reply = await dispatch(this.router, this.ctx, req, () => this.readBody(exchange, req));
    if (reply.status >= 500) this.ctx.log.error({ method: req.method, path: req.path, reason: reply.payload.reason }, 'request failed');
    this.send(exchange, reply);
  }

  /** Read and parse a JSON body; undefined when there is none. */
  private readBody(exchange: Exchange, req: Request): Promise<unknown> {
    const limit = this.ctx.config.http.max_body_bytes;
    const contentType = req.headers['content-type'] ?? '';
    if (!isJsonType(contentType)) return Promise.reject(unsupportedMediaType(contentType));
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > limit) return Promise.reject(payloadTooLarge(limit));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      exchange.res.onData((chunk, isLast) => {
        if (failed) return;
        size += chunk.byteLength;
        if (size > limit) {
          failed = true;
          return reject(payloadTooLarge(limit));
        }
        // uWS reuses the chunk's memory after this callback: copy it.
        chunks.push(Buffer.from(new Uint8Array(chunk)));
        if (!isLast) return;
        const text = Buffer.concat(chunks, size).toString('utf8');
        if (text.trim() === '') return resolve(undefined);
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(badRequest(`Malformed JSON body: ${(err as Error).message}`));
        }
      });
      // A request that is aborted mid-body never calls isLast: settle so nothing waits forever.
      exchange.res.onAborted(() => {
        exchange.aborted = true;
        resolve(undefined);
      });
    });
  }

  private send(exchange: Exchange, reply: Reply): void {
    if (exchange.aborted || exchange.done) return;
    exchange.done = true;
    const body = JSON.stringify(reply.payload);
    exchange.res.cork(() => {
      exchange.res.writeStatus(STATUS_TEXT[reply.status] ?? String(reply.status));
      exchange.res.writeHeader('Content-Type', 'application/json');
      for (const [key, value] of Object.entries(reply.headers)) exchange.res.writeHeader(key, value);
      exchange.res.end(body, reply.close);
    });
  }
}
