// bench/tftp: keel's TFTP server against tftpd-hpa (lock-step) and atftpd (windowsize) on the same
// files in one run, with real clients (curl, atftp). Servers and clients are pinned to one CPU
// (taskset): unpinned runs swing 5× here. Each figure is the median of --runs transfers, after one
// untimed warm-up transfer per server. Besides MB/s it prints each server's CPU time per block
// (its cgroup's cpu.stat: the server process and the children it forks, as tftpd-hpa does per
// transfer; needs cgroup2, else n/a): with server and clients on one CPU, MB/s also carries the
// clients' cost, this is the server's own.
//   single:     one transfer, curl at blksize 512/1468/8192/65464 (keel vs tftpd-hpa), atftp at
//               windowsize 1/4/16 and blksize 1468 and 8192 (keel vs atftpd). 8192 × 16 uses the
//               4 MiB file: atftpd sends a window datagram by datagram, 16 of which overflow atftp's
//               default receive buffer on loopback (≈ 16 KiB of kernel memory each), so it crawls
//               through timeouts (≈ 0.3 MB/s); keel's window goes as UDP GSO runs and arrives whole.
//   concurrent: 16 and 64 curl clients at once, blksize 1468 and 8192 (keel vs tftpd-hpa); MB/s =
//               all bytes / wall time from the first start to the last exit
//   small:      1,000 sequential transfers of a 1,000-byte file (2 blocks of 512, as an iPXE
//               script or a config in a boot storm) by one scripted client (small-files-client.mjs:
//               curl or atftp would mostly measure their own start-up), keel vs tftpd-hpa: here the
//               cost per transfer (sockets, open, set-up) is what counts. Back to back, and 1 ms
//               apart (the server idles in between, as between a storm's nodes: V8 then runs its
//               garbage collector differently; MB/s then counts the pauses too, CPU does not)
// Usage: node --import tsx bench/tftp/run.ts [--cpu 1] [--runs 3] [--mib 64] [--atftpd PATH] [--sections curl,atftp,concurrent,small]
//          [--blksizes 512,1468,8192,65464 (curl singles)] [--keel KEEL] [--variant NAME=KEEL ...]
// KEEL is keel's TFTP server as a serve script run under tsx (`*.ts`; default: test/tftp/serve.ts,
// the server alone), or the shipped program (`dist/keel`, or the bundle `*.cjs` run by node) as
// `keel serve --tftp-root` with a fresh data directory: the whole head, as deployed, without tsx.
// --variant adds another keel build (e.g. a copy of the last commit's tree: its test/tftp/serve.ts)
// to every comparison, alternated with the others in the same run: an A/B under the same load.
// Needs tftpd-hpa's in.tftpd, atftpd (it conflicts with tftpd-hpa as a package: extract it with
// `apt-get download atftpd && dpkg -x atftpd_*.deb DIR`, pass DIR/usr/sbin/atftpd), curl, atftp.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { seededBuffer } from '../../test/helpers/seeded-bytes.js';

const { values } = parseArgs({
  options: {
    cpu: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    mib: { type: 'string', default: '64' },
    atftpd: { type: 'string', default: 'atftpd' },
    sections: { type: 'string', default: 'curl,atftp,concurrent,small' },
    variant: { type: 'string', multiple: true, default: [] },
    blksizes: { type: 'string', default: '512,1468,8192,65464' },
    keel: { type: 'string', default: fileURLToPath(new URL('../../test/tftp/serve.ts', import.meta.url)) },
  },
});
const variants = values.variant.map((spec) => {
  const at = spec.indexOf('=');
  if (at <= 0) throw new Error(`--variant NAME=KEEL, got ${spec}`);
  return { name: spec.slice(0, at), keel: spec.slice(at + 1) };
});
const cpu = values.cpu;
const runs = Number(values.runs);
const MiB = 1024 * 1024;

const root = mkdtempSync(join(tmpdir(), 'keel-bench-tftp-'));
chmodSync(root, 0o755); // in.tftpd drops to its own user
const bigSize = Number(values.mib) * MiB;
writeFileSync(join(root, 'big.bin'), await seededBuffer(7, bigSize));
writeFileSync(join(root, 'small.bin'), await seededBuffer(8, 16 * MiB)); // for blksize 512
writeFileSync(join(root, 'each.bin'), await seededBuffer(9, 4 * MiB)); // per concurrent client
const SMALL_FILE_BYTES = 1000;
const SMALL_FILE_TRANSFERS = 1000;
writeFileSync(join(root, 'script.ipxe'), await seededBuffer(10, SMALL_FILE_BYTES));
const smallFilesClient = fileURLToPath(new URL('./small-files-client.mjs', import.meta.url));

/** A free UDP-less TCP probe is enough to pick a port number unlikely to be taken. */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

interface Server {
  name: string;
  port: number;
  process: ChildProcess;
  /** Its cgroup directory (see cgroupFor). */
  cgroup: string | undefined;
}

async function startServer(name: string, keel = values.keel): Promise<Server> {
  const port = await freePort();
  const pinned = (command: string, args: string[]) => spawn('taskset', ['-c', cpu, command, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  let child: ChildProcess;
  if (name === 'tftpd-hpa') {
    child = pinned('in.tftpd', ['-L', '-a', `127.0.0.1:${port}`, '-s', root]);
  } else if (name === 'atftpd') {
    child = pinned(values.atftpd, ['--daemon', '--no-fork', '--port', String(port), '--bind-address', '127.0.0.1', '--logfile', '/dev/null', '--user', 'root', '--group', 'root', root]);
  } else if (keel.endsWith('.ts')) {
    // keel or a variant. Logs at info (one line per transfer) go to stderr, ignored: their cost is counted.
    child = pinned(process.execPath, ['--import', 'tsx', keel, '--bind', '127.0.0.1', '--port', String(port), '--root', root, '--log-level', 'info']);
    await new Promise<void>((resolve) => createInterface({ input: child.stdout! }).once('line', () => resolve()));
  } else {
    const dataDir = mkdtempSync(join(tmpdir(), 'keel-bench-tftp-data-'));
    const httpPort = await freePort();
    const program = keel.endsWith('.cjs') ? [process.execPath, keel] : [keel];
    child = spawn('taskset', ['-c', cpu, ...program, 'serve', '--data-dir', dataDir, '--bind', '127.0.0.1', '--http-port', String(httpPort), '--tftp-port', String(port), '--tftp-root', root, '--log-level', 'info'], {
      stdio: 'ignore', env: { ...process.env, KEEL_ADMIN_PASSWORD: 'bench-password' },
    });
    child.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
    // Up once its HTTP port answers: the head starts TFTP right after, well inside the settling time below.
    for (let attempt = 0; !(await fetch(`http://127.0.0.1:${httpPort}/`).then(() => true, () => false)); attempt++) {
      if (attempt === 300 || child.exitCode !== null) throw new Error(`${keel} serve did not start`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { name, port, process: child, cgroup: cgroupFor(name, child.pid!) };
}

function run(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', cpu, command, ...args], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(code);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}`));
    });
  });
}

const curlArgs = (port: number, file: string, blksize: number, out: string) => ['-s', '--tftp-blksize', String(blksize), '-o', out, `tftp://127.0.0.1:${port}/${file}`];
const atftpArgs = (port: number, file: string, blksize: number, windowsize: number, out: string) =>
  ['-g', '-r', file, '-l', out, '--option', `blksize ${blksize}`, '--option', `windowsize ${windowsize}`, '127.0.0.1', String(port)];

/** The cgroup2 hierarchy: /sys/fs/cgroup (unified layout) or /sys/fs/cgroup/unified (hybrid); undefined without one. */
const cgroupRoot = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].find((dir) => existsSync(join(dir, 'cgroup.controllers')));

/** A cgroup of its own for a server process (and the children it forks), for its CPU time. */
function cgroupFor(name: string, pid: number): string | undefined {
  if (cgroupRoot === undefined) return undefined;
  const dir = join(cgroupRoot, `keel-bench-tftp-${process.pid}-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  return dir;
}

/** CPU seconds the server's cgroup has used so far (NaN without cgroup2). */
function cpuSecondsOf(server: Server): number {
  if (server.cgroup === undefined) return NaN;
  return Number(/^usage_usec (\d+)$/m.exec(readFileSync(join(server.cgroup, 'cpu.stat'), 'utf8'))![1]) / 1e6;
}

interface Measured {
  mbps: number;
  /** The server's CPU time per block sent, µs. */
  cpuUsPerBlock: number;
}

/**
 * `clients` simultaneous runs of `command`, each fetching `bytes` in blocks of `blockSize` from
 * `server` (in `transfers` transfers of equal size: one, unless a run makes several).
 */
async function measure(server: Server, clients: number, bytes: number, blockSize: number, command: string, args: (out: string) => string[], transfers = 1): Promise<Measured> {
  const outDir = mkdtempSync(join(tmpdir(), 'keel-bench-out-'));
  try {
    const cpuBefore = cpuSecondsOf(server);
    const start = performance.now();
    await Promise.all(Array.from({ length: clients }, (_, i) => run(command, args(join(outDir, `out${i}`)))));
    const mbps = (clients * bytes) / 1e6 / ((performance.now() - start) / 1000);
    // Until a server's transfer has ended on its side too (tftpd-hpa's child exits after the last ACK).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const blocks = clients * transfers * (Math.floor(bytes / transfers / blockSize) + 1);
    return { mbps, cpuUsPerBlock: ((cpuSecondsOf(server) - cpuBefore) * 1e6) / blocks };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function compare(label: string, peerName: 'tftpd-hpa' | 'atftpd', clients: number, bytes: number, blockSize: number, command: string, args: (port: number, out: string) => string[], transfers = 1) {
  const servers = [await startServer('keel'), ...(await Promise.all(variants.map((v) => startServer(v.name, v.keel)))), await startServer(peerName)];
  const results = new Map<string, Measured[]>(servers.map((s) => [s.name, []]));
  try {
    // One untimed transfer per server first: keel is a long-running process whose JIT warms up
    // once in its life (tftpd-hpa and atftpd are compiled C), and the first transfer costs that.
    for (const server of servers) {
      await measure(server, clients, bytes, blockSize, command, (out) => args(server.port, out), transfers).catch((error: Error) => {
        throw new Error(`${label}, ${server.name} (warm-up): ${error.message}`);
      });
    }
    for (let i = 0; i < runs; i++) {
      // Rotate the order, so that a change in the machine's load hits every side.
      for (let k = 0; k < servers.length; k++) {
        const server = servers[(i + k) % servers.length]!;
        results.get(server.name)!.push(await measure(server, clients, bytes, blockSize, command, (out) => args(server.port, out), transfers).catch((error: Error) => {
          throw new Error(`${label}, ${server.name}: ${error.message}`);
        }));
      }
    }
  } finally {
    await Promise.all(servers.map(async (server) => {
      if (server.process.exitCode === null && server.process.signalCode === null) {
        const exited = new Promise((resolve) => server.process.once('exit', resolve));
        server.process.kill(server.name === peerName ? 'SIGKILL' : 'SIGTERM');
        await exited;
      }
      // A cgroup can be removed once its last process is gone (a killed tftpd-hpa's children may outlive it briefly).
      for (let attempt = 0; server.cgroup !== undefined && attempt < 50; attempt++) {
        try {
          rmdirSync(server.cgroup);
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }));
  }
  const mbpsOf = (name: string) => results.get(name)!.map((m) => m.mbps);
  const cpuOf = (name: string) => (cgroupRoot === undefined ? 'n/a' : median(results.get(name)!.map((m) => m.cpuUsPerBlock)).toFixed(2));
  const peer = median(mbpsOf(peerName));
  const mbs = (x: number) => x.toFixed(x < 10 ? 2 : 0);
  const rows = servers.filter((s) => s.name !== peerName).map((s) => {
    const all = mbpsOf(s.name);
    const ratios = all.map((x, i) => x / mbpsOf(peerName)[i]!);
    const name = s.name === 'keel' ? '' : ` (${s.name})`;
    return `| ${label}${name} | ${mbs(median(all))} | ${peerName} ${mbs(peer)} | ${(median(all) / peer).toFixed(2)}× | ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)} | ${cpuOf(s.name)} / ${cpuOf(peerName)} |`;
  });
  for (const row of rows) console.log(row);
  return rows;
}

console.log(`cpu ${cpu}, median of ${runs}, file ${values.mib} MiB (16 MiB at blksize 512, 4 MiB per concurrent client)`);
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log('| case | keel MB/s | peer MB/s | keel/peer (medians) | per-run ratio range | server CPU µs/block keel / peer |');
console.log('|---|---|---|---|---|---|');
const sections = new Set(values.sections.split(','));
try {
  for (const blksize of sections.has('curl') ? values.blksizes.split(',').map(Number) : []) {
    const [file, size] = blksize === 512 ? ['small.bin', 16 * MiB] : ['big.bin', bigSize];
    await compare(`curl single, blksize ${blksize}`, 'tftpd-hpa', 1, size, blksize, 'curl', (port, out) => curlArgs(port, file, blksize, out));
  }
  for (const blksize of sections.has('atftp') ? [1468, 8192] : []) {
    for (const windowsize of [1, 4, 16]) {
      const [file, size] = blksize === 8192 && windowsize === 16 ? ['each.bin', 4 * MiB] : ['big.bin', bigSize];
      await compare(`atftp single, blksize ${blksize} windowsize ${windowsize}`, 'atftpd', 1, size, blksize, 'atftp', (port, out) => atftpArgs(port, file, blksize, windowsize, out));
    }
  }
  for (const clients of sections.has('concurrent') ? [16, 64] : []) {
    for (const blksize of [1468, 8192]) {
      await compare(`${clients} curl clients, blksize ${blksize}`, 'tftpd-hpa', clients, 4 * MiB, blksize, 'curl', (port, out) => curlArgs(port, 'each.bin', blksize, out));
    }
  }
  for (const pauseMs of sections.has('small') ? [0, 1] : []) {
    await compare(`${SMALL_FILE_TRANSFERS} × ${SMALL_FILE_BYTES} B, ${pauseMs === 0 ? 'back to back' : `${pauseMs} ms apart`}`, 'tftpd-hpa', 1, SMALL_FILE_TRANSFERS * SMALL_FILE_BYTES, 512, process.execPath,
      (port) => [smallFilesClient, String(port), 'script.ipxe', String(SMALL_FILE_BYTES), String(SMALL_FILE_TRANSFERS), String(pauseMs)], SMALL_FILE_TRANSFERS);
  }
} finally {
  console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  rmSync(root, { recursive: true, force: true });
}
