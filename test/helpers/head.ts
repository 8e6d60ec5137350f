// Starts a real keel head (store + uWS API) in this process on a free port, with a clock the test
// can move, and logs in as the initial admin.
import type { ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { RecentLog } from '../../src/log.js';
import { startHead, type Head } from '../../src/serve.js';

export const ADMIN_PASSWORD = 'initial-secret-pw';

export interface TestHead {
  head: Head;
  base: string;
  dataDir: string;
  /** Move the head's clock forward by `seconds`. */
  advance(seconds: number): void;
  /** fetch() against the API with an optional bearer token and JSON body. */
  call(method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; json: Record<string, unknown> & { success: boolean; reason?: string; data?: unknown } }>;
  login(user?: string, pass?: string): Promise<{ access_token: string; refresh_token: string }>;
}

export async function startTestHead(t: ExecutionContext, env: Record<string, string> = {}): Promise<TestHead> {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-test-'));
  let offset = 0;
  const clock = () => Date.now() + offset;
  const config = loadConfig({
    // No default image and boot config from the host's assets (boot.assets_dir as root): a test asks for them.
    env: { KEEL_SERVER_DATA_DIR: dataDir, KEEL_SERVER_BIND: '127.0.0.1', KEEL_SERVER_NAME: 'head-test', KEEL_BOOT_ASSETS_DIR: '', ...env },
    file: '/dev/null',
  });
  // Port 0 = any free port; the config schema only accepts 1..65535, so patch the frozen copy.
  const recentLog = new RecentLog();
  const head = await startHead({
    config: { ...config, http: { ...config.http, port: 0 }, tftp: { ...config.tftp, port: 0 } },
    // Logs go to the in-memory ring only (what GET /cluster/head/<uid>/log serves), not stdout.
    log: pino({ level: 'info' }, recentLog),
    recentLog,
    adminPassword: ADMIN_PASSWORD,
    clock,
  });
  t.teardown(async () => {
    await head.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${head.httpPort}/api/v1`;
  const call: TestHead['call'] = async (method, path, options = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const body = options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(base + path, { method, headers, body });
    return { status: res.status, json: (await res.json()) as never };
  };
  return {
    head,
    base,
    dataDir,
    advance: (seconds) => {
      offset += seconds * 1000;
    },
    call,
    async login(user = 'admin', pass = ADMIN_PASSWORD) {
      const { status, json } = await call('POST', '/login', { body: { user, pass } });
      if (status !== 200) throw new Error(`login failed: ${status} ${JSON.stringify(json)}`);
      return (json.data as { token: { access_token: string; refresh_token: string } }).token;
    },
  };
}
