// Clone speed of a repository of 1,000 files: through keel (a public gitrepo, smart HTTP over
// uWebSockets.js, `git http-backend` per request) vs the same bare repository served directly by
// `git daemon` (git://) and by `git http-backend` behind a minimal node:http CGI server (what
// git's documentation sets up behind a web server). Clones alternate between the servers, each
// server cloned both ways: a normal clone (transfer + checkout of the 1,000 files, what a user
// waits for) and a bare one (the transfer alone, where the servers differ). Prints each server's
// medians and the ratios (keel's time / the reference's: above 1 is slower) as one JSON line.
//   node --import tsx bench/gitrepos/clone.ts [clones per server, default 15]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { RecentLog } from '../../src/log.js';
import { startHead } from '../../src/serve.js';
import { gitDaemonProgram } from '../../test/helpers/git.js';

const CLONES = Number(process.argv[2] ?? 15);
const FILES = 1000;
const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'b@x', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'b@x' };
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim();

const root = mkdtempSync(join(tmpdir(), 'keel-bench-git-'));
const children: ChildProcess[] = [];
try {
  // 1,000 text files of 1–3 KiB in 40 directories, one commit: a configuration repository grown large.
  const work = join(root, 'work');
  mkdirSync(work);
  git(work, 'init', '--quiet', '--initial-branch=main');
  let seed = 1;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
  for (let i = 0; i < FILES; i++) {
    mkdirSync(join(work, `dir${i % 40}`), { recursive: true });
    const lines = Array.from({ length: 20 + (next() % 40) }, () => `key${next()} = value ${next().toString(36)} ${next().toString(36)}`);
    writeFileSync(join(work, `dir${i % 40}`, `file${i}.conf`), lines.join('\n') + '\n');
  }
  git(work, 'add', '--all');
  git(work, 'commit', '--quiet', '-m', '1,000 files');
  const served = join(root, 'served');
  mkdirSync(served);
  // Filled by a push, like keel's: both hold the objects as the one pack a push leaves.
  git(root, 'init', '--quiet', '--bare', '--initial-branch=main', join(served, 'bench.git'));
  git(work, 'push', '--quiet', join(served, 'bench.git'), 'main');

  const dataDir = join(root, 'keel');
  const config = loadConfig({ file: '/dev/null', env: { KEEL_SERVER_DATA_DIR: dataDir, KEEL_SERVER_BIND: '127.0.0.1' } });
  const head = await startHead({ config: { ...config, http: { ...config.http, port: 0 }, tftp: { ...config.tftp, port: 0 } }, log: pino({ level: 'silent' }), recentLog: new RecentLog(), adminPassword: 'bench-password' });
  try {
    const api = `http://127.0.0.1:${head.httpPort}/api/v1`;
    const login = await fetch(`${api}/login`, { method: 'POST', body: JSON.stringify({ user: 'admin', pass: 'bench-password' }) });
    const token = ((await login.json()) as { data: { token: { access_token: string } } }).data.token.access_token;
    await fetch(`${api}/gitrepos`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ name: 'bench', public: true }) });
    const keelUrl = await (await fetch(`${api}/gitrepo/bench/url`)).text();
    // Not execFileSync: keel serves from this process, its event loop must keep running.
    await new Promise<void>((resolve, reject) => {
      const push = spawn('git', ['push', '--quiet', keelUrl.replace('http://', `http://git:${token}@`), 'main'], { cwd: work, env, stdio: 'ignore' });
      push.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`push to keel failed: ${code}`))));
    });

    const daemonPort = 19_418 + (process.pid % 1000);
    const daemon = spawn(gitDaemonProgram(), ['--reuseaddr', '--export-all', `--base-path=${served}`, '--listen=127.0.0.1', `--port=${daemonPort}`, served], { env, stdio: 'ignore' });
    children.push(daemon);
    const cgi = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const child = spawn('git', ['http-backend'], {
        env: { ...env, GIT_PROJECT_ROOT: served, GIT_HTTP_EXPORT_ALL: '1', PATH_INFO: url.pathname, QUERY_STRING: url.search.slice(1), REQUEST_METHOD: req.method ?? 'GET', CONTENT_TYPE: req.headers['content-type'] ?? '', HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '', GIT_PROTOCOL: String(req.headers['git-protocol'] ?? '') },
      });
      req.pipe(child.stdin);
      let head = Buffer.alloc(0);
      const onHead = (piece: Buffer) => {
        head = Buffer.concat([head, piece]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        child.stdout.off('data', onHead);
        const headers: Record<string, string> = {};
        let status = 200;
        for (const line of head.subarray(0, end).toString().split('\r\n')) {
          const [key, ...value] = line.split(':');
          if (key!.toLowerCase() === 'status') status = parseInt(value.join(':'), 10);
          else headers[key!] = value.join(':').trim();
        }
        res.writeHead(status, headers);
        res.write(head.subarray(end + 4));
        child.stdout.pipe(res);
      };
      child.stdout.on('data', onHead);
    });
    await new Promise<void>((resolve) => cgi.listen(0, '127.0.0.1', resolve));
    const cgiUrl = `http://127.0.0.1:${(cgi.address() as { port: number }).port}/bench.git`;
    const daemonUrl = `git://127.0.0.1:${daemonPort}/bench.git`;
    for (let i = 0; i < 100; i++) {
      try {
        git(root, 'ls-remote', daemonUrl);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const servers = { keel: keelUrl, 'git daemon': daemonUrl, 'http-backend (node:http CGI)': cgiUrl };
    const clones = join(root, 'clones');
    const cloneOnce = (args: string[], url: string) => new Promise<number>((resolve, reject) => {
      rmSync(clones, { recursive: true, force: true });
      const started = process.hrtime.bigint();
      const child = spawn('git', ['clone', '--quiet', ...args, url, clones], { env, stdio: 'ignore' });
      child.on('exit', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - started) / 1e6) : reject(new Error(`clone of ${url} failed: ${code}`))));
    });
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const report: Record<string, unknown> = { files: FILES, clones: CLONES };
    for (const [kind, args] of [['clone', []], ['bare', ['--bare']]] as const) {
      const times: Record<string, number[]> = Object.fromEntries(Object.keys(servers).map((name) => [name, []]));
      for (let round = 0; round <= CLONES; round++) {
        for (const [name, url] of Object.entries(servers)) {
          const ms = await cloneOnce([...args], url);
          if (round > 0) times[name]!.push(ms); // round 0 warms the page cache and git's binaries
        }
      }
      const medians = Object.fromEntries(Object.entries(times).map(([name, values]) => [name, Math.round(median(values) * 10) / 10]));
      report[`${kind}_median_ms`] = medians;
      report[`${kind}_keel_vs_daemon`] = Math.round((medians.keel! / medians['git daemon']!) * 100) / 100;
      report[`${kind}_keel_vs_http_backend`] = Math.round((medians.keel! / medians['http-backend (node:http CGI)']!) * 100) / 100;
    }
    console.log(JSON.stringify(report));
    cgi.close();
  } finally {
    await head.close();
  }
} finally {
  for (const child of children) if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
}
