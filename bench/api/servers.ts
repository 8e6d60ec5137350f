// Bench target: one keel head (uWS) and the very same API (router, context, dispatch) behind
// node:http, in one process, so the comparison measures only the HTTP layer. Prints one JSON line
// with both ports and a token, then serves until killed.
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { dispatch } from '../../src/api/dispatch.js';
import { loadConfig } from '../../src/config.js';
import { startHead } from '../../src/serve.js';

const dataDir = mkdtempSync(join(tmpdir(), 'keel-bench-api-'));
const config = loadConfig({ file: '/dev/null', env: { KEEL_SERVER_DATA_DIR: dataDir, KEEL_SERVER_BIND: '127.0.0.1' } });
const head = await startHead({ config: { ...config, http: { ...config.http, port: 0 } }, log: pino({ level: 'silent' }), adminPassword: 'bench-password' });
const { router, context } = head.api;

const nodeServer = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const request = {
      method: req.method ?? 'GET', path: url.pathname, params: {}, query: url.searchParams,
      headers: req.headers as Record<string, string>, body: undefined, remoteAddress: req.socket.remoteAddress ?? '',
    };
    const readBody = async () => (chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined);
    void dispatch(router, context, request, readBody).then((reply) => {
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.payload));
    });
  });
});
await new Promise<void>((resolve) => nodeServer.listen(0, '127.0.0.1', resolve));

const login = await fetch(`http://127.0.0.1:${head.httpPort}/api/v1/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass: 'bench-password' }) });
const token = ((await login.json()) as { data: { token: { access_token: string } } }).data.token.access_token;
const address = nodeServer.address();
console.log(JSON.stringify({ uws: head.httpPort, node: typeof address === 'object' && address ? address.port : 0, token }));
