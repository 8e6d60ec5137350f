// bench/api: wrk against GET /api/v1/admin/<name> with a token, on keel's uWS server and on
// node:http carrying the same dispatch, in one run. Server pinned to CPU 0, wrk to CPU 1.
// Usage: node --import tsx bench/api/run.ts [seconds=10] [connections=64]
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 64);
const server = spawn('taskset', ['-c', '0', process.execPath, '--import', 'tsx', new URL('servers.ts', import.meta.url).pathname], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const first = await createInterface({ input: server.stdout })[Symbol.asyncIterator]().next();
  const { uws, node, token } = JSON.parse(first.value as string) as { uws: number; node: number; token: string };

  const measure = (port: number) => {
    const url = `http://127.0.0.1:${port}/api/v1/admin/admin`;
    execFileSync('taskset', ['-c', '1', 'wrk', '-t1', '-c8', '-d2s', '-H', `Authorization: Bearer ${token}`, url]); // warm-up
    const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Authorization: Bearer ${token}`, url]).toString();
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const p99 = /99%\s+([\d.]+\w+)/.exec(out)?.[1];
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
    if (non2xx !== '0') throw new Error(`${non2xx} failed responses on port ${port}:\n${out}`);
    return { rps, p99 };
  };
  const keel = measure(uws);
  const baseline = measure(node);
  console.log(`GET /api/v1/admin/admin, ${connections} connections, ${seconds} s each, server on CPU 0, wrk on CPU 1`);
  console.log(`keel (uWS):       ${keel.rps.toFixed(0)} req/s, p99 ${keel.p99}`);
  console.log(`same on node:http: ${baseline.rps.toFixed(0)} req/s, p99 ${baseline.p99}`);
  console.log(`ratio keel/node:http: ${(keel.rps / baseline.rps).toFixed(2)}x`);
} finally {
  server.kill('SIGKILL');
}
