// Bench target: a keel head on a given port with a fresh data directory; prints one JSON line
// (port, access token, data dir) and serves until killed.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { RecentLog } from '../../src/log.js';
import { startHead } from '../../src/serve.js';

const port = Number(process.argv[2] ?? 0);
const dataDir = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'keel-bench-http-'));
const config = loadConfig({ file: '/dev/null', env: { KEEL_SERVER_DATA_DIR: dataDir, KEEL_SERVER_BIND: '127.0.0.1' } });
const head = await startHead({ config: { ...config, http: { ...config.http, port }, tftp: { ...config.tftp, port: 0 } }, log: pino({ level: process.env.KEEL_BENCH_LOG ?? 'silent' }), recentLog: new RecentLog(), adminPassword: 'bench-password' });
const login = await fetch(`http://127.0.0.1:${head.httpPort}/api/v1/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass: 'bench-password' }) });
const token = ((await login.json()) as { data: { token: { access_token: string } } }).data.token.access_token;
console.log(JSON.stringify({ port: head.httpPort, token, dataDir }));
