// keel's REST API, served inside a test's network namespace, called from the test process (which
// stays in the root namespace): socat, started inside the namespace, joins a Unix socket in the
// lab's directory (the file system is shared across network namespaces) to keel's HTTP port, and
// requests go over that socket. No address or route is added to the root namespace. Each request
// has its own connection (`Connection: close`, and no agent: Node's keep-alive agent would send
// the next request on the connection keel is closing, which then ends without an answer), so
// socat's per-connection children end with it; socat itself is killed by pid at teardown.
// WebSockets (test/power/ws-client.ts speaks TCP) go through a relay in this process from a
// loopback port of the root namespace to the same socket, closed at teardown.
import { createReadStream, existsSync, statSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { startInNamespace, type BootLab } from '../dhcp/boot-lab.js';

export interface ApiReply {
  status: number;
  json: { success?: boolean; reason?: string; data?: unknown } & Record<string, unknown>;
}

/** An answer as it came: for the routes that answer no JSON (PUT /node/<UID>/exec's output). */
export interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface RequestOptions { token?: string; body?: unknown; timeoutMs?: number }

export interface NamespaceApi {
  /** A JSON request (body: JSON value) to `/api/v1<path>`. */
  call(method: string, path: string, options?: RequestOptions): Promise<ApiReply>;
  /** The same request, its answer not parsed. */
  raw(method: string, path: string, options?: RequestOptions): Promise<RawReply>;
  /** PUT the file at `file` as the raw body (an upload: docs/content.md). */
  upload(path: string, file: string, token: string): Promise<ApiReply>;
  login(user: string, pass: string): Promise<string>;
  /** `ws://127.0.0.1:<port>/api/v1`: the same API for WebSocket clients. */
  wsBase: string;
}

export async function namespaceApi(t: ExecutionContext, lab: BootLab, httpPort: number): Promise<NamespaceApi> {
  const socketPath = join(lab.dir, 'api.sock');
  const bridge = startInNamespace(t, lab.server, 'socat', ['-d', '-d', `UNIX-LISTEN:${socketPath},fork`, `TCP:127.0.0.1:${httpPort}`], 'SIGTERM');
  for (const deadline = Date.now() + 10_000; !existsSync(socketPath);) {
    if (Date.now() > deadline || bridge.process.exitCode !== null) throw new Error(`socat made no API socket: ${bridge.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const send = (method: string, path: string, headers: Record<string, string | number>, body: Buffer | string | undefined, file: string | undefined, timeoutMs: number) =>
    new Promise<RawReply>((resolve, reject) => {
      const req = request({ socketPath, method, path: `/api/v1${path}`, headers: { ...headers, connection: 'close' }, agent: false, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(new Error(`${err.message}; socat: ${bridge.output()}`)));
      if (file !== undefined) createReadStream(file).on('error', reject).pipe(req);
      else req.end(body);
    });
  const json = async (method: string, path: string, reply: Promise<RawReply>): Promise<ApiReply> => {
    const { status, body } = await reply;
    const text = body.toString('utf8');
    try {
      return { status, json: JSON.parse(text) as ApiReply['json'] };
    } catch {
      throw new Error(`${method} ${path}: ${status} not JSON: ${text.slice(0, 500)}`);
    }
  };
  const relayed = new Set<Socket>();
  const relay = createServer((client) => {
    const upstream = connect(socketPath);
    relayed.add(client).add(upstream);
    client.on('close', () => relayed.delete(client));
    upstream.on('close', () => relayed.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => relay.once('error', reject).listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    relay.close(() => resolve());
    for (const socket of relayed) socket.destroy();
  }));
  const api: NamespaceApi = {
    wsBase: `ws://127.0.0.1:${(relay.address() as AddressInfo).port}/api/v1`,
    raw(method, path, options = {}) {
      const headers: Record<string, string> = {};
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      const body = options.body === undefined ? undefined : JSON.stringify(options.body);
      if (body !== undefined) headers['content-type'] = 'application/json';
      return send(method, path, headers, body, undefined, options.timeoutMs ?? 60_000);
    },
    call(method, path, options = {}) {
      return json(method, path, api.raw(method, path, options));
    },
    upload(path, file, token) {
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': statSync(file).size };
      return json('PUT', path, send('PUT', path, headers, undefined, file, 120_000));
    },
    async login(user, pass) {
      const res = await api.call('POST', '/login', { body: { user, pass } });
      if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.json)}`);
      return (res.json.data as { token: { access_token: string } }).token.access_token;
    },
  };
  return api;
}
