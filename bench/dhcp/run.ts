// bench/dhcp: keel's DHCP server against dnsmasq under Kea's perfdhcp, in one run, in network
// namespaces this script creates (server `srv0` 10.68.0.1/16 ⇄ client `cli0` 10.68.0.2/16 over a
// veth pair) and deletes. perfdhcp binds port 67 and acts as a relay (giaddr = 10.68.0.2).
//   proxy:          PXE DISCOVERs (option 60 PXEClient, option 93 BIOS) from 10,000 MACs at each
//                   --proxy-rates; OFFERs only. keel: proxy mode; dnsmasq: `dhcp-range=…,proxy`
//                   with a pxe-service.
//   authoritative:  full DORA from --nodes known MACs at each --dora-rates. keel: authoritative
//                   mode, every ACK after its lease is committed to LMDB; dnsmasq: one dhcp-host
//                   per node (same addresses and names), its lease file.
// Server and perfdhcp are pinned to one CPU (--cpu) with taskset, or perfdhcp to another
// (--client-cpu); tcpdump (the latency probe, on cli0) to --capture-cpu. keel runs from the sources
// under tsx, or as the shipped executable with --keel-binary dist/keel (after ./build.sh).
// Latency is request → reply on the client's wire (bench/dhcp/pcap.ts); CPU is the server's
// utime+stime over the perfdhcp run, per request received. After each authoritative run the server
// is stopped and every ACK seen on the wire is checked against its lease store (LMDB / the lease
// file): "durable" = ACKed MACs whose lease is there with the ACKed address. Each server gets the
// same warm-up before each measured run; sides alternate.
// Usage (root): node --import tsx bench/dhcp/run.ts [--runs 3] [--seconds 10] [--cpu 1] [--client-cpu 0] [--capture-cpu 0]
//   [--sections proxy,authoritative] [--proxy-rates 5000,20000] [--dora-rates 5000] [--nodes 10000] [--servers keel,dnsmasq]
//   [--cpu-prof DIR (V8 CPU profile of each keel run)] [--keel-binary dist/keel]
// Needs: kea-admin (perfdhcp), dnsmasq-base, tcpdump, iproute2.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { nodes } from '../../src/model/cluster.js';
import { LeaseStore } from '../../src/store/leases.js';
import { Store } from '../../src/store/store.js';
import { prepareCluster } from '../../test/dhcp/keel-in-netns.js';
import { BenchProcesses, waitFor, type Started } from '../processes.js';
import { exchanges, percentile, type Exchange } from './pcap.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    cpu: { type: 'string', default: '1' },
    /** perfdhcp's CPU; default: the server's (--cpu). */
    'client-cpu': { type: 'string' },
    'capture-cpu': { type: 'string', default: '0' },
    sections: { type: 'string', default: 'proxy,authoritative' },
    'proxy-rates': { type: 'string', default: '5000,20000' },
    'dora-rates': { type: 'string', default: '5000' },
    nodes: { type: 'string', default: '10000' },
    servers: { type: 'string', default: 'keel,dnsmasq' },
    /** Write a V8 CPU profile of each keel run into this directory (node --cpu-prof). */
    'cpu-prof': { type: 'string' },
    /** Run this keel executable (e.g. dist/keel from ./build.sh) instead of the sources under tsx. */
    'keel-binary': { type: 'string' },
  },
});
const runs = Number(values.runs);
const seconds = Number(values.seconds);
const cpu = values.cpu;
const captureCpu = values['capture-cpu'];
const clientCpu = values['client-cpu'] ?? cpu;
const nodeCount = Number(values.nodes);
const servers = values.servers.split(',') as ServerName[];
const CLI = new URL('../../src/main.ts', import.meta.url).pathname;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const BASE_MAC = '00:0c:01:02:00:00';
/** perfdhcp -R N -b mac=BASE_MAC sends from 00:0c:01:02:HH:LL, HHLL below N. */
const perfMac = (i: number) => `00:0c:01:02:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

type ServerName = 'keel' | 'dnsmasq';
type Section = 'proxy' | 'authoritative';

// ---- namespaces and processes, always cleaned up ----------------------------------------------

const SERVER_NS = `kbd-${process.pid}-s`;
const CLIENT_NS = `kbd-${process.pid}-c`;
const work = mkdtempSync(join(tmpdir(), 'keel-bench-dhcp-'));
const processes = new BenchProcesses();

function cleanup(): void {
  processes.killAll();
  for (const ns of [SERVER_NS, CLIENT_NS]) {
    try {
      execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    } catch {
      // not created
    }
  }
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
ip('netns', 'add', SERVER_NS);
ip('netns', 'add', CLIENT_NS);
for (const ns of [SERVER_NS, CLIENT_NS]) ip('-n', ns, 'link', 'set', 'lo', 'up');
ip('link', 'add', 'srv0', 'netns', SERVER_NS, 'type', 'veth', 'peer', 'name', 'cli0', 'netns', CLIENT_NS);
ip('-n', SERVER_NS, 'addr', 'add', '10.68.0.1/16', 'dev', 'srv0');
ip('-n', CLIENT_NS, 'addr', 'add', '10.68.0.2/16', 'dev', 'cli0');
ip('-n', SERVER_NS, 'link', 'set', 'srv0', 'up');
ip('-n', CLIENT_NS, 'link', 'set', 'cli0', 'up');

/** `ip netns exec NS taskset -c CPU command…`: each execs the next, so the pid is the command's. */
function start(ns: string, onCpu: string, command: string, args: string[], env?: NodeJS.ProcessEnv): Started {
  return processes.start(['ip', 'netns', 'exec', ns, 'taskset', '-c', onCpu, command, ...args], 20_000, env);
}

const stop = (started: Started, signal?: NodeJS.Signals) => processes.stop(started, signal);

/** utime + stime of all the process's threads, seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

// ---- the two servers -----------------------------------------------------------------------------

const templates = new Map<Section, string>();
let nodeTable: { mac: string; ip: string; name: string }[] = [];

async function prepareTemplates(sections: Section[]): Promise<void> {
  const network = { name: 'bench', first_ip: '10.68.1.1', ip_count: nodeCount, mask_bits: 16, router_ip: '10.68.0.254', domain: 'bench.example', lease_time: 3600 };
  if (sections.includes('proxy')) {
    const dir = join(work, 'template-proxy');
    await prepareCluster(dir, { network: { ...network, dhcp_mode: 'proxy' } });
    templates.set('proxy', dir);
  }
  if (sections.includes('authoritative')) {
    const dir = join(work, 'template-authoritative');
    await prepareCluster(dir, { network: { ...network, dhcp_mode: 'authoritative' }, macs: Array.from({ length: nodeCount }, (_, i) => perfMac(i)) });
    const store = new Store({ dataDir: dir, headName: 'bench' });
    nodeTable = nodes(store).list().map((node) => ({ mac: node.mac as string, ip: node.ip as string, name: String(node.name) }));
    await store.close();
    templates.set('authoritative', dir);
  }
}

interface RunningServer {
  name: ServerName;
  process: Started;
  /** Stops the server and says which ACKed leases it has on disk. */
  stopAndReadLeases(): Promise<Map<string, string>>;
}

async function startKeel(section: Section, runDir: string): Promise<RunningServer> {
  const dataDir = join(runDir, 'keel');
  cpSync(templates.get(section)!, dataDir, { recursive: true });
  const profile = values['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']];
  const serveArgs = ['serve', '--data-dir', dataDir, '--bind', '0.0.0.0', '--http-port', '8080', '--tftp-port', '6969', '--dhcp-interface', 'srv0', '--log-level', 'info'];
  const binary = values['keel-binary'];
  if (binary !== undefined && profile.length > 0) throw new Error('--cpu-prof profiles keel from source; drop --keel-binary');
  const [command, args] = binary === undefined
    ? [process.execPath, [...profile, '--import', 'tsx', CLI, ...serveArgs]]
    : [binary, serveArgs];
  const keel = start(SERVER_NS, cpu, command, args, { ...process.env, KEEL_ADMIN_PASSWORD: 'bench-password', KEEL_LOG_FORMAT: 'json' });
  let listening = false;
  createInterface({ input: keel.child.stdout! }).on('line', (line) => {
    if (line.includes('DHCP listening')) listening = true;
  });
  await waitFor(`keel to listen: ${keel.output()}`, () => listening || keel.child.exitCode !== null);
  if (!listening) throw new Error(`keel exited: ${keel.output()}`);
  return {
    name: 'keel',
    process: keel,
    async stopAndReadLeases() {
      await stop(keel);
      const store = new Store({ dataDir, headName: 'bench-check' });
      try {
        return new Map(new LeaseStore(store).list().map((lease) => [lease.mac, lease.ip]));
      } finally {
        await store.close();
      }
    },
  };
}

async function startDnsmasq(section: Section, runDir: string): Promise<RunningServer> {
  const leaseFile = join(runDir, 'dnsmasq.leases');
  const logFile = join(runDir, 'dnsmasq.log');
  const config = join(runDir, 'dnsmasq.conf');
  const lines = ['port=0', 'interface=srv0', 'bind-interfaces', `dhcp-leasefile=${leaseFile}`, 'quiet-dhcp'];
  if (section === 'proxy') {
    lines.push('dhcp-range=10.68.0.0,proxy,255.255.0.0', 'pxe-service=x86PC,"keel",undionly');
  } else {
    const hosts = join(runDir, 'dnsmasq.hosts');
    writeFileSync(hosts, nodeTable.map((node) => `${node.mac},${node.ip},${node.name}\n`).join(''));
    // Same answer as keel's: the node's fixed address, router, domain, name, 1 h lease. no-ping:
    // keel does not probe an address before offering it either.
    lines.push('dhcp-range=10.68.0.0,static,255.255.0.0,1h', `dhcp-hostsfile=${hosts}`, 'dhcp-authoritative', 'no-ping',
      'dhcp-option=3,10.68.0.254', 'domain=bench.example');
  }
  writeFileSync(config, `${lines.join('\n')}\n`);
  writeFileSync(logFile, '');
  const dnsmasq = start(SERVER_NS, cpu, 'dnsmasq', ['--keep-in-foreground', `--conf-file=${config}`, `--log-facility=${logFile}`, '--user=root', `--pid-file=${join(runDir, 'dnsmasq.pid')}`]);
  await waitFor('dnsmasq to bind', () => readFileSync(logFile, 'utf8').includes('sockets bound exclusively') || dnsmasq.child.exitCode !== null);
  if (dnsmasq.child.exitCode !== null) throw new Error(`dnsmasq exited: ${dnsmasq.output()} ${readFileSync(logFile, 'utf8')}`);
  return {
    name: 'dnsmasq',
    process: dnsmasq,
    async stopAndReadLeases() {
      await stop(dnsmasq);
      // `<expiry> <mac> <ip> <hostname> <client-id>` per line.
      let text = '';
      try {
        text = readFileSync(leaseFile, 'utf8');
      } catch {
        // no lease written
      }
      return new Map(text.split('\n').filter(Boolean).map((line) => {
        const [, mac, address] = line.split(' ');
        return [mac!, address!];
      }));
    },
  };
}

// ---- one measured run -------------------------------------------------------------------------------

function perfdhcpArgs(section: Section, rate: number, period: number, clients: number): string[] {
  const common = ['-4', '-l', 'cli0', '-R', String(clients), '-b', `mac=${BASE_MAC}`, '-r', String(rate), '-p', String(period)];
  // Proxy: a BIOS PXE client's DISCOVER (option 60 PXEClient, option 93 arch 0; dnsmasq's
  // pxe-service needs the latter), OFFER only (-i).
  return section === 'proxy' ? [...common, '-i', '-o', '60,505845436c69656e74', '-o', '93,0000'] : common;
}

async function perfdhcp(args: string[]): Promise<string> {
  const run = start(CLIENT_NS, clientCpu, 'perfdhcp', args);
  await run.exited;
  return run.output();
}

interface Measured {
  requests: number;
  answered: number;
  /** Answered per second of the perfdhcp period (authoritative: ACKs, i.e. completed DORAs). */
  answeredPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  cpuPercent: number;
  cpuMicrosPerRequest: number;
  /** Authoritative: ACKed MACs whose lease is on disk with the ACKed address, of all ACKed MACs. */
  durable?: { ok: number; of: number };
  captureDrops: string;
}

async function measure(section: Section, server: ServerName, rate: number, runDir: string): Promise<Measured> {
  const running = server === 'keel' ? await startKeel(section, runDir) : await startDnsmasq(section, runDir);
  const clients = section === 'proxy' ? 10_000 : nodeCount;
  // Warm-up. Proxy: 2 s at the measured rate, so that the measured run sees keel's steady state
  // (a cold process spends its first ~0.75 s at 20,000/s compiling hot code, and the queue built
  // meanwhile dominates the p99 of a 10 s run; dnsmasq has nothing to warm). Authoritative: 1 s at
  // up to 1,000/s, so that most MACs make their first DORA in the measured run.
  if (section === 'proxy') await perfdhcp(perfdhcpArgs(section, rate, 2, clients));
  else await perfdhcp(perfdhcpArgs(section, Math.min(rate, 1000), 1, clients));
  const pcapFile = join(runDir, `${server}.pcap`);
  const capture = start(CLIENT_NS, captureCpu, 'tcpdump', ['-i', 'cli0', '-n', '-B', '65536', '-s', '1500', '-w', pcapFile, 'udp port 67']);
  await waitFor('tcpdump', () => capture.output().includes('listening on'));
  const pid = running.process.child.pid!;
  const cpuBefore = cpuSeconds(pid);
  await perfdhcp(perfdhcpArgs(section, rate, seconds, clients));
  const cpuUsed = cpuSeconds(pid) - cpuBefore;
  await new Promise((resolve) => setTimeout(resolve, 1000)); // replies to the last requests (an ACK waits for its commit)
  await stop(capture);
  const captureDrops = /(\d+) packets dropped by kernel/.exec(capture.output())?.[1] ?? '?';
  const leases = await running.stopAndReadLeases();

  const wanted: Exchange['kind'] = section === 'proxy' ? 'offer' : 'ack';
  const all = exchanges(pcapFile);
  const mine = all.filter((exchange) => exchange.kind === wanted);
  const answered = mine.filter((exchange) => exchange.latencyMs !== undefined && !exchange.nak);
  const latencies = mine.flatMap((exchange) => (exchange.latencyMs === undefined ? [] : [exchange.latencyMs])).sort((a, b) => a - b);
  const result: Measured = {
    requests: all.length,
    answered: answered.length,
    answeredPerSecond: answered.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? Number.NaN,
    cpuPercent: (cpuUsed / seconds) * 100,
    cpuMicrosPerRequest: (cpuUsed * 1e6) / Math.max(1, all.length),
    captureDrops,
  };
  if (section === 'authoritative') {
    const acked = new Map(answered.map((exchange) => [exchange.mac, exchange.address!]));
    let ok = 0;
    for (const [mac, address] of acked) if (leases.get(mac) === address) ok += 1;
    result.durable = { ok, of: acked.size };
  }
  return result;
}

// ---- the report ---------------------------------------------------------------------------------

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const sections = values.sections.split(',') as Section[];
  await prepareTemplates(sections);
  console.log(`keel ${values['keel-binary'] ?? 'from source (tsx)'}; server on CPU ${cpu}, perfdhcp on CPU ${clientCpu}, tcpdump on CPU ${captureCpu}; ${seconds} s per run, medians of ${runs}; load average ${load()}`);
  for (const section of sections) {
    const rates = (section === 'proxy' ? values['proxy-rates'] : values['dora-rates']).split(',').map(Number);
    for (const rate of rates) {
      const results = new Map<ServerName, Measured[]>(servers.map((name) => [name, []]));
      for (let run = 0; run < runs; run++) {
        const order = run % 2 === 0 ? servers : [...servers].reverse();
        for (const server of order) {
          const runDir = mkdtempSync(join(work, `${section}-${rate}-${server}-`));
          const measured = await measure(section, server, rate, runDir);
          results.get(server)!.push(measured);
          rmSync(runDir, { recursive: true, force: true });
          console.log(`  ${section} ${rate}/s ${server} run ${run + 1}: ${JSON.stringify(measured, (_, v: unknown) => (typeof v === 'number' ? Math.round(v * 1000) / 1000 : v))} load ${load()}`);
        }
      }
      console.log(`\n### ${section}, offered ${rate}/s (load average ${load()})`);
      console.log('| server | requests | answered/s | p50 ms | p99 ms | max ms | CPU % | CPU µs/request | durable |');
      console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
      for (const [server, list] of results) {
        const m = (pick: (x: Measured) => number, digits = 2) => median(list.map(pick)).toFixed(digits);
        const durable = list.every((x) => x.durable) ? list.map((x) => `${x.durable!.ok}/${x.durable!.of}`).join(', ') : '';
        console.log(`| ${server} | ${m((x) => x.requests, 0)} | ${m((x) => x.answeredPerSecond, 0)} | ${m((x) => x.p50, 3)} | ${m((x) => x.p99, 3)} | ${m((x) => x.max, 1)} | ${m((x) => x.cpuPercent, 0)} | ${m((x) => x.cpuMicrosPerRequest, 1)} | ${durable} |`);
      }
      const keel = results.get('keel');
      const dnsmasq = results.get('dnsmasq');
      if (keel?.length && dnsmasq?.length) {
        const ratio = (pick: (x: Measured) => number) => (median(keel.map(pick)) / median(dnsmasq.map(pick))).toFixed(2);
        console.log(`keel/dnsmasq: p99 ${ratio((x) => x.p99)}×, CPU per request ${ratio((x) => x.cpuMicrosPerRequest)}×, answered/s ${ratio((x) => x.answeredPerSecond)}×\n`);
      }
    }
  }
}

await main();
