// A real `keel serve` process on loopback (sources under tsx), for tests that kill it with SIGKILL
// and start it again on the same data directory: what an answered write must survive.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { freePort } from './free-port.js';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const PASSWORD = 'keel-serve-test-password';

export interface ServedKeel {
  child: ChildProcess;
  /** HTTP (and TFTP) port. */
  port: number;
  /** `http://127.0.0.1:<port>/api/v1` */
  api: string;
  /** An access token of the admin `admin`. */
  token: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: { success: boolean; data?: unknown; reason?: string } }>;
  /** SIGKILL to its pid, then wait for the exit. */
  kill(): Promise<void>;
}

/** Starts keel on `dataDir` (HTTP and TFTP on one free port; `env` adds KEEL_* settings) and logs in; killed by pid at teardown. */
export async function serveKeel(t: ExecutionContext, dataDir: string, env: Record<string, string> = {}): Promise<ServedKeel> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--data-dir', dataDir, '--bind', '127.0.0.1', '--http-port', String(port), '--tftp-port', String(port)], {
    env: { ...process.env, KEEL_ADMIN_PASSWORD: PASSWORD, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!output.includes('API listening') && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (!output.includes('API listening')) throw new Error(`keel serve did not start:\n${output}`);
  const api = `http://127.0.0.1:${port}/api/v1`;
  const login = await fetch(`${api}/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass: PASSWORD }) });
  const token = ((await login.json()) as { data: { token: { access_token: string } } }).data.token.access_token;
  return {
    child, port, api, token,
    async call(method, path, body) {
      const res = await fetch(`${api}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, json: (await res.json()) as { success: boolean; data?: unknown; reason?: string } };
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
