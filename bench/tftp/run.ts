// bench/tftp: keel's TFTP server against tftpd-hpa (lock-step) and atftpd (windowsize) on the same
// files in one run, with real clients (curl, atftp). Servers and clients are pinned to one CPU
// (taskset): unpinned runs swing 5× here. Each figure is the median of --runs transfers.
//   single:     one transfer, curl at blksize 512/1468/8192/65464 (keel vs tftpd-hpa), atftp at
//               windowsize 1/4/16 and blksize 1468, 1/4 at 8192 (keel vs atftpd). Not 8192 × 16: a
//               window of 16 such datagrams overflows atftp's default receive buffer on loopback
//               (≈ 16 KiB of kernel memory each), and both servers then crawl through timeouts.
//   concurrent: 16 and 64 curl clients at once, blksize 1468 and 8192 (keel vs tftpd-hpa); MB/s =
//               all bytes / wall time from the first start to the last exit
// Usage: node --import tsx bench/tftp/run.ts [--cpu 1] [--runs 3] [--mib 64] [--atftpd PATH] [--sections curl,atftp,concurrent]
// Needs tftpd-hpa's in.tftpd, atftpd (it conflicts with tftpd-hpa as a package: extract it with
// `apt-get download atftpd && dpkg -x atftpd_*.deb DIR`, pass DIR/usr/sbin/atftpd), curl, atftp.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { seededBuffer } from '../../test/tftp/fixture.js';

const { values } = parseArgs({
  options: {
    cpu: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    mib: { type: 'string', default: '64' },
    atftpd: { type: 'string', default: 'atftpd' },
    sections: { type: 'string', default: 'curl,atftp,concurrent' },
  },
});
const cpu = values.cpu;
const runs = Number(values.runs);
const MiB = 1024 * 1024;
const serveScript = fileURLToPath(new URL('../../test/tftp/serve.ts', import.meta.url));

const root = mkdtempSync(join(tmpdir(), 'keel-bench-tftp-'));
chmodSync(root, 0o755); // in.tftpd drops to its own user
const bigSize = Number(values.mib) * MiB;
writeFileSync(join(root, 'big.bin'), await seededBuffer(7, bigSize));
writeFileSync(join(root, 'small.bin'), await seededBuffer(8, 16 * MiB)); // for blksize 512
writeFileSync(join(root, 'each.bin'), await seededBuffer(9, 4 * MiB)); // per concurrent client

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
}

async function startServer(name: 'keel' | 'tftpd-hpa' | 'atftpd'): Promise<Server> {
  const port = await freePort();
  const pinned = (command: string, args: string[]) => spawn('taskset', ['-c', cpu, command, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  let child: ChildProcess;
  if (name === 'keel') {
    // Logs at info (one line per transfer) go to stderr, ignored: their cost is counted.
    child = pinned(process.execPath, ['--import', 'tsx', serveScript, '--bind', '127.0.0.1', '--port', String(port), '--root', root, '--log-level', 'info']);
    await new Promise<void>((resolve) => createInterface({ input: child.stdout! }).once('line', () => resolve()));
  } else if (name === 'tftpd-hpa') {
    child = pinned('in.tftpd', ['-L', '-a', `127.0.0.1:${port}`, '-s', root]);
  } else {
    child = pinned(values.atftpd, ['--daemon', '--no-fork', '--port', String(port), '--bind-address', '127.0.0.1', '--logfile', '/dev/null', '--user', 'root', '--group', 'root', root]);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { name, port, process: child };
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

/** MB/s of `clients` simultaneous transfers of `bytes` each. */
async function measure(clients: number, bytes: number, command: string, args: (out: string) => string[]): Promise<number> {
  const outDir = mkdtempSync(join(tmpdir(), 'keel-bench-out-'));
  try {
    const start = performance.now();
    await Promise.all(Array.from({ length: clients }, (_, i) => run(command, args(join(outDir, `out${i}`)))));
    return (clients * bytes) / 1e6 / ((performance.now() - start) / 1000);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function compare(label: string, peerName: 'tftpd-hpa' | 'atftpd', clients: number, bytes: number, command: string, args: (port: number, out: string) => string[]) {
  const servers = { keel: await startServer('keel'), peer: await startServer(peerName) };
  const results = { keel: [] as number[], peer: [] as number[] };
  try {
    for (let i = 0; i < runs; i++) {
      // Alternate, so that a change in the machine's load hits both sides.
      for (const side of i % 2 ? (['peer', 'keel'] as const) : (['keel', 'peer'] as const)) {
        results[side].push(await measure(clients, bytes, command, (out) => args(servers[side].port, out)));
      }
    }
  } finally {
    servers.keel.process.kill('SIGTERM');
    servers.peer.process.kill('SIGKILL');
  }
  const keel = median(results.keel);
  const peer = median(results.peer);
  const row = `| ${label} | ${keel.toFixed(0)} | ${peerName} ${peer.toFixed(0)} | ${(keel / peer).toFixed(2)}× |`;
  console.log(row);
  return row;
}

console.log(`cpu ${cpu}, median of ${runs}, file ${values.mib} MiB (16 MiB at blksize 512, 4 MiB per concurrent client)`);
console.log('| case | keel MB/s | peer MB/s | keel/peer |');
console.log('|---|---|---|---|');
const sections = new Set(values.sections.split(','));
try {
  for (const blksize of sections.has('curl') ? [512, 1468, 8192, 65464] : []) {
    const [file, size] = blksize === 512 ? ['small.bin', 16 * MiB] : ['big.bin', bigSize];
    await compare(`curl single, blksize ${blksize}`, 'tftpd-hpa', 1, size, 'curl', (port, out) => curlArgs(port, file, blksize, out));
  }
  for (const blksize of sections.has('atftp') ? [1468, 8192] : []) {
    for (const windowsize of blksize === 8192 ? [1, 4] : [1, 4, 16]) {
      await compare(`atftp single, blksize ${blksize} windowsize ${windowsize}`, 'atftpd', 1, bigSize, 'atftp', (port, out) => atftpArgs(port, 'big.bin', blksize, windowsize, out));
    }
  }
  for (const clients of sections.has('concurrent') ? [16, 64] : []) {
    for (const blksize of [1468, 8192]) {
      await compare(`${clients} curl clients, blksize ${blksize}`, 'tftpd-hpa', clients, 4 * MiB, 'curl', (port, out) => curlArgs(port, 'each.bin', blksize, out));
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
