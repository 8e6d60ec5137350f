// keel vs nginx (Debian's, sendfile on) serving the same 1 GiB file, in one run: a single stream
// with curl, then wrk with 64 connections over the same random 1 MiB and 64 KiB ranges (fixed
// seeds). Each server gets CPU 0 (nginx: one worker; keel: its one thread), the clients CPU 1.
// Prints MB/s, the ratios keel/nginx, each server's CPU time per request, keel's peak RSS during
// the 64-connection runs, and the load average (1, 5, 15 min) before and after the measured runs.
// The 64-connection runs are repeated --rounds times, keel and nginx alternating (who goes first
// alternates too): one run each swings by ±15 % here, so the medians and the per-run range are
// what to read.
//   node --import tsx bench/http/run.ts [--size-mib 1024] [--seconds 10] [--rounds 3] [--keel-binary dist/keel]
// keel runs from the sources under tsx (bench/http/keel-server.ts), or, with --keel-binary, as the
// shipped executable (after ./build.sh): tsx adds work per closure that the bundle does not have.
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { execa, type ResultPromise } from 'execa';
import { seededBytes } from '../../test/helpers/seeded-bytes.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const MiB = 1024 * 1024;
const size = arg('size-mib', 1024) * MiB;
const seconds = arg('seconds', 10);
const rounds = arg('rounds', 3);
const work = mkdtempSync(join(tmpdir(), 'keel-bench-http-'));
chmodSync(work, 0o755);
const children: ResultPromise[] = [];
const cleanup = () => {
  // SIGTERM: nginx's master then stops its worker (SIGKILL would orphan it).
  for (const child of children) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
};
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

// The file, generated from a seed, for nginx; keel gets the same bytes by upload.
const filePath = join(work, 'www', 'bench.img');
mkdirSync(join(work, 'www'), { mode: 0o755 });
{
  const out = createWriteStream(filePath, { mode: 0o644 });
  for await (const piece of seededBytes(42, size, { pieceSize: MiB })) if (!out.write(piece)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

// nginx in the foreground with a generated config on a test port.
const nginxPort = 18600 + (process.pid % 1000);
const nginxConf = join(work, 'nginx.conf');
writeFileSync(nginxConf, `daemon off;
worker_processes 1;
worker_cpu_affinity 01;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${work}/nginx-body;
  server {
    listen 127.0.0.1:${nginxPort};
    root ${work}/www;
  }
}
`);
const nginx = execa('taskset', ['-c', '0', 'nginx', '-c', nginxConf, '-g', 'user root;'], { reject: false });
children.push(nginx);

// keel: a head on a free port (from source) or the next test port (binary), its data directory in the work dir.
const keelBinaryAt = process.argv.indexOf('--keel-binary');
const keelBinary = keelBinaryAt > 0 ? process.argv[keelBinaryAt + 1]! : undefined;
const keel = keelBinary === undefined
  ? execa('taskset', ['-c', '0', process.execPath, '--import', 'tsx', 'bench/http/keel-server.ts', '0', join(work, 'keel')], { reject: false, buffer: false })
  : execa('taskset', ['-c', '0', keelBinary, 'serve', '--data-dir', join(work, 'keel'), '--bind', '127.0.0.1', '--http-port', String(nginxPort + 1), '--tftp-port', String(nginxPort + 1)], {
    reject: false, buffer: false, env: { KEEL_ADMIN_PASSWORD: 'bench-password', KEEL_LOG_FORMAT: 'json', KEEL_LOG_LEVEL: 'warn' },
  });
children.push(keel);
const exited = keel.then((r) => Promise.reject(new Error(`keel exited before listening: ${String(r.stderr ?? r.exitCode)}`)));
const keelPid = keel.pid!; // taskset execs node (or the binary), and tsx runs in-process
const { port: keelPort, token } = keelBinary === undefined
  ? JSON.parse(((await Promise.race([once(keel.stdout!, 'data'), exited])) as [Buffer])[0].toString()) as { port: number; token: string }
  : await loginWhenListening(`http://127.0.0.1:${nginxPort + 1}/api/v1`, nginxPort + 1);

/** Polls the binary's login until it answers (it logs nothing at level warn when it starts). */
async function loginWhenListening(apiUrl: string, port: number): Promise<{ port: number; token: string }> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (keel.exitCode !== null) break;
    const reply = await fetch(`${apiUrl}/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass: 'bench-password' }) }).catch(() => undefined);
    if (reply?.ok) return { port, token: ((await reply.json()) as { data: { token: { access_token: string } } }).data.token.access_token };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('keel did not answer its login within 30 s');
}

const api = `http://127.0.0.1:${keelPort}/api/v1`;
await fetch(`${api}/images`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ name: 'bench' }) });
console.error(`uploading ${size / MiB} MiB to keel…`);
const uploadStart = performance.now();
// Chunked: this uWS build refuses a Content-Length of 10 or more digits (≥ 1e9 bytes).
await execa('curl', ['-sf', '-T', filePath, '-H', 'Transfer-Encoding: chunked', '-H', `Authorization: Bearer ${token}`, `${api}/image/bench/content`]);
const uploadSeconds = (performance.now() - uploadStart) / 1000;
const targets = { keel: `http://127.0.0.1:${keelPort}/boot/image/bench`, nginx: `http://127.0.0.1:${nginxPort}/bench.img` };
const baseRss = rssOf(keelPid);

/** Resident anonymous memory (heap, buffers): VmRSS also counts the LMDB map's file pages, which are page cache. */
function rssOf(pid: number, field: 'RssAnon' | 'VmRSS' = 'RssAnon'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
}

async function singleStream(url: string): Promise<number> {
  let best = 0;
  for (let i = 0; i < 3; i++) {
    const { stdout } = await execa('taskset', ['-c', '1', 'curl', '-sf', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url]);
    const [bytes, time] = stdout.split(' ').map(Number) as [number, number];
    if (bytes !== size) throw new Error(`${url}: got ${bytes} bytes, expected ${size}`);
    best = Math.max(best, bytes / time / 1e6);
  }
  return best;
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 10 ms). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** nginx's one worker: the master's child. */
function nginxWorkerPid(): number {
  const master = readFileSync(join(work, 'nginx.pid'), 'utf8').trim();
  return Number(readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(' ')[0]);
}

interface RangesRun { mbps: number; rps: number; errors: number; p99ms: number; cpuUsPerRequest: number; peakRss: number; peakTotal: number }

async function ranges(url: string, rangeSize: number, serverPid: number): Promise<RangesRun> {
  const { pathname, origin } = new URL(url);
  let peakRss = 0;
  let peakTotal = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssOf(keelPid));
    peakTotal = Math.max(peakTotal, rssOf(keelPid, 'VmRSS'));
  }, 100);
  const cpuBefore = cpuSecondsOf(serverPid);
  const { stdout } = await execa('taskset', ['-c', '1', 'wrk', '-t', '2', '-c', '64', '-d', `${seconds}s`, '-s', 'bench/http/ranges.lua', origin], {
    env: { BENCH_PATH: pathname, BENCH_FILE_SIZE: String(size), BENCH_RANGE_SIZE: String(rangeSize) },
  });
  const cpu = cpuSecondsOf(serverPid) - cpuBefore;
  clearInterval(sampler);
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { bytes: number; requests: number; errors: number; duration_us: number; p99_us: number };
  return {
    mbps: result.bytes / result.duration_us, rps: result.requests / (result.duration_us / 1e6), errors: result.errors, p99ms: result.p99_us / 1000,
    cpuUsPerRequest: (cpu * 1e6) / result.requests, peakRss, peakTotal,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const loadAverage = () => loadavg().map((l) => +l.toFixed(2));
const report: Record<string, unknown> = { size_mib: size / MiB, seconds, rounds, upload_mbps: +(size / uploadSeconds / 1e6).toFixed(0), load_average_before: loadAverage() };
console.error('single stream…');
const single = { keel: await singleStream(targets.keel), nginx: await singleStream(targets.nginx) };
report.single_stream_mbps = { keel: +single.keel.toFixed(0), nginx: +single.nginx.toFixed(0), ratio: +(single.keel / single.nginx).toFixed(2) };
let peak = 0;
let peakTotal = 0;
const nginxPid = nginxWorkerPid();
for (const rangeSize of [MiB, 64 * 1024]) {
  console.error(`64 connections, ${rangeSize / 1024} KiB ranges, ${rounds} rounds…`);
  const runs: { keel: RangesRun; nginx: RangesRun }[] = [];
  for (let round = 0; round < rounds; round++) {
    const run: Partial<{ keel: RangesRun; nginx: RangesRun }> = {};
    for (const side of round % 2 === 0 ? (['keel', 'nginx'] as const) : (['nginx', 'keel'] as const)) {
      run[side] = await ranges(targets[side], rangeSize, side === 'keel' ? keelPid : nginxPid);
    }
    runs.push(run as { keel: RangesRun; nginx: RangesRun });
  }
  for (const { keel: k } of runs) {
    peak = Math.max(peak, k.peakRss);
    peakTotal = Math.max(peakTotal, k.peakTotal);
  }
  const side = (name: 'keel' | 'nginx') => ({
    mbps: +median(runs.map((r) => r[name].mbps)).toFixed(0),
    rps: +median(runs.map((r) => r[name].rps)).toFixed(0),
    cpu_us_per_request: +median(runs.map((r) => r[name].cpuUsPerRequest)).toFixed(1),
    p99_ms: median(runs.map((r) => r[name].p99ms)),
    errors: runs.reduce((sum, r) => sum + r[name].errors, 0),
  });
  const ratios = runs.map((r) => r.keel.mbps / r.nginx.mbps);
  const keelSide = side('keel');
  const nginxSide = side('nginx');
  report[`c64_${rangeSize / 1024}KiB`] = {
    keel: keelSide,
    nginx: nginxSide,
    ratio: +(keelSide.mbps / nginxSide.mbps).toFixed(2),
    per_run_ratios: ratios.map((r) => +r.toFixed(2)),
  };
}
report.keel_rss_mb = {
  anon_before_ranges: +(baseRss / 1e6).toFixed(0),
  anon_peak_during_c64: +(peak / 1e6).toFixed(0),
  vmrss_peak_during_c64_incl_lmdb_map: +(peakTotal / 1e6).toFixed(0),
};
report.load_average_after = loadAverage();
console.log(JSON.stringify(report, null, 2));
process.exit(0);
