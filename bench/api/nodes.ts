// bench/api nodes: a head with N nodes (default 10,000, bulk-created in one POST /nodes), then
//   - GET /api/v1/node/<mac> with wrk, on keel's uWS server and on node:http carrying the same
//     dispatch (the reference), server on CPU 0, wrk on CPU 1;
//   - GET /api/v1/nodes (all N), sequential requests, median and p90 time per full response, both servers.
// Usage: node --import tsx bench/api/nodes.ts [nodes=10000] [seconds=10] [connections=64]
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const nodeCount = Number(process.argv[2] ?? 10000);
const seconds = Number(process.argv[3] ?? 10);
const connections = Number(process.argv[4] ?? 64);
const server = spawn('taskset', ['-c', '0', process.execPath, '--import', 'tsx', new URL('servers.ts', import.meta.url).pathname, String(nodeCount)], { stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const first = await createInterface({ input: server.stdout })[Symbol.asyncIterator]().next();
  const { uws, node, token, bulk_ms: bulkMs, mac } = JSON.parse(first.value as string) as { uws: number; node: number; token: string; bulk_ms: number; mac: string };
  const auth = `Authorization: Bearer ${token}`;

  const wrk = (port: number) => {
    const url = `http://127.0.0.1:${port}/api/v1/node/${mac}`;
    execFileSync('taskset', ['-c', '1', 'wrk', '-t1', '-c8', '-d2s', '-H', auth, url]); // warm-up
    const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', auth, url]).toString();
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
    if (non2xx !== '0') throw new Error(`${non2xx} failed responses on port ${port}:\n${out}`);
    return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p99: /99%\s+([\d.]+\w+)/.exec(out)?.[1] };
  };
  const list = async (port: number) => {
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 30; i++) {
      const started = performance.now();
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } });
      const body = await res.text();
      times.push(performance.now() - started);
      if (res.status !== 200) throw new Error(`GET /nodes: ${res.status}`);
      bytes = body.length;
      if (i === 0 && Object.keys((JSON.parse(body) as { data: object }).data).length !== nodeCount) throw new Error('GET /nodes: wrong count');
    }
    times.splice(0, 5); // warm-up
    times.sort((a, b) => a - b);
    return { median: times[Math.floor(times.length / 2)]!, p90: times[Math.floor(times.length * 0.9)]!, bytes };
  };

  const keelGet = wrk(uws);
  const refGet = wrk(node);
  const keelList = await list(uws);
  const refList = await list(node);
  console.log(`${nodeCount} nodes; bulk create (one POST /nodes, one transaction): ${bulkMs.toFixed(0)} ms (${(nodeCount / bulkMs * 1000).toFixed(0)} nodes/s)`);
  console.log(`GET /api/v1/node/<mac>, ${connections} connections, ${seconds} s, server CPU 0, wrk CPU 1`);
  console.log(`  keel (uWS):        ${keelGet.rps.toFixed(0)} req/s, p99 ${keelGet.p99}`);
  console.log(`  same on node:http: ${refGet.rps.toFixed(0)} req/s, p99 ${refGet.p99}`);
  console.log(`  ratio keel/node:http: ${(keelGet.rps / refGet.rps).toFixed(2)}x`);
  console.log(`GET /api/v1/nodes (${nodeCount} nodes, ${(keelList.bytes / 1e6).toFixed(1)} MB), 25 sequential requests, client fetch() on any CPU`);
  console.log(`  keel (uWS):        median ${keelList.median.toFixed(1)} ms, p90 ${keelList.p90.toFixed(1)} ms`);
  console.log(`  same on node:http: median ${refList.median.toFixed(1)} ms, p90 ${refList.p90.toFixed(1)} ms`);
  console.log(`  ratio node:http/keel: ${(refList.median / keelList.median).toFixed(2)}x`);
} finally {
  server.kill('SIGKILL');
}
