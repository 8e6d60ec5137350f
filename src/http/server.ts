// The HTTP server: uWebSockets.js sockets and lifecycle, request bodies read with onData/onAborted
// (JSON under a size limit, or streamed with backpressure for upload routes), the JSON envelope,
// and raw file replies (send-file.ts). Routing, hooks and errors live in their own files. What it
// serves are mounts, each a router on its own prefix: the API under /api/v1, the public boot path
// /boot, /metrics (wired in src/serve.ts). One server speaks plain HTTP or, given a key and certificate,
// HTTPS (with its WebSockets as wss://): src/serve.ts runs one of each on their ports.
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket, WebSocketBehavior } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { endHead, sendFile, type SendTarget } from './send-file.js';
import { loadUws } from '../native.js';
import { BodyAborted, BodyStream } from './body-stream.js';
import { sendStream } from './stream-reply.js';
import type { Mount, Reply, RequestBody } from './dispatch.js';
import { badRequest, payloadTooLarge, statusLine, unsupportedMediaType } from './errors.js';
import type { Principal, Request } from './route.js';

/**
 * Body types read as JSON. Besides JSON itself: `application/x-www-form-urlencoded` is what
 * `curl --data` sends by default (the spec's own examples send JSON that way) and `text/plain` is
 * what fetch() and many HTTP libraries send for a string body.
 */
const JSON_BODY_TYPES = new Set(['', 'application/json', 'text/json', 'application/x-www-form-urlencoded', 'text/plain']);

/**
 * How deep a JSON body may nest objects and arrays. Whatever reads a body afterwards (validation,
 * the store's encoder) walks it recursively, and ~1,200 levels overflow the stack: a deeper body
 * is refused before it is parsed. No API body needs more than a few levels.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether the JSON `text` nests objects and arrays deeper than `limit` (brackets in strings do not count). */
export function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function isJsonType(contentType: string): boolean {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return JSON_BODY_TYPES.has(type) || type.endsWith('+json');
}

/**
 * Per-request state that outlives the synchronous uWS handler. It is also what the body readers
 * and the file sender are given (methods, not closures: a request creates as few functions as it
 * can, since the boot path serves tens of thousands of requests per second).
 */
class Exchange implements RequestBody, SendTarget {
  aborted = false;
  done = false;
  /** Run when the client aborts. */
  private readonly abortHandlers: (() => void)[] = [];
  private watchingAborts = false;
  /** The streamed body, on `body: 'stream'` routes. */
  stream?: BodyStream;
  req!: UwsRequest;

  constructor(
    readonly res: HttpResponse,
    private readonly server: HttpServer,
  ) {}

  /**
   * Ask uWS to report a client abort. Needed (and called, inside the request callback) only for a
   * response that is not complete when the callback returns: an async reply, a body being read, a
   * file the socket did not take whole. Most boot-path replies are complete by then and skip the
   * native call and the closure it needs.
   */
  watchAborts(): void {
    if (this.watchingAborts) return;
    this.watchingAborts = true;
    this.res.onAborted(() => {
      this.aborted = true;
      for (const handler of this.abortHandlers) handler();
    });
  }

  isAborted(): boolean {
    return this.aborted;
  }

  onAbort(handler: () => void): void {
    this.watchAborts();
    this.abortHandlers.push(handler);
  }

  readBody(): Promise<unknown> {
    return this.server.readBody(this);
  }

  openStream(): BodyStream {
    return this.server.openStream(this);
  }
}

/** Copies one header into `collected`: a module-level function, so no closure per request. */
let collected: Record<string, string> = {};
function collectHeader(key: string, value: string): void {
  collected[key] = value;
}

/**
 * A request as uWS delivered it. The query is parsed and the peer address asked for (a
 * getpeername system call) only when a route reads them: the boot path's downloads need neither.
 */
class UwsRequest implements Request {
  params: Record<string, string> = {};
  body: unknown = undefined;
  stream?: AsyncIterable<Buffer>;
  principal?: Principal;
  private parsedQuery?: URLSearchParams;
  private address?: string;

  constructor(
    readonly method: string,
    readonly path: string,
    private readonly rawQuery: string,
    readonly headers: Record<string, string>,
    private readonly exchange: Exchange,
    readonly secure: boolean,
  ) {}

  get query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(this.rawQuery));
  }

  /**
   * The peer's address, read from the socket on first use. A response whose client has gone (or
   * whose reply has been sent) is no longer accessible in uWS: its address then reads as ''.
   */
  get remoteAddress(): string {
    if (this.address === undefined) {
      if (this.exchange.aborted || this.exchange.done) return '';
      this.address = normaliseAddress(Buffer.from(this.exchange.res.getRemoteAddressAsText()).toString('latin1'));
    }
    return this.address;
  }
}

function normaliseAddress(text: string): string {
  return text.startsWith('::ffff:') ? text.slice(7) : text;
}

export interface HttpServerOptions {
  /**
   * Checked in order, by prefix; a path under none of them goes to the last (the API, whose
   * router answers it with a 404 in the envelope).
   */
  mounts: readonly Mount[];
  /** Limit of a JSON request body. */
  maxBodyBytes: number;
  /** Where failed (5xx) replies are logged. */
  log: Logger;
  /**
   * Serve HTTPS with this PEM key and certificate (tls.ts) instead of plain HTTP. uWS reads the
   * files itself when the server is made: they are checked before (ensureTlsCertificates).
   */
  tls?: { keyFile: string; certFile: string };
}

function sslApp(tls: { keyFile: string; certFile: string }): TemplatedApp {
  try {
    return loadUws().SSLApp({ key_file_name: tls.keyFile, cert_file_name: tls.certFile });
  } catch (err) {
    // uWS says only "App construction failed".
    throw new Error(`cannot start HTTPS with key ${tls.keyFile} and certificate ${tls.certFile}: ${(err as Error).message}`);
  }
}

export class HttpServer {
  private readonly app: TemplatedApp;
  private listenSocket?: us_listen_socket;
  private readonly mounts: readonly Mount[];

  constructor(private readonly options: HttpServerOptions) {
    if (options.mounts.length === 0) throw new Error('an HTTP server needs at least one mount');
    this.mounts = options.mounts;
    const uws = loadUws();
    // uWS writes a `uWebSockets: 20` header into every reply unless its loop is told to be silent
    // (a per-loop flag of the addon, set through its `_cfg`; there is no per-reply switch).
    uws._cfg('silent');
    this.app = options.tls ? sslApp(options.tls) : uws.App();
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

  /**
   * Serve WebSocket upgrades on `pattern` (uWS syntax, e.g. `/api/v1/node/:id/console`); the
   * behavior's upgrade handler does its own access check. Requests to the same path without an
   * upgrade still reach the routers (uWS passes them on to the catch-all handler).
   */
  webSocket<UserData>(pattern: string, behavior: WebSocketBehavior<UserData>): void {
    this.app.ws<UserData>(pattern, behavior);
  }

  close(): void {
    if (this.listenSocket) loadUws().us_listen_socket_close(this.listenSocket);
    this.listenSocket = undefined;
  }

  private onRequest(res: HttpResponse, raw: HttpRequest): void {
    const exchange = new Exchange(res, this);
    // Everything from `raw` must be read now: uWS invalidates it when this function returns.
    const url = raw.getUrl();
    collected = {};
    raw.forEach(collectHeader);
    const req = new UwsRequest(raw.getCaseSensitiveMethod().toUpperCase(), url, raw.getQuery() ?? '', collected, exchange, this.options.tls !== undefined);
    exchange.req = req;
    let mount = this.mounts[this.mounts.length - 1]!;
    for (const m of this.mounts) {
      if (url === m.prefix || url.startsWith(m.prefix + '/')) {
        mount = m;
        break;
      }
    }
    // dispatch calls readBody/openStream before it waits for anything, i.e. still inside this
    // callback, which is where onData must be attached.
    const reply = mount.dispatch(req, exchange);
    // Answered at once: written now, while uWS has the socket corked for this callback.
    if (!(reply instanceof Promise)) return this.send(exchange, reply);
    exchange.watchAborts();
    void reply.then((settled) => {
      if (exchange.aborted || exchange.done) this.send(exchange, settled);
      else exchange.res.cork(() => this.send(exchange, settled));
    });
  }

  /** Read and parse a JSON body; undefined when there is none. */
  readBody(exchange: Exchange): Promise<unknown> {
    const { req } = exchange;
    const limit = this.options.maxBodyBytes;
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
        if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return reject(badRequest(`JSON body nests deeper than ${MAX_JSON_DEPTH} levels`));
        try {
          resolve(JSON.parse(text));
        } catch (err) {
          reject(badRequest(`Malformed JSON body: ${(err as Error).message}`));
        }
      });
      // A request that is aborted mid-body never calls isLast: settle so nothing waits forever.
      exchange.onAbort(() => resolve(undefined));
    });
  }

  /** The body as it arrives, with uWS pause/resume as backpressure. */
  openStream(exchange: Exchange): BodyStream {
    const { res } = exchange;
    const stream = new BodyStream({
      pause: () => {
        if (!exchange.aborted) res.pause();
      },
      resume: () => {
        if (!exchange.aborted) res.resume();
      },
    });
    // uWS neuters the chunk's memory after this callback: the stream gets a copy.
    res.onData((chunk, isLast) => stream.push(Buffer.from(new Uint8Array(chunk)), isLast));
    exchange.onAbort(() => stream.fail(new BodyAborted()));
    exchange.stream = stream;
    return stream;
  }

  /** Write the reply; inside the request callback or a cork (one system call for head and body). */
  private send(exchange: Exchange, reply: Reply): void {
    const { res, req } = exchange;
    if (reply.status >= 500) this.options.log.error({ method: req.method, path: req.path, reason: reply.payload.reason }, 'request failed');
    if (exchange.aborted || exchange.done) {
      // Nobody will read what a streamed reply's producer writes: stop it.
      reply.stream?.cancel();
      return;
    }
    exchange.done = true;
    // A streamed reply may still be consuming a streamed request body (a child process reading
    // its input while it writes its output): the body keeps its own backpressure.
    if (reply.stream) return sendStream(exchange, req.method, reply.stream);
    // A streamed body the handler did not read to the end: the connection cannot be reused.
    const unreadBody = exchange.stream !== undefined && !exchange.stream.complete;
    exchange.stream?.unpause();
    if (reply.file) return sendFile(exchange, req.method, req.headers, reply.file);
    const body = JSON.stringify(reply.payload);
    res.writeStatus(statusLine(reply.status));
    res.writeHeader('Content-Type', 'application/json');
    for (const [key, value] of Object.entries(reply.headers)) res.writeHeader(key, value);
    if (req.method === 'HEAD') endHead(res, Buffer.byteLength(body));
    else res.end(body, reply.close || unreadBody);
  }
}
