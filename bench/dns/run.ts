// bench/dns: keel's DNS server against dnsmasq, in one run, on loopback, answering the same names:
// --nodes nodes `n<i>.cluster.local` (keel: nodes of a /16 network in its store, as the API makes
// them; dnsmasq: the same names and addresses in a hosts file, with --local=/cluster.local/ so it
// answers them itself and never forwards — authoritative-style). The query mix: 80% A of existing
// names, 10% PTR of their addresses, 10% A of names that do not exist (NXDOMAIN).
// Each server is pinned to --cpu with taskset, dnsperf to --client-cpu. Two measurements per run,
// the servers alternating, each after a 2 s warm-up:
//   throughput: dnsperf with --outstanding queries in flight for --seconds: queries/s answered;
//   latency:    dnsperf at a fixed --rate (below both servers' maximum) with -v: p50/p99 of each
//               query's latency as dnsperf measures it.
// keel runs from the sources under tsx (bench/dns/keel-dns.ts: the DnsServer serve.ts starts, alone).
// Usage: node --import tsx bench/dns/run.ts [--runs 3] [--seconds 10] [--nodes 10000] [--cpu 1]
//   [--client-cpu 0] [--outstanding 100] [--rate 5000] [--servers keel,dnsmasq] [--cpu-prof DIR]
// Needs: dnsperf, dnsmasq, util-linux (taskset).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodes } from '../../src/model/cluster.js';
import { Store } from '../../src/store/store.js';
import { prepareCluster } from '../../test/dhcp/keel-in-netns.js';
import { BenchProcesses, waitFor, type Started } from '../processes.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    nodes: { type: 'string', default: '10000' },
    cpu: { type: 'string', default: '1' },
    'client-cpu': { type: 'string', default: '0' },
    outstanding: { type: 'string', default: '100' },
    rate: { type: 'string', default: '5000' },
    servers: { type: 'string', default: 'keel,dnsmasq' },
    'cpu-prof': { type: 'string' },
  },
});
const runs = Number(values.runs);
const seconds = Number(values.seconds);
const nodeCount = Number(values.nodes);
const servers = values.servers.split(',') as ServerName[];
type ServerName = 'keel' | 'dnsmasq';
const KEEL_PORT = 25353;
const DNSMASQ_PORT = 25354;

const work = mkdtempSync(join(tmpdir(), 'keel-bench-dns-'));
const processes = new BenchProcesses();
function cleanup(): void {
  processes.killAll();
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

/** `taskset -c CPU command…` (taskset execs the command: the pid is the command's). */
function start(onCpu: string, command: string, args: string[]): Started {
  return processes.start(['taskset', '-c', onCpu, command, ...args], 20_000_000);
}

const stop = (started: Started, signal?: NodeJS.Signals) => processes.stop(started, signal);

// ---- the names: keel's store and dnsmasq's hosts file -----------------------------------------

const dataDir = join(work, 'keel');
const macs = Array.from({ length: nodeCount }, (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`);
await prepareCluster(dataDir, { network: { name: 'bench', first_ip: '10.77.0.1', ip_count: 65000, mask_bits: 16, domain: 'cluster.local' }, macs });
const hosts: { name: string; ip: string }[] = [];
{
  const store = new Store({ dataDir, headName: 'bench-dns' });
  for (const node of nodes(store).list()) hosts.push({ name: `${String(node.name)}.cluster.local`, ip: String(node.ip) });
  await store.close();
}
if (hosts.length !== nodeCount) throw new Error(`${hosts.length} nodes in the store, ${nodeCount} asked`);
writeFileSync(join(work, 'hosts'), hosts.map((host) => `${host.ip} ${host.name}\n`).join(''));
const reverse = (ip: string) => `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
const queries: string[] = [];
for (let i = 0; i < 20_000; i++) {
  const host = hosts[(i * 7919) % hosts.length]!;
  const kind = i % 10;
  queries.push(kind < 8 ? `${host.name} A` : kind === 8 ? `${reverse(host.ip)} PTR` : `absent${i}.cluster.local A`);
}
writeFileSync(join(work, 'queries'), queries.join('\n') + '\n');

// ---- servers ----------------------------------------------------------------------------------

async function startServer(name: ServerName): Promise<Started> {
  if (name === 'dnsmasq') {
    const dnsmasq = start(values.cpu, 'dnsmasq', [
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', `--addn-hosts=${join(work, 'hosts')}`,
      '--local=/cluster.local/', '--local=/77.10.in-addr.arpa/', '--listen-address=127.0.0.1', '--bind-interfaces',
      `--port=${DNSMASQ_PORT}`, '--user=root', '--pid-file=', '--log-facility=-',
    ]);
    await waitFor('dnsmasq', () => answers(DNSMASQ_PORT) || dnsmasq.child.exitCode !== null);
    if (dnsmasq.child.exitCode !== null) throw new Error(`dnsmasq exited: ${dnsmasq.output()}`);
    return dnsmasq;
  }
  // One profile per thread (tsx's loader runs in a worker), named by node with pid and thread id.
  const prof = values['cpu-prof'] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`];
  const keel = start(values.cpu, process.execPath, [...prof, '--import', 'tsx', new URL('./keel-dns.ts', import.meta.url).pathname, dataDir, String(KEEL_PORT)]);
  await waitFor('keel', () => keel.output().includes('"ready"') || keel.child.exitCode !== null);
  if (keel.child.exitCode !== null) throw new Error(`keel exited: ${keel.output()}`);
  return keel;
}

function answers(port: number): boolean {
  try {
    return execFileSync('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=1', '+short', hosts[0]!.name, 'A']).toString().trim() === hosts[0]!.ip;
  } catch {
    return false;
  }
}

// ---- dnsperf ----------------------------------------------------------------------------------

interface Measured {
  qps: number;
  lost: number;
  p50Micros: number;
  p99Micros: number;
  latencyQueries: number;
}

function dnsperf(port: number, args: string[], runSeconds: number): string {
  return execFileSync('taskset', ['-c', values['client-cpu'], 'dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', join(work, 'queries'), '-l', String(runSeconds), '-T', '1', '-c', '1', ...args],
    { maxBuffer: 1 << 30, timeout: (runSeconds + 30) * 1000 }).toString();
}

function measure(port: number): Measured {
  dnsperf(port, ['-q', values.outstanding], 2); // warm-up
  const throughput = dnsperf(port, ['-q', values.outstanding], seconds);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(throughput)?.[1]);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(throughput)?.[1]);
  // -v: one line per query, e.g. "> NOERROR n1.cluster.local A 0.000123" (latency in seconds last).
  const verbose = dnsperf(port, ['-Q', values.rate, '-q', values.outstanding, '-v'], seconds);
  const latencies = verbose.split('\n').filter((line) => line.startsWith('> ')).map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)) * 1e6).sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return { qps, lost, p50Micros: at(0.5), p99Micros: at(0.99), latencyQueries: latencies.length };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`bench/dns: ${nodeCount} names, ${runs} runs × ${seconds} s, server on CPU ${values.cpu}, dnsperf on CPU ${values['client-cpu']}, ${values.outstanding} outstanding; latency at ${values.rate} q/s; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const results = new Map<ServerName, Measured[]>();
for (let run = 1; run <= runs; run++) {
  for (const name of run % 2 === 1 ? servers : [...servers].reverse()) {
    const server = await startServer(name);
    const measured = measure(name === 'keel' ? KEEL_PORT : DNSMASQ_PORT);
    await stop(server);
    results.set(name, [...(results.get(name) ?? []), measured]);
    console.log(`run ${run} ${name.padEnd(7)} ${measured.qps.toFixed(0).padStart(7)} q/s (lost ${measured.lost}); at ${values.rate} q/s: p50 ${measured.p50Micros.toFixed(0)} µs, p99 ${measured.p99Micros.toFixed(0)} µs (${measured.latencyQueries} queries); load ${loadavg()[0]!.toFixed(2)}`);
  }
}
for (const [name, list] of results) {
  console.log(`${name.padEnd(7)} median: ${median(list.map((m) => m.qps)).toFixed(0)} q/s, p50 ${median(list.map((m) => m.p50Micros)).toFixed(0)} µs, p99 ${median(list.map((m) => m.p99Micros)).toFixed(0)} µs`);
}
const keel = results.get('keel');
const dnsmasq = results.get('dnsmasq');
if (keel && dnsmasq) {
  const ratio = (pick: (m: Measured) => number) => (median(keel.map(pick)) / median(dnsmasq.map(pick))).toFixed(2);
  console.log(`keel/dnsmasq: queries/s ${ratio((m) => m.qps)}× (goal ≥ 1.0), p99 ${ratio((m) => m.p99Micros)}× (lower is better)`);
}
