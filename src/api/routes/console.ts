// Serial consoles (docs/power.md): `GET /node/<id>/console` answers the newest part of the node's
// console log; the same path with a WebSocket upgrade is the live, interactive console;
// `POST /node/<id>/console/break` (or the WebSocket's break message) sends a serial BREAK. All need
// role.poweradmin: console output carries what a machine prints at boot and in a root shell
// (passwords typed at prompts, kickstart secrets), and the WebSocket types into it.
import type { WebSocketBehavior } from 'uWebSockets.js';
import { badRequest, HttpError, statusLine, toHttpError } from '../../http/errors.js';
import { ConsoleUnavailable } from '../../power/console-line.js';
import { BREAK_MS } from '../../power/console-service.js';
import { authenticate } from '../auth.js';
import type { ApiContext } from '../context.js';
import { DOMAIN_ERROR_STATUSES } from '../errors.js';
import { actor, type Request, type Route } from '../route.js';

const consoles = (ctx: ApiContext) => ctx.consoles;

export const DEFAULT_CONSOLE_KIB = 64;
const MAX_CONSOLE_KIB = 65_536;

export const consoleRoutes: Route[] = [
  {
    method: 'GET', path: '/node/:id/console', access: 'role.poweradmin',
    summary: 'Newest console output: ?kib=N (default 64), ?encoding=base64 for exact bytes; a WebSocket upgrade here is the live console',
    handler: async (req, ctx) => {
      const node = ctx.model.nodes.resolve(req.params.id!);
      const kibText = req.query.get('kib');
      const kib = kibText === null ? DEFAULT_CONSOLE_KIB : Number(kibText);
      if (!Number.isInteger(kib) || kib < 1 || kib > MAX_CONSOLE_KIB) throw badRequest(`kib must be an integer 1..${MAX_CONSOLE_KIB}`);
      const encoding = req.query.get('encoding') ?? 'utf8';
      if (encoding !== 'utf8' && encoding !== 'base64') throw badRequest('encoding must be utf8 or base64');
      const service = consoles(ctx);
      const bytes = await service.tail(node.uid, kib * 1024);
      return { ...service.status(node.uid), bytes: bytes.length, encoding, output: bytes.toString(encoding) };
    },
  },
  {
    method: 'POST', path: '/node/:id/console/break', access: 'role.poweradmin',
    summary: `Send a serial BREAK (Magic SysRq) on the node's console line; duration_ms (serial lines, default ${BREAK_MS.default}) bounded ${BREAK_MS.min}..${BREAK_MS.max}`,
    body: { duration_ms: { type: 'integer', summary: `serial lines: how long the line is held in BREAK, ${BREAK_MS.min}..${BREAK_MS.max} ms (default ${BREAK_MS.default})` } },
    handler: async (req, ctx) => {
      const node = ctx.model.nodes.resolve(req.params.id!);
      const durationMs = breakDuration((req.body as { duration_ms?: unknown } | undefined)?.duration_ms);
      if (typeof durationMs === 'string') throw badRequest(durationMs);
      await sendBreak(ctx, node.uid, durationMs, actor(req));
      return { sent: true, kind: consoles(ctx).status(node.uid).kind, duration_ms: durationMs };
    },
  },
];

/** The BREAK duration asked for (undefined: the default), or why it is refused. */
function breakDuration(value: unknown): number | string {
  if (value === undefined || value === null) return BREAK_MS.default;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < BREAK_MS.min || value > BREAK_MS.max) {
    return `duration_ms must be an integer ${BREAK_MS.min}..${BREAK_MS.max}`;
  }
  return value;
}

/** A BREAK, with the line's refusals as HTTP: no line to send on is 409, a line that failed is 502. */
async function sendBreak(ctx: ApiContext, uid: string, durationMs: number, sender: string): Promise<void> {
  try {
    await consoles(ctx).sendBreak(uid, durationMs, sender);
  } catch (err) {
    if (err instanceof ConsoleUnavailable) throw new HttpError(409, err.message);
    throw new HttpError(502, `break not sent: ${(err as Error).message}`);
  }
}

/** The access check of the WebSocket, as a route so that authenticate() treats it like the REST ones. */
const WEBSOCKET_ROUTE = { method: 'GET', path: '/node/:id/console (WebSocket)', access: 'role.poweradmin' } as const;

interface ConsoleSocket {
  uid: string;
  /** Who opened the console, for the log of BREAKs sent through it. */
  admin: string;
  detach?: () => void;
  closed: boolean;
}

/**
 * A control message: a text message that is exactly a JSON object with `type` (today only
 * `break`, with optional `duration_ms`). Anything else is keystrokes; a client that must type such
 * literal text sends it as a binary message.
 */
function controlMessage(message: ArrayBuffer, isBinary: boolean): { type: string; duration_ms?: unknown } | undefined {
  if (isBinary || message.byteLength === 0 || new Uint8Array(message)[0] !== 0x7b /* { */) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(message).toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && typeof (parsed as { type?: unknown }).type === 'string') {
      return parsed as { type: string; duration_ms?: unknown };
    }
  } catch {
    // Not JSON: keystrokes.
  }
  return undefined;
}

/** Live output a slow client has not taken yet; beyond it uWS drops messages (the log keeps everything). */
const MAX_BACKPRESSURE = 1024 * 1024;

/**
 * The live console on uWS: the token (Authorization: Bearer, or `?token=` for browsers, which
 * cannot set headers on a WebSocket) is checked before the upgrade, like on REST routes; a refused
 * request gets the JSON envelope with 401/403/404/409 and no upgrade. Messages from the client are
 * keystrokes, except control messages (controlMessage); output goes out as binary messages.
 */
export function consoleWebSocket(ctx: ApiContext): WebSocketBehavior<ConsoleSocket> {
  const service = consoles(ctx);
  return {
    maxPayloadLength: 64 * 1024,
    maxBackpressure: MAX_BACKPRESSURE,
    upgrade: (res, req, context) => {
      // Everything from req must be read now: uWS invalidates it when this function returns.
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const id = decodeURIComponent(req.getParameter(0) ?? '');
      const query = new URLSearchParams(req.getQuery() ?? '');
      const header = req.getHeader('authorization');
      const token = query.get('token');
      const headers: Record<string, string> = {};
      if (header !== '') headers.authorization = header;
      else if (token !== null) headers.authorization = `Bearer ${token}`;
      let aborted = false;
      res.onAborted(() => (aborted = true));
      const request: Request = { method: 'GET', path: req.getUrl(), params: { id }, query, headers, body: undefined, remoteAddress: '' };
      void (async () => {
        try {
          const principal = await authenticate(WEBSOCKET_ROUTE, request, ctx);
          const node = ctx.model.nodes.resolve(id);
          if (service.status(node.uid).kind === 'none') throw new HttpError(409, `Node ${id} has no console capture (set its 'console' attribute)`);
          if (aborted) return;
          ctx.log.info({ node: node.uid, admin: principal?.name }, 'console opened');
          res.cork(() => res.upgrade<ConsoleSocket>({ uid: node.uid, admin: principal?.name ?? '', closed: false }, key, protocol, extensions, context));
        } catch (err) {
          if (aborted) return;
          const refusal = toHttpError(err, DOMAIN_ERROR_STATUSES);
          const status = refusal?.status ?? 500;
          const reason = refusal?.message ?? 'Internal server error';
          if (!refusal) ctx.log.error({ err }, 'console upgrade failed');
          res.cork(() => {
            res.writeStatus(statusLine(status));
            res.writeHeader('Content-Type', 'application/json');
            for (const [name, value] of Object.entries(refusal?.headers ?? {})) res.writeHeader(name, value);
            res.end(JSON.stringify({ success: false, reason }), true);
          });
        }
      })();
    },
    open: (ws) => {
      const socket = ws.getUserData();
      socket.detach = service.attach(socket.uid, {
        data: (bytes) => {
          if (!socket.closed) ws.send(bytes, true);
        },
        end: (reason) => {
          if (!socket.closed) ws.end(1001, reason.slice(0, 120));
        },
      });
      if (!socket.detach) ws.end(1011, 'console capture stopped');
    },
    message: (ws, message, isBinary) => {
      const socket = ws.getUserData();
      const control = controlMessage(message, isBinary);
      if (control === undefined) {
        // The message's memory is neutered after this callback: the line gets a copy.
        service.write(socket.uid, Buffer.from(new Uint8Array(message)));
        return;
      }
      // Control replies are text messages (output is always binary).
      const reply = (body: Record<string, unknown>) => {
        if (!socket.closed) ws.send(JSON.stringify({ type: control.type, ...body }), false);
      };
      if (control.type !== 'break') return reply({ ok: false, reason: `unknown control message type '${control.type}' (known: break)` });
      const durationMs = breakDuration(control.duration_ms);
      if (typeof durationMs === 'string') return reply({ ok: false, reason: durationMs });
      void sendBreak(ctx, socket.uid, durationMs, socket.admin).then(
        () => reply({ ok: true, duration_ms: durationMs }),
        (err: Error) => reply({ ok: false, reason: err.message }),
      );
    },
    close: (ws) => {
      const socket = ws.getUserData();
      socket.closed = true;
      socket.detach?.();
    },
  };
}
