// Bench target: one keel head (uWS) and the very same API mount (router, context, hooks) behind
// node:http, in one process, so the comparison measures only the HTTP layer. Prints one JSON line
// with both ports and a token, then serves until killed. With a node count as argument, it first
// bulk-creates that many nodes through the API (one POST /nodes with a list) and adds the time
// that took (`bulk_ms`) and one node's MAC to the line.
import { createServer } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { RecentLog } from '../../src/log.js';
import { startHead } from '../../src/serve.js';

const dataDir = mkdtempSync(join(tmpdir(), 'keel-bench-api-'));
const config = loadConfig({ file: '/dev/null', env: { KEEL_SERVER_DATA_DIR: dataDir, KEEL_SERVER_BIND: '127.0.0.1' } });
const head = await startHead({ config: { ...config, http: { ...config.http, port: 0 }, tftp: { ...config.tftp, port: 0 } }, log: pino({ level: 'silent' }), recentLog: new RecentLog(), adminPassword: 'bench-password' });

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
    void Promise.resolve(head.api.dispatch(request, { readBody })).then((reply) => {
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify(reply.payload));
    });
  });
});
await new Promise<void>((resolve) => nodeServer.listen(0, '127.0.0.1', resolve));

const login = await fetch(`http://127.0.0.1:${head.httpPort}/api/v1/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass: 'bench-password' }) });
const token = ((await login.json()) as { data: { token: { access_token: string } } }).data.token.access_token;
const nodeCount = Number(process.argv[2] ?? 0);
let bulk: { bulk_ms?: number; mac?: string } = {};
if (nodeCount > 0) {
  await fetch(`http://127.0.0.1:${head.httpPort}/api/v1/nets`, {
    method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ first_ip: '10.0.0.1', ip_count: 60000, mask_bits: 16 }),
  });
  const macs = Array.from({ length: nodeCount }, (_, i) => `52:54:00:${(i >> 16).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${head.httpPort}/api/v1/nodes`, {
    method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(macs.map((mac) => ({ mac }))),
  });
  if (res.status !== 200) throw new Error(`bulk create failed: ${res.status} ${await res.text()}`);
  bulk = { bulk_ms: performance.now() - started, mac: macs[Math.floor(nodeCount / 2)] };
}
const address = nodeServer.address();
console.log(JSON.stringify({ uws: head.httpPort, node: typeof address === 'object' && address ? address.port : 0, token, ...bulk }));
