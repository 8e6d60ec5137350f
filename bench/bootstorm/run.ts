// bench/bootstorm: N machines network-booting at once (bench/bootstorm/generator.ts) against
// (a) keel and (b) the classic stack — dnsmasq (DHCP + TFTP) and nginx (HTTP) serving the same
// files — in one run, and a loopback ceiling (nginx, one curl stream of a 1 GiB file over the same
// veth) measured in the same run, so that each result reads as a fraction of what the wire and the
// CPU allow for the bytes moved.
//
// Namespaces this script creates and deletes: the server `…-s` (srv0 10.68.0.1/16) and the client
// `…-c` (cli0 10.68.0.2/16, the relay address 10.69.0.1 and every node's address 10.69.x.y/32); the
// server routes 10.69.0.0/16 via 10.68.0.2. Server (keel, or dnsmasq + nginx's one worker) on
// --server-cpu, the generator on --client-cpu (taskset), each with the bench's own file-descriptor
// limit (20,000 here; a node holds at most 1 + --in-flight sockets at once).
// --loss P drops P % of the packets arriving in each namespace (nftables, prerouting): both
// directions, and never a send error.
//
// Files: the default image (test/e2e/assets.ts builds it into .cache/images; copied under its lock)
// when present, else synthetic files of the documented sizes (images/README.md), or --synthetic.
// keel gets them as DefaultImage/DefaultBoot (keel init's path) and serves ipxe.efi from Debian's
// ipxe package; the stack gets the same ipxe.efi, kernel, initramfs, and keel's chunk layout of the
// image (manifest + /boot/chunks/<sha256>) as static files, and per-node iPXE scripts like keel's.
//
//   npm run bench:bootstorm -- --nodes N [--arrival all|ramp] [--ramp-seconds 30] [--loss 0.5]
//     [--servers keel,stack] [--server-cpu 1] [--client-cpu 0] [--in-flight 4] [--timeout 900]
//     [--keel-bundle FILE | --keel-binary dist/keel | --keel-source] [--cpu-prof DIR] [--assets DIR | --synthetic] [--no-record]
// keel runs as `node dist/keel.cjs` (npm run build's bundle, what the single binary carries) by
// default; --keel-source runs src/main.ts under tsx, --keel-binary the SEA executable.
// Prints a table per run, writes the plot (bench/bootstorm/results/nodes-N[-ramp][-loss].png), appends
// the table to bench/RESULTS.md (unless --no-record), and ends with the line
//   bootstorm nodes=N keel_s=… stack_s=… ratio=… keel_failures=… stack_failures=…
// Needs (root): iproute2, nftables, dnsmasq, nginx, curl, gnuplot (Debian gnuplot-nox), util-linux.
import { execFileSync } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { once } from 'node:events';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodes as clusterNodes } from '../../src/model/cluster.js';
import { ensureDefaultObjects } from '../../src/model/default-objects.js';
import { Model } from '../../src/model/model.js';
import { Store } from '../../src/store/store.js';
import { ASSETS_DIR } from '../../test/e2e/assets.js';
import { prepareCluster } from '../../test/dhcp/keel-in-netns.js';
import { BenchProcesses, waitFor, type Started } from '../processes.js';
import { PHASES, type GeneratorConfig, type GeneratorResult, type NodeResult, type Phase } from './generator.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '100' },
    arrival: { type: 'string', default: 'all' },
    'ramp-seconds': { type: 'string', default: '30' },
    loss: { type: 'string', default: '0' },
    servers: { type: 'string', default: 'keel,stack' },
    'server-cpu': { type: 'string', default: '1' },
    'client-cpu': { type: 'string', default: '0' },
    'in-flight': { type: 'string', default: '4' },
    'boot-attempts': { type: 'string', default: '3' },
    /** Hard limit per storm, seconds: nodes not booted by then are failures. */
    timeout: { type: 'string', default: '900' },
    /** The bundle to run (default dist/keel.cjs): e.g. one built from a clean checkout while the tree is being edited. */
    'keel-bundle': { type: 'string' },
    /** The shipped executable (./build.sh) instead of the bundle. */
    'keel-binary': { type: 'string' },
    /** keel from the sources under tsx instead of the bundle. */
    'keel-source': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    /** A directory with vmlinuz, initramfs.img and rootfs.squashfs to use instead of .cache/images. */
    assets: { type: 'string' },
    synthetic: { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
  },
});
const nodeCount = Number(values.nodes);
const arrival = values.arrival as GeneratorConfig['arrival'];
if (arrival !== 'all' && arrival !== 'ramp') throw new Error('--arrival is all or ramp');
const lossPercent = Number(values.loss);
const servers = values.servers.split(',') as ServerName[];
const serverCpu = values['server-cpu'];
const clientCpu = values['client-cpu'];
const timeoutSeconds = Number(values.timeout);
type ServerName = 'keel' | 'stack';

const REPO = new URL('../..', import.meta.url).pathname;
const CLI = join(REPO, 'src', 'main.ts');
/** `npm run build`'s bundle: what the single binary runs, without tsx's per-closure work. */
const BUNDLE = values['keel-bundle'] ?? join(REPO, 'dist', 'keel.cjs');
const GENERATOR = join(REPO, 'bench', 'bootstorm', 'generator.ts');
const RESULTS_DIR = join(REPO, 'bench', 'bootstorm', 'results');
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
const SERVER_ADDRESS = '10.68.0.1';
const CLIENT_ADDRESS = '10.68.0.2';
const RELAY_ADDRESS = '10.69.0.1';
const HTTP_PORT = 8080;
const BASE = `http://${SERVER_ADDRESS}:${HTTP_PORT}`;
const IPXE_EFI = '/usr/lib/ipxe/ipxe.efi';
/** By path: under `npm run`, node_modules/.bin comes first in PATH, and @vercel/nft installs an `nft` there. */
const NFT = '/usr/sbin/nft';
/** images/README.md: the default image's files. */
const SYNTHETIC_SIZES = { vmlinuz: 7.9e6, 'initramfs.img': 1.4e6, 'rootfs.squashfs': 31e6 };
const CEILING_FILE_BYTES = 1 << 30;
const MiB = 1 << 20;

// ---- namespaces and processes, always cleaned up ----------------------------------------------

const SERVER_NS = `kbs-${process.pid}-s`;
const CLIENT_NS = `kbs-${process.pid}-c`;
const work = mkdtempSync(join(tmpdir(), 'keel-bench-bootstorm-'));
chmodSync(work, 0o755);
const processes = new BenchProcesses();

/** `ip -batch`: one command a line, in `namespace` if given; `force` goes on past a failing line. */
function ipBatch(lines: string[], namespace?: string, force = false): void {
  const args = [...(namespace === undefined ? [] : ['-n', namespace]), ...(force ? ['-force'] : []), '-batch', '-'];
  execFileSync('ip', args, { input: `${lines.join('\n')}\n`, stdio: ['pipe', 'ignore', force ? 'ignore' : 'inherit'] });
}

function cleanup(): void {
  processes.killAll();
  try {
    ipBatch([`netns delete ${SERVER_NS}`, `netns delete ${CLIENT_NS}`], undefined, true);
  } catch {
    // neither was created
  }
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

function makeNamespaces(nodeAddresses: string[]): void {
  ipBatch([`netns add ${SERVER_NS}`, `netns add ${CLIENT_NS}`, `link add srv0 netns ${SERVER_NS} type veth peer name cli0 netns ${CLIENT_NS}`]);
  ipBatch(['link set lo up', `addr add ${SERVER_ADDRESS}/16 dev srv0`, 'link set srv0 up', `route add 10.69.0.0/16 via ${CLIENT_ADDRESS}`], SERVER_NS);
  ipBatch(['link set lo up', `addr add ${CLIENT_ADDRESS}/16 dev cli0`, ...[RELAY_ADDRESS, ...nodeAddresses].map((address) => `addr add ${address}/32 dev cli0`), 'link set cli0 up'], CLIENT_NS);
  if (lossPercent > 0) {
    // Per 100,000 packets arriving in each namespace; at prerouting, so a drop is never a send error.
    const perHundredThousand = Math.round(lossPercent * 1000);
    for (const ns of [SERVER_NS, CLIENT_NS]) {
      execFileSync('ip', ['netns', 'exec', ns, NFT, '-f', '-'], {
        input: `table ip bootstorm_loss {\n  chain prerouting {\n    type filter hook prerouting priority -300; policy accept;\n    numgen random mod 100000 < ${perHundredThousand} counter drop\n  }\n}\n`,
      });
    }
  }
}

/** Packets the loss rules dropped in a namespace (0 without --loss). */
function lossDrops(ns: string): number {
  if (lossPercent === 0) return 0;
  const text = execFileSync('ip', ['netns', 'exec', ns, NFT, 'list', 'table', 'ip', 'bootstorm_loss']).toString();
  return Number(/counter packets (\d+)/.exec(text)?.[1] ?? 0);
}

/** `ip netns exec NS taskset -c CPU command…`: each execs the next, so the pid is the command's. */
function start(ns: string, onCpu: string, argv: string[], env?: NodeJS.ProcessEnv): Started {
  return processes.start(['ip', 'netns', 'exec', ns, 'taskset', '-c', onCpu, ...argv], 20_000, env);
}

async function stopGracefully(started: Started): Promise<void> {
  const kill = setTimeout(() => started.child.kill('SIGKILL'), 15_000);
  await processes.stop(started);
  clearTimeout(kill);
}

function inNamespace(ns: string, command: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, command, ...args], { maxBuffer: 64 << 20, timeout: 120_000 }).toString();
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function statusKb(pid: number, field: string): number {
  try {
    return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

// ---- the files ------------------------------------------------------------------------------------

interface Files {
  dir: string;
  origin: string;
}

async function prepareFiles(): Promise<Files> {
  const dir = join(work, 'assets');
  mkdirSync(dir);
  const names = Object.keys(SYNTHETIC_SIZES) as (keyof typeof SYNTHETIC_SIZES)[];
  if (values.assets !== undefined) {
    execFileSync('cp', [...names.map((name) => join(values.assets!, name)), dir]);
    return { dir, origin: `the files in ${values.assets}` };
  }
  if (!values.synthetic && names.every((name) => existsSync(join(ASSETS_DIR, name)))) {
    // Under build.sh's lock: another engineer's test may be rebuilding the image right now.
    execFileSync('flock', ['-s', join(ASSETS_DIR, '.lock'), 'cp', ...names.map((name) => join(ASSETS_DIR, name)), dir]);
    return { dir, origin: `the default image (${ASSETS_DIR})` };
  }
  for (const name of names) {
    // Pseudo-random, so that no chunk deduplicates against another.
    const out = createWriteStream(join(dir, name));
    let left = Math.round(SYNTHETIC_SIZES[name]);
    let seed = name.length;
    while (left > 0) {
      const piece = Buffer.allocUnsafe(Math.min(MiB, left));
      for (let i = 0; i + 4 <= piece.length; i += 4) {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        piece.writeUInt32LE(seed, i);
      }
      if (!out.write(piece)) await once(out, 'drain');
      left -= piece.length;
    }
    out.end();
    await once(out, 'finish');
  }
  return { dir, origin: 'synthetic files of the default image\'s sizes (images/README.md)' };
}

// ---- keel -----------------------------------------------------------------------------------------

interface NodeEntry {
  mac: string;
  ip: string;
}

const macOf = (i: number) => `52:54:${(0x10 + (i >> 16)).toString(16).padStart(2, '0')}:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;

/** A keel data directory: the storm's network (authoritative), DefaultImage/DefaultBoot from the files, the nodes. */
async function prepareKeelTemplate(files: Files): Promise<{ dir: string; nodes: NodeEntry[] }> {
  const dir = join(work, 'keel-template');
  await prepareCluster(dir, {
    network: { name: 'storm', first_ip: '10.69.0.10', ip_count: nodeCount, mask_bits: 16, router_ip: RELAY_ADDRESS, domain: 'storm.example', lease_time: 3600, dhcp_mode: 'authoritative' },
  });
  const store = new Store({ dataDir: dir, headName: 'bootstorm' });
  try {
    const model = new Model(store, { dataDir: dir });
    // Before the nodes: a node created while DefaultBoot exists gets it as its _boot_config.
    await ensureDefaultObjects(model, files.dir, 'bench');
    const macs = Array.from({ length: nodeCount }, (_, i) => macOf(i));
    for (let i = 0; i < macs.length; i += 1000) await model.nodes.createMany('bench', macs.slice(i, i + 1000).map((mac) => ({ mac })));
    const table = new Map(clusterNodes(store).list().map((node) => [node.mac as string, node.ip as string]));
    return { dir, nodes: macs.map((mac) => ({ mac, ip: table.get(mac)! })) };
  } finally {
    await store.close();
  }
}

interface RunningServer {
  /** Processes whose CPU is the server's. */
  pids: () => number[];
  stop: () => Promise<void>;
}

async function startKeel(template: string): Promise<RunningServer & { pid: number }> {
  const dataDir = join(work, 'keel');
  rmSync(dataDir, { recursive: true, force: true });
  execFileSync('cp', ['-a', template, dataDir]);
  const serveArgs = ['serve', '--data-dir', dataDir, '--bind', '0.0.0.0', '--http-port', String(HTTP_PORT), '--tftp-port', '69', '--dhcp-interface', 'srv0', '--log-level', 'info'];
  const profile = values['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']];
  const binary = values['keel-binary'];
  if (binary !== undefined && profile.length > 0) throw new Error('--cpu-prof profiles keel under node; drop --keel-binary');
  const argv = binary !== undefined ? [binary, ...serveArgs]
    : values['keel-source'] ? [process.execPath, ...profile, '--import', 'tsx', CLI, ...serveArgs]
      : [process.execPath, ...profile, BUNDLE, ...serveArgs];
  const keel = start(SERVER_NS, serverCpu, argv, { ...process.env, KEEL_ADMIN_PASSWORD: 'bench-password', KEEL_LOG_FORMAT: 'json' });
  await waitFor(`keel to listen: ${keel.output()}`, () => keel.output().includes('DHCP listening') || keel.child.exitCode !== null, 120_000);
  if (keel.child.exitCode !== null) throw new Error(`keel exited: ${keel.output()}`);
  return { pid: keel.child.pid!, pids: () => [keel.child.pid!], stop: () => stopGracefully(keel) };
}

// ---- the stack: dnsmasq (DHCP + TFTP) and nginx ------------------------------------------------------

/** The script keel gives a node, for the stack's files. */
function stackScript(mac: string): string {
  return ['#!ipxe', 'echo booting DefaultBoot (rwram)',
    `kernel ${BASE}/vmlinuz initrd=initrd.img console=tty0 console=ttyS0,115200n8 keel.image=${BASE}/boot/image/default keel.root=rwram keel.fetch=chunks BOOTIF=01-${mac.replaceAll(':', '-')}`,
    `initrd --name initrd.img ${BASE}/initramfs.img`, 'boot', ''].join('\n');
}

interface Manifest {
  size: number;
  chunk_size: number;
  chunks: string[];
}

/** The stack's tree: ipxe.efi for TFTP; scripts, kernel, initramfs, keel's manifest and chunks for nginx. */
async function prepareStackTree(files: Files, nodes: NodeEntry[], manifestText: string): Promise<string> {
  const root = join(work, 'stack');
  for (const sub of ['tftp', 'www/boot/image/default', 'www/boot/chunks', 'www/nodes']) mkdirSync(join(root, sub), { recursive: true });
  copyFileSync(IPXE_EFI, join(root, 'tftp', 'ipxe.efi'));
  copyFileSync(join(files.dir, 'vmlinuz'), join(root, 'www', 'vmlinuz'));
  copyFileSync(join(files.dir, 'initramfs.img'), join(root, 'www', 'initramfs.img'));
  for (const node of nodes) writeFileSync(join(root, 'www', 'nodes', `${node.mac.replaceAll(':', '-')}.ipxe`), stackScript(node.mac));
  writeFileSync(join(root, 'www', 'boot', 'image', 'default', 'manifest'), manifestText);
  const manifest = JSON.parse(manifestText) as Manifest;
  const image = readFileSync(join(files.dir, 'rootfs.squashfs'));
  if (image.length !== manifest.size) throw new Error(`keel's manifest says ${manifest.size} bytes, rootfs.squashfs has ${image.length}`);
  manifest.chunks.forEach((sha, i) => writeFileSync(join(root, 'www', 'boot', 'chunks', sha), image.subarray(i * manifest.chunk_size, (i + 1) * manifest.chunk_size)));
  // The ceiling's file: sparse, read as zeros from no disk.
  execFileSync('truncate', ['-s', String(CEILING_FILE_BYTES), join(root, 'www', 'ceiling.bin')]);
  return root;
}

async function startStack(root: string, nodes: NodeEntry[]): Promise<RunningServer & { nginxWorker: () => number }> {
  const hosts = join(root, 'dnsmasq.hosts');
  writeFileSync(hosts, nodes.map((node) => `${node.mac},${node.ip}\n`).join(''));
  const logFile = join(root, 'dnsmasq.log');
  writeFileSync(logFile, '');
  // Same answers as keel's: each node its fixed address, 1 h leases, PXE firmware ipxe.efi from
  // this server, iPXE its per-node script (iPXE expands ${mac:hexhyp} in the file name). TFTP with
  // the transfer cap raised from dnsmasq's default 50 to keel's 4,096, since a storm needs it.
  writeFileSync(join(root, 'dnsmasq.conf'), [
    'port=0', 'interface=srv0', 'bind-interfaces', `dhcp-leasefile=${join(root, 'dnsmasq.leases')}`, 'quiet-dhcp',
    'dhcp-range=10.69.0.0,static,255.255.0.0,1h', `dhcp-hostsfile=${hosts}`, 'dhcp-authoritative', 'no-ping',
    `dhcp-option=3,${RELAY_ADDRESS}`, 'dhcp-match=set:ipxe,175',
    `dhcp-boot=tag:!ipxe,ipxe.efi,bootstorm,${SERVER_ADDRESS}`, `dhcp-boot=tag:ipxe,${BASE}/nodes/\${mac:hexhyp}.ipxe`,
    'enable-tftp', `tftp-root=${join(root, 'tftp')}`, 'tftp-max=4096', '',
  ].join('\n'));
  const dnsmasq = start(SERVER_NS, serverCpu, ['dnsmasq', '--keep-in-foreground', `--conf-file=${join(root, 'dnsmasq.conf')}`, `--log-facility=${logFile}`, '--user=root', `--pid-file=${join(root, 'dnsmasq.pid')}`]);
  await waitFor('dnsmasq to start', () => readFileSync(logFile, 'utf8').includes('TFTP root') || dnsmasq.child.exitCode !== null);
  if (dnsmasq.child.exitCode !== null) throw new Error(`dnsmasq exited: ${dnsmasq.output()} ${readFileSync(logFile, 'utf8')}`);
  writeFileSync(join(root, 'nginx.conf'), `daemon off;
user root;
worker_processes 1;
pid ${root}/nginx.pid;
error_log ${root}/nginx-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${root}/nginx-body;
  server {
    listen ${SERVER_ADDRESS}:${HTTP_PORT} backlog=4096;
    root ${root}/www;
  }
}
`);
  const nginx = start(SERVER_NS, serverCpu, ['nginx', '-c', join(root, 'nginx.conf')]);
  const pidFile = join(root, 'nginx.pid');
  await waitFor('nginx to start', () => existsSync(pidFile) || nginx.child.exitCode !== null);
  if (nginx.child.exitCode !== null) throw new Error(`nginx exited: ${nginx.output()}`);
  const nginxWorker = () => {
    const master = readFileSync(pidFile, 'utf8').trim();
    return Number(readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(' ')[0]);
  };
  await waitFor('nginx worker', () => {
    try {
      return nginxWorker() > 0;
    } catch {
      return false;
    }
  });
  return {
    nginxWorker,
    pids: () => [dnsmasq.child.pid!, nginxWorker()],
    // SIGTERM: nginx's master then stops its worker (SIGKILL would orphan it).
    stop: async () => {
      await stopGracefully(nginx);
      await stopGracefully(dnsmasq);
    },
  };
}

// ---- one storm ---------------------------------------------------------------------------------------

interface Storm {
  server: ServerName;
  result: GeneratorResult;
  serverCpuSeconds: number;
  /** keel only: peak anonymous RSS sampled every 250 ms, and VmHWM (peak resident, with the LMDB map's page-cache pages). */
  peakRssAnonMb?: number;
  vmHwmMb?: number;
  lossDrops: number;
}

async function storm(server: ServerName, nodes: NodeEntry[], serverPids: () => number[], keelPid?: number): Promise<Storm> {
  const config: GeneratorConfig = {
    relayAddress: RELAY_ADDRESS, dhcpServer: SERVER_ADDRESS, macs: nodes.map((node) => node.mac), arrival,
    rampSeconds: Number(values['ramp-seconds']), inFlight: Number(values['in-flight']), blockSize: 1468,
    bootAttempts: Number(values['boot-attempts']), timeoutSeconds,
  };
  const configFile = join(work, `${server}-config.json`);
  const resultFile = join(work, `${server}-result.json`);
  writeFileSync(configFile, JSON.stringify(config));
  const pids = serverPids();
  const cpuBefore = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const dropsBefore = lossDrops(SERVER_NS) + lossDrops(CLIENT_NS);
  let peakAnon = 0;
  const sampler = keelPid === undefined ? undefined : setInterval(() => {
    peakAnon = Math.max(peakAnon, statusKb(keelPid, 'RssAnon'));
  }, 250);
  const generator = start(CLIENT_NS, clientCpu, [process.execPath, '--import', 'tsx', GENERATOR, configFile, resultFile]);
  // The generator stops itself at the storm's timeout; this bounds it if it cannot.
  const hardLimit = setTimeout(() => generator.child.kill('SIGKILL'), (timeoutSeconds + 120) * 1000);
  await generator.exited;
  clearTimeout(hardLimit);
  if (sampler) clearInterval(sampler);
  if (!existsSync(resultFile)) throw new Error(`the generator wrote no result (exit ${generator.child.exitCode ?? generator.child.signalCode}): ${generator.output()}`);
  const serverCpuSeconds = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - cpuBefore;
  const measured: Storm = { server, result: JSON.parse(readFileSync(resultFile, 'utf8')) as GeneratorResult, serverCpuSeconds, lossDrops: lossDrops(SERVER_NS) + lossDrops(CLIENT_NS) - dropsBefore };
  if (keelPid !== undefined) {
    measured.peakRssAnonMb = peakAnon / 1024;
    measured.vmHwmMb = statusKb(keelPid, 'VmHWM') / 1024;
  }
  return measured;
}

/** One curl stream of the 1 GiB sparse file from nginx over the veth, best of 3: MB/s. */
function ceilingMbps(): number {
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const [bytes, seconds] = inNamespace(CLIENT_NS, 'taskset', ['-c', clientCpu, 'curl', '-sf', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', `${BASE}/ceiling.bin`]).split(' ').map(Number) as [number, number];
    if (bytes !== CEILING_FILE_BYTES) throw new Error(`ceiling: ${bytes} bytes`);
    best = Math.max(best, bytes / seconds / 1e6);
  }
  return best;
}

// ---- the report -------------------------------------------------------------------------------------

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Summary {
  booted: number;
  failures: number;
  lastBootedSeconds: number;
  /** Seconds until 50, 90 and 99 % of all nodes were booted (NaN if never). */
  bootedBy: { p50: number; p90: number; p99: number };
  bytes: number;
  retries: NodeResult['retries'];
  phases: Record<Phase | 'total', { p50: number; p99: number }>;
  errors: Map<string, number>;
  /** Why HTTP requests were tried again, by kind. */
  retried: Map<string, number>;
}

function summarize(result: GeneratorResult): Summary {
  const booted = result.nodes.filter((node) => node.bootedMs !== null);
  const phases = {} as Summary['phases'];
  for (const phase of PHASES) {
    const values = booted.map((node) => node.phases[phase]).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    phases[phase] = { p50: percentile(values, 50), p99: percentile(values, 99) };
  }
  const totals = booted.map((node) => node.bootedMs! - node.startMs).sort((a, b) => a - b);
  const bootTimes = booted.map((node) => node.bootedMs! / 1000).sort((a, b) => a - b);
  const bootedBy = (share: number) => bootTimes[Math.ceil(share * result.nodes.length) - 1] ?? Number.NaN;
  phases.total = { p50: percentile(totals, 50), p99: percentile(totals, 99) };
  const retries = { dhcp: 0, tftp: 0, http: 0, boots: 0 };
  const errors = new Map<string, number>();
  const retried = new Map<string, number>();
  const countKind = (counts: Map<string, number>, message: string) => {
    const kind = message.replace(/[0-9a-f]{64}/g, 'SHA').replace(/\d+(\.\d+)?/g, 'N').slice(0, 120);
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  };
  for (const node of result.nodes) {
    for (const key of Object.keys(retries) as (keyof typeof retries)[]) retries[key] += node.retries[key];
    for (const error of node.errors) countKind(errors, error);
    for (const message of node.retried) countKind(retried, message);
  }
  return {
    booted: booted.length,
    failures: result.nodes.length - booted.length,
    lastBootedSeconds: bootTimes.at(-1) ?? Number.NaN,
    bootedBy: { p50: bootedBy(0.5), p90: bootedBy(0.9), p99: bootedBy(0.99) },
    bytes: result.nodes.reduce((sum, node) => sum + node.bytes, 0),
    retries,
    phases,
    errors,
    retried,
  };
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const ms = (x: number) => (Number.isNaN(x) ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(0));

function table(storms: Storm[], ceiling: number): string[] {
  const sums = storms.map((s) => summarize(s.result));
  const head = `| | ${storms.map((s) => s.server === 'keel' ? 'keel' : 'dnsmasq + nginx').join(' | ')} |`;
  const rows = [head, `|---|${storms.map(() => '---:').join('|')}|`];
  const row = (label: string, cell: (s: Storm, sum: Summary) => string) => rows.push(`| ${label} | ${storms.map((s, i) => cell(s, sums[i]!)).join(' | ')} |`);
  row('time until the last node booted', (_, sum) => `**${sum.lastBootedSeconds.toFixed(1)} s**`);
  row('time until 50 / 90 / 99 % of the nodes booted', (_, sum) => `${sum.bootedBy.p50.toFixed(1)} / ${sum.bootedBy.p90.toFixed(1)} / ${sum.bootedBy.p99.toFixed(1)} s`);
  row('booted / failed', (_, sum) => `${sum.booted} / ${sum.failures}`);
  row('within the loopback ceiling × (bytes ÷ ceiling rate)', (_, sum) => `${(sum.lastBootedSeconds / (sum.bytes / 1e6 / ceiling)).toFixed(2)}×`);
  for (const phase of [...PHASES, 'total'] as const) row(`${phase} p50 / p99 ms`, (_, sum) => `${ms(sum.phases[phase].p50)} / ${ms(sum.phases[phase].p99)}`);
  row('TFTP block sizes granted', (s) => [...new Set(s.result.nodes.map((node) => node.tftpBlockSize ?? 'none'))].join(', '));
  row('bytes moved', (_, sum) => `${(sum.bytes / 1e9).toFixed(2)} GB`);
  row('retries: DHCP / TFTP / HTTP / whole boots', (_, sum) => `${sum.retries.dhcp} / ${sum.retries.tftp} / ${sum.retries.http} / ${sum.retries.boots}`);
  row('server CPU (s, and % of the storm)', (s, sum) => `${s.serverCpuSeconds.toFixed(1)} s (${((s.serverCpuSeconds / sum.lastBootedSeconds) * 100).toFixed(0)} %)`);
  row('keel peak RSS: anonymous / VmHWM', (s) => (s.peakRssAnonMb === undefined ? '' : `${s.peakRssAnonMb.toFixed(0)} MB / ${s.vmHwmMb!.toFixed(0)} MB`));
  row('generator CPU: s (of which kernel), % of its wall time', (s) => `${s.result.cpuSeconds.toFixed(1)} s (${s.result.cpuSystemSeconds.toFixed(1)} s), ${((s.result.cpuSeconds / s.result.wallSeconds) * 100).toFixed(0)} %`);
  row('DHCP replies the relay socket dropped (its buffer)', (s) => `${s.result.relay.kernelDrops} (${(s.result.relay.bufferBytes / 1024).toFixed(0)} KiB)`);
  if (lossPercent > 0) row('packets dropped by the loss rules', (s) => String(s.lossDrops));
  return rows;
}

/** Nodes booted over time, one curve per server, drawn by gnuplot. */
function plot(storms: Storm[], file: string, title: string): void {
  const scripts: string[] = [];
  storms.forEach((s) => {
    const times = s.result.nodes.map((node) => node.bootedMs).filter((x): x is number => x !== null).sort((a, b) => a - b);
    const data = join(work, `${s.server}.dat`);
    writeFileSync(data, ['0 0', ...times.map((t, i) => `${(t / 1000).toFixed(3)} ${i + 1}`)].join('\n') + '\n');
    scripts.push(`'${data}' using 1:2 with steps linewidth 2 title '${s.server === 'keel' ? 'keel' : 'dnsmasq + nginx'}'`);
  });
  mkdirSync(RESULTS_DIR, { recursive: true });
  execFileSync('gnuplot', [], {
    input: [`set terminal pngcairo size 900,540 font ',11'`, `set output '${file}'`, `set title '${title}'`, 'set xlabel "seconds since the storm started"',
      'set ylabel "nodes booted (root image fetched)"', 'set key left top', 'set grid', `set yrange [0:${nodeCount * 1.05}]`, `plot ${scripts.join(', ')}`, ''].join('\n'),
  });
}

/** Inserts `text` at the end of this bench's section of bench/RESULTS.md. */
function record(text: string): void {
  const file = join(REPO, 'bench', 'RESULTS.md');
  const content = readFileSync(file, 'utf8');
  const header = content.indexOf('\n## Boot storm');
  if (header < 0) throw new Error('bench/RESULTS.md has no "## Boot storm" section');
  const next = content.indexOf('\n## ', header + 1);
  const at = next < 0 ? content.length : next;
  writeFileSync(file, `${content.slice(0, at).trimEnd()}\n\n${text.trimEnd()}\n${content.slice(at)}`);
}

async function main(): Promise<void> {
  const loadBefore = load();
  const files = await prepareFiles();
  const keelTemplate = await prepareKeelTemplate(files);
  const nodes = keelTemplate.nodes;
  makeNamespaces(nodes.map((node) => node.ip));
  const sizes = ['vmlinuz', 'initramfs.img', 'rootfs.squashfs'].map((name) => `${name} ${(statSync(join(files.dir, name)).size / 1e6).toFixed(1)} MB`).join(', ');
  console.log(`bootstorm: ${nodeCount} nodes, arrival ${arrival}${arrival === 'ramp' ? ` over ${values['ramp-seconds']} s` : ''}, loss ${lossPercent} %; files: ${files.origin} (${sizes}; ipxe.efi ${statSync(IPXE_EFI).size} B); server on CPU ${serverCpu}, generator on CPU ${clientCpu}; load average ${loadBefore}`);

  const storms: Storm[] = [];
  let manifestText: string | undefined;
  if (servers.includes('keel')) {
    const keel = await startKeel(keelTemplate.dir);
    try {
      manifestText = inNamespace(SERVER_NS, 'curl', ['-sf', `${BASE}/boot/image/DefaultImage/manifest`]);
      console.log(`  keel: storm… (load ${load()})`);
      storms.push(await storm('keel', nodes, keel.pids, keel.pid));
    } finally {
      await keel.stop();
    }
  }
  let ceiling = Number.NaN;
  if (servers.includes('stack')) {
    if (manifestText === undefined) {
      // keel's chunk layout without a storm against it.
      const keel = await startKeel(keelTemplate.dir);
      manifestText = inNamespace(SERVER_NS, 'curl', ['-sf', `${BASE}/boot/image/DefaultImage/manifest`]);
      await keel.stop();
    }
    const root = await prepareStackTree(files, nodes, manifestText);
    const stack = await startStack(root, nodes);
    try {
      console.log(`  dnsmasq + nginx: storm… (load ${load()})`);
      storms.push(await storm('stack', nodes, stack.pids));
      console.log(`  loopback ceiling: nginx → curl, one stream of 1 GiB over the veth, best of 3… (load ${load()})`);
      ceiling = ceilingMbps();
    } finally {
      await stack.stop();
    }
  }

  const label = `${nodeCount} nodes, arrival ${arrival}${arrival === 'ramp' ? ` over ${values['ramp-seconds']} s` : ''}${lossPercent > 0 ? `, ${lossPercent} % loss` : ''}`;
  const suffix = `${arrival === 'ramp' ? '-ramp' : ''}${lossPercent > 0 ? `-loss${lossPercent}` : ''}`;
  const plotFile = join(RESULTS_DIR, `nodes-${nodeCount}${suffix}.png`);
  plot(storms, plotFile, `Boot storm: ${label}`);
  const lines = [
    `### ${label} (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, load average ${loadBefore} before, ${load()} after)`,
    '',
    `\`npm run bench:bootstorm -- --nodes ${nodeCount}${arrival === 'ramp' ? ` --arrival ramp --ramp-seconds ${values['ramp-seconds']}` : ''}${lossPercent > 0 ? ` --loss ${lossPercent}` : ''}\`; `
      + `keel ${values['keel-binary'] ?? (values['keel-source'] ? 'from source (tsx)' : `bundle ${BUNDLE} of ${statSync(BUNDLE).mtime.toISOString().slice(0, 16)}`)}; files: ${files.origin}; loopback ceiling ${ceiling.toFixed(0)} MB/s. `
      + `Plot: [${plotFile.slice(REPO.length)}](${plotFile.slice(join(REPO, 'bench').length + 1)})`,
    '',
    ...table(storms, ceiling),
  ];
  for (const s of storms) {
    const { errors, retried } = summarize(s.result);
    if (errors.size > 0) lines.push('', `${s.server}, failed boot attempts: ${[...errors].map(([kind, count]) => `${count}× ${kind}`).join('; ')}`);
    if (retried.size > 0) lines.push('', `${s.server}, HTTP requests tried again: ${[...retried].map(([kind, count]) => `${count}× ${kind}`).join('; ')}`);
  }
  console.log(`\n${lines.join('\n')}\n`);
  if (!values['no-record']) record(lines.join('\n'));
  const keel = storms.find((s) => s.server === 'keel');
  const stack = storms.find((s) => s.server === 'stack');
  const keelSum = keel && summarize(keel.result);
  const stackSum = stack && summarize(stack.result);
  const seconds = (sum: Summary | undefined) => (sum === undefined ? 'NA' : sum.lastBootedSeconds.toFixed(1));
  const ratio = keelSum && stackSum ? (keelSum.lastBootedSeconds / stackSum.lastBootedSeconds).toFixed(2) : 'NA';
  console.log(`bootstorm nodes=${nodeCount} keel_s=${seconds(keelSum)} stack_s=${seconds(stackSum)} ratio=${ratio} keel_failures=${keelSum?.failures ?? 'NA'} stack_failures=${stackSum?.failures ?? 'NA'}`);
}

await main();
