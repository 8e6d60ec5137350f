// The CLI's client commands (issue 25, item 1) run as the bundle (dist/keel.cjs, what the single
// binary embeds) against a real head on loopback: login (stdin and a prompt on a pty), the token
// file and its refresh, nodes, attributes and groups, images and boot configs, power against
// ipmi_sim, the console on a pty (script) with the detach escape, the boot timeline, exec against
// an sshd of the test's own, usage errors and completion scripts. Each test has its own config
// directory (XDG_CONFIG_HOME) and head. Serial: each test runs a dozen CLI processes, and all of a
// file's tests at once on a loaded two-core machine once kept the console test's CLI from starting
// within 30 s.
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ADMIN_PASSWORD, startTestHead, type TestHead } from './helpers/head.js';
import { BUNDLE, buildBundle, runKeel } from './helpers/keel-cli.js';
import { startSshd, waitFor } from './helpers/sshd.js';
import { SIM_PASSWORD, SIM_USER, startIpmiSim } from './power/ipmi-sim.js';

test.before(buildBundle);

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The environment of a user whose config directory is `config`: no password, user or head from the caller's. */
function userEnv(config: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: config };
  delete env.KEEL_PASSWORD;
  delete env.KEEL_URL;
  delete env.KEEL_USER;
  return env;
}

/** A user of the CLI: `run(args, input)` runs it with stdin a pipe carrying `input` (not a terminal). */
function cliUser(t: ExecutionContext) {
  const config = tempDir(t, 'keel-cli-config-');
  const env = userEnv(config);
  const run = (args: string[], input = '') => runKeel(args, env, input);
  return { config, env, run, tokenFile: join(config, 'keel', 'cli.json') };
}

type User = ReturnType<typeof cliUser>;

/** A head and a user logged in to it (password on stdin). */
async function loggedIn(t: ExecutionContext, env: Record<string, string> = {}): Promise<{ h: TestHead; user: User; url: string }> {
  const h = await startTestHead(t, env);
  const user = cliUser(t);
  const url = `http://127.0.0.1:${h.head.httpPort}`;
  const login = await user.run(['login', '--url', url], `${ADMIN_PASSWORD}\n`);
  if (login.code !== 0) throw new Error(`login failed: ${login.stderr}`);
  return { h, user, url };
}

const quote = (word: string) => `'${word.replace(/'/g, `'\\''`)}'`;

/**
 * The CLI on a pseudo-terminal (util-linux `script`): what we write goes to its terminal, what it
 * prints (stdout and stderr, the terminal's) comes back in `output()`. Killed by pid at teardown.
 */
function onPty(t: ExecutionContext, env: NodeJS.ProcessEnv, args: string[]) {
  const child = spawn('script', ['-qfec', [process.execPath, BUNDLE, ...args].map(quote).join(' '), '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('latin1')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('latin1')));
  const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  });
  return {
    output: () => output,
    type: (text: string) => child.stdin.write(text),
    exited,
    waitFor: (text: string, ms = 120_000) => waitFor(`${JSON.stringify(text)} on the terminal (so far: ${JSON.stringify(output.slice(-500))})`, () => output.includes(text), ms),
  };
}

const data = async (h: TestHead, path: string) => (await h.call('GET', path, { token: (await h.login()).access_token })).json.data;

test.serial('login reads the password from stdin and keeps the tokens in a 0600 file; the head becomes the default; logout forgets it', async (t) => {
  const h = await startTestHead(t);
  const user = cliUser(t);
  const url = `http://127.0.0.1:${h.head.httpPort}`;

  const wrong = await user.run(['login', '--url', url], 'not-the-password\n');
  t.is(wrong.code, 1);
  t.is(wrong.stderr, 'Invalid user name or password\n');

  const login = await user.run(['login', '--url', url], `${ADMIN_PASSWORD}\n`);
  t.is(login.code, 0, login.stderr);
  t.is(login.stdout, `logged in to ${url} as admin (tokens in ${user.tokenFile})\n`);
  t.is(statSync(user.tokenFile).mode & 0o777, 0o600);
  t.is(statSync(join(user.config, 'keel')).mode & 0o777, 0o700);
  const stored = JSON.parse(readFileSync(user.tokenFile, 'utf8')) as { default_url: string; heads: Record<string, { user: string; access_token: string; refresh_token: string }> };
  t.is(stored.default_url, url);
  const tokens = stored.heads[`${url}/api/v1`]!;
  t.is(tokens.user, 'admin');
  // The stored token is one the head takes.
  t.like((await h.call('GET', '/whoami', { token: tokens.access_token })).json.data as object, { user: 'admin' });
  t.not(tokens.refresh_token, tokens.access_token);
  t.false(readFileSync(user.tokenFile, 'utf8').includes(ADMIN_PASSWORD), 'no password stored');

  // No --url: the last login's head.
  const ls = await user.run(['node', 'ls']);
  t.is(ls.code, 0, ls.stderr);
  t.is(ls.stdout, 'NAME  MAC  IP  TYPE  GROUPS\n');

  t.is((await user.run(['logout'])).stdout, `logged out of ${url}\n`);
  const after = await user.run(['node', 'ls', '--url', url]);
  t.is(after.code, 1);
  t.is(after.stderr, `Not logged in to ${url}: run keel login --url ${url}\n`);
  t.is((await user.run(['node', 'ls', '--url', 'http://127.0.0.1:1'])).stderr, 'Not logged in to http://127.0.0.1:1: run keel login --url http://127.0.0.1:1\n');
});

test.serial('an expired access token is refreshed with the refresh token and stored; an expired refresh token says to log in', async (t) => {
  const { h, user, url } = await loggedIn(t);
  const before = JSON.parse(readFileSync(user.tokenFile, 'utf8')) as { heads: Record<string, { access_token: string; refresh_token: string }> };
  // Past the access token's lifetime (auth.access_token_ttl, 1200 s) on the head's clock.
  h.advance(1300);
  t.is((await h.call('GET', '/whoami', { token: before.heads[`${url}/api/v1`]!.access_token })).status, 401, 'the stored access token has expired');
  const ls = await user.run(['node', 'ls', '--json']);
  t.is(ls.code, 0, ls.stderr);
  t.deepEqual(JSON.parse(ls.stdout), {});
  const after = JSON.parse(readFileSync(user.tokenFile, 'utf8')) as typeof before;
  const refreshed = after.heads[`${url}/api/v1`]!;
  t.not(refreshed.access_token, before.heads[`${url}/api/v1`]!.access_token);
  t.is((await h.call('GET', '/whoami', { token: refreshed.access_token })).status, 200, 'the new access token works');
  t.is(statSync(user.tokenFile).mode & 0o777, 0o600, 'still 0600 after the rewrite');

  // Past the refresh token's lifetime (auth.refresh_token_ttl, 30 days) too.
  h.advance(31 * 24 * 3600);
  const expired = await user.run(['node', 'ls']);
  t.is(expired.code, 1);
  t.regex(expired.stderr, new RegExp(`^Session with ${url.replace(/\./g, '\\.')} expired \\(.+\\): run keel login\\n$`));
});

test.serial('login prompts for the password on a terminal without echoing it', async (t) => {
  const h = await startTestHead(t);
  const config = tempDir(t, 'keel-cli-config-');
  const url = `http://127.0.0.1:${h.head.httpPort}`;
  const pty = onPty(t, userEnv(config), ['login', '--url', url, '--user', 'admin']);
  await pty.waitFor(`Password for admin at ${url}: `);
  pty.type(`${ADMIN_PASSWORD}\r`);
  t.is(await pty.exited, 0, pty.output());
  t.regex(pty.output(), /logged in to .* as admin/);
  t.false(pty.output().includes(ADMIN_PASSWORD), 'the password is not echoed');
});

test.serial('node create, ls (table, --json, --selector), show, set, rm; attrib set/unset/ls; group create/assign/ls/unassign/rm', async (t) => {
  const { h, user } = await loggedIn(t);
  const group = await user.run(['group', 'create', 'rack1', 'rack=r1', 'site=lab', '--description', 'first rack']);
  t.is(group.code, 0, group.stderr);
  t.regex(group.stdout, /^created rack1 [0-9a-f]{32}\n$/);

  const created: string[] = [];
  for (const [mac, extra] of [['52:54:00:00:30:01', ['--group', 'rack1']], ['52:54:00:00:30:02', ['--attr', 'rack=r2', '--type', 'simulated']], ['52:54:00:00:30:03', []]] as const) {
    const run = await user.run(['node', 'create', '--mac', mac, ...extra, '--json']);
    t.is(run.code, 0, run.stderr);
    created.push((JSON.parse(run.stdout) as { name: string }).name);
  }
  const nodes = (await data(h, '/nodes')) as Record<string, { name: string; mac: string; ip?: string; type: string }>;
  t.deepEqual(Object.values(nodes).map((n) => n.name).sort(), [...created].sort());

  // The table: upper-case headers, columns aligned (each value starts where its header does).
  const table = await user.run(['node', 'ls']);
  t.is(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split('\n');
  t.is(lines.length, 4);
  t.regex(lines[0]!, /^NAME\s+MAC\s+IP\s+TYPE\s+GROUPS$/);
  const macAt = lines[0]!.indexOf('MAC');
  const typeAt = lines[0]!.indexOf('TYPE');
  for (const line of lines.slice(1)) {
    t.regex(line.slice(macAt), /^52:54:00:00:30:0\d /, line);
    t.regex(line.slice(typeAt), /^(compute|simulated)\b/, line);
  }
  const first = lines.find((line) => line.includes('52:54:00:00:30:01'))!;
  t.true(first.endsWith('rack1'), 'groups by name');

  // --json is the API's data.
  t.deepEqual(JSON.parse((await user.run(['node', 'ls', '--json'])).stdout), nodes);
  // --selector: merged attributes, the group's and the node's own.
  const r1 = JSON.parse((await user.run(['node', 'ls', '--json', '--selector', 'a[rack] == "r1"'])).stdout) as Record<string, { mac: string }>;
  t.deepEqual(Object.values(r1).map((n) => n.mac), ['52:54:00:00:30:01']);
  const racked = (await user.run(['node', 'ls', '--selector', 'a[rack]'])).stdout.trimEnd().split('\n');
  t.is(racked.length, 3, 'header and the two nodes with a rack');
  const badSelector = await user.run(['node', 'ls', '--selector', 'a[rack] ==']);
  t.is(badSelector.code, 1);
  t.regex(badSelector.stderr, /^Selector at column \d+: /);

  // show: fields, then merged attributes.
  const name = created[0]!;
  const show = await user.run(['node', 'show', name]);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /^FIELD\s+VALUE\n/);
  t.regex(show.stdout, /\nmac\s+52:54:00:00:30:01\n/);
  t.regex(show.stdout, /\ngroups\s+rack1\n/);
  t.regex(show.stdout, /\nATTRIBUTE\s+VALUE\n(.*\n)*rack\s+r1\n/);
  t.like(JSON.parse((await user.run(['node', 'show', '52-54-00-00-30-01', '--json'])).stdout) as object, { name, mac: '52:54:00:00:30:01' });

  // set, attrib set/unset/ls.
  t.is((await user.run(['node', 'set', name, '--description', 'top of rack', '--power-uri', 'ipmi://<bmc>'])).code, 0);
  t.like((await data(h, `/node/${name}`)) as object, { description: 'top of rack', power_uri: 'ipmi://<bmc>' });
  t.is((await user.run(['attrib', 'set', name, 'bmc=10.0.0.9', 'rack=r9'])).stdout, `set bmc, rack on ${name}\n`);
  t.like((await data(h, `/node/${name}/attributes`)) as object, { bmc: '10.0.0.9', rack: 'r9', site: 'lab' });
  t.deepEqual(JSON.parse((await user.run(['attrib', 'ls', name, '--json'])).stdout), await data(h, `/node/${name}/attributes`));
  t.is((await user.run(['attrib', 'unset', name, 'rack'])).code, 0);
  t.like((await data(h, `/node/${name}/attributes`)) as object, { rack: 'r1' }, 'the group\'s rack shows again');
  t.is((await user.run(['attrib', 'set', 'rack1', 'rack=R1', '--group'])).code, 0);
  t.like((await data(h, '/attrib/rack1')) as object, { attributes: { rack: 'R1', site: 'lab' } });

  // groups: assign, ls, unassign, rm (refused while used).
  t.is((await user.run(['group', 'create', 'gpu'])).code, 0);
  t.is((await user.run(['group', 'assign', created[1]!, 'gpu', 'rack1'])).stdout, `${created[1]}: groups gpu, rack1\n`);
  const groups = (await user.run(['group', 'ls'])).stdout;
  t.regex(groups, /^NAME\s+ATTRIBUTES\s+DESCRIPTION\ngpu\s*\nrack1\s+rack=R1,site=lab\s+first rack\n$/);
  const inUse = await user.run(['group', 'rm', 'gpu']);
  t.is(inUse.code, 1);
  t.is(inUse.stderr, 'gpu: Cannot delete attribute group gpu: still used by 1 node(s)\n');
  t.is((await user.run(['group', 'unassign', created[1]!, 'gpu'])).stdout, `${created[1]}: groups rack1\n`);
  t.is((await user.run(['group', 'rm', 'gpu'])).stdout, 'deleted gpu\n');

  // rm: each target's outcome; one unknown node fails the command but not the others.
  const rm = await user.run(['node', 'rm', created[2]!, 'no-such-node']);
  t.is(rm.code, 1);
  t.is(rm.stdout, `deleted ${created[2]}\n`);
  t.regex(rm.stderr, /^no-such-node: .+\n$/);
  t.is(Object.keys((await data(h, '/nodes')) as object).length, 2);
});

test.serial('image upload with a progress bar, image ls and rm; bootconfig ls and rm', async (t) => {
  const { h, user } = await loggedIn(t);
  const dir = tempDir(t, 'keel-cli-files-');
  const content = Buffer.concat([Buffer.from('hsqs'), randomBytes(2 * 1024 * 1024)]);
  writeFileSync(join(dir, 'rootfs.squashfs'), content);
  const upload = await user.run(['image', 'upload', join(dir, 'rootfs.squashfs'), '--name', 'Debian', '--description', 'lab image']);
  t.is(upload.code, 0, upload.stderr);
  t.regex(upload.stdout, /^uploaded Debian [0-9a-f]{32}\n$/);
  // Off a terminal the bar is plain lines on stderr: bytes, rate and ETA.
  t.regex(upload.stderr.trim().split('\n').at(-1)!, /^rootfs\.squashfs: 2\.0 MiB of 2\.0 MiB \(100%\), [\d.]+ (B|KiB|MiB|GiB)\/s, ETA \S+$/);
  const res = await fetch(`${h.base}/image/Debian/content`, { headers: { authorization: `Bearer ${(await h.login()).access_token}` } });
  t.deepEqual(Buffer.from(await res.arrayBuffer()), content);

  const ls = await user.run(['image', 'ls']);
  t.regex(ls.stdout, /^NAME\s+FORMAT\s+SIZE\s+DESCRIPTION\nDebian\s+squashfs\s+2\.0 MiB\s+lab image\n$/);
  t.deepEqual(JSON.parse((await user.run(['image', 'ls', '--json'])).stdout), await data(h, '/images'));

  const token = (await h.login()).access_token;
  t.is((await h.call('POST', '/bootconfigs', { token, body: { name: 'Boot1', image: 'Debian', cmdline: 'console=ttyS0' } })).status, 200);
  const configs = await user.run(['bootconfig', 'ls']);
  t.regex(configs.stdout, /^NAME\s+IMAGE\s+STYLE\s+KERNEL\s+INITRAMFS\s+CMDLINE\nBoot1\s+Debian\s+rwram\s+console=ttyS0\n$/);
  const inUse = await user.run(['image', 'rm', 'Debian']);
  t.is(inUse.code, 1);
  t.regex(inUse.stderr, /still used by boot config Boot1/);
  t.is((await user.run(['bootconfig', 'rm', 'Boot1'])).stdout, 'deleted Boot1\n');
  t.is((await user.run(['image', 'rm', 'Debian'])).stdout, 'deleted Debian\n');
  t.deepEqual(await data(h, '/images'), {});
});

test.serial('power status, on, off, cycle and bootdev over a node, a comma list and a selector, against ipmi_sim', async (t) => {
  const { h, user } = await loggedIn(t);
  const sim = await startIpmiSim({ power: false });
  t.teardown(() => sim.stop());
  const token = (await h.login()).access_token;
  // ipmi_sim reports max privilege 0 in Open Session: FreeIPMI needs -W opensesspriv (test/power-ipmi.test.ts).
  await h.call('POST', '/attribs', { token, body: { name: 'bmcs', attributes: { ipmi_workarounds: 'opensesspriv', ipmi_session_timeout_ms: '2000', ipmi_user: SIM_USER, ipmi_pass: SIM_PASSWORD, bmc: `${sim.host}:${sim.port}`, rack: 'r1' } } });
  const names: string[] = [];
  for (const mac of ['52:54:00:00:40:01', '52:54:00:00:40:02']) {
    const run = await user.run(['node', 'create', '--mac', mac, '--group', 'bmcs', '--power-uri', 'ipmi://<ipmi_user>:<ipmi_pass>@<bmc>', '--json']);
    names.push((JSON.parse(run.stdout) as { name: string }).name);
  }
  const [a, b] = names as [string, string];

  const status = await user.run(['power', 'status', a]);
  t.is(status.code, 0, status.stderr);
  t.is(status.stdout, `NODE${' '.repeat(Math.max(a.length - 4, 0))}  STATE  REASON\n${a}${' '.repeat(Math.max(4 - a.length, 0))}  off\n`);
  const on = await user.run(['power', 'on', `${a},${b}`, '--json']);
  t.is(on.code, 0, on.stderr);
  t.like(JSON.parse(on.stdout) as object, { ok: 2, failed: 0 });
  t.is(sim.power(), '1');
  const both = JSON.parse((await user.run(['power', 'status', '--selector', 'a[rack] == "r1"', '--json'])).stdout) as { name: string; state: string }[];
  t.deepEqual(both.map((s) => [s.name, s.state]).sort(), [[a, 'on'], [b, 'on']]);
  const cycle = await user.run(['power', 'cycle', a]);
  t.is(cycle.code, 0, cycle.stderr);
  t.regex(cycle.stdout, new RegExp(`^NODE\\s+STATE\\s+OUTCOME\\s+REASON\\n${a}\\s+on\\s+done\\n$`));
  const off = await user.run(['power', 'off', a, '--force']);
  t.is(off.code, 0, off.stderr);
  t.is(sim.power(), '0');

  t.regex((await user.run(['power', 'bootdev', a, 'pxe'])).stdout, new RegExp(`\\n${a}\\s+pxe\\n$`));
  t.is(sim.boot(), 'pxe');
  t.regex((await user.run(['power', 'bootdev', '--selector', 'a[rack] == "r1"'])).stdout, new RegExp(`\\n${a}\\s+pxe\\n`));

  // A BMC that does not answer: the command fails (exit 1) with the reason in the table.
  await h.call('PATCH', `/node/${b}/attributes`, { token, body: { bmc: '127.0.0.1:1' } });
  const failed = await user.run(['power', 'on', `${a},${b}`]);
  t.is(failed.code, 1);
  t.regex(failed.stdout, new RegExp(`\\n${b}\\s+\\S+\\s+failed\\s+\\S.*\\n`));
});

test.serial('console attaches on a terminal in raw mode, passes keys through, and detaches with ~. after a newline', async (t) => {
  const { user, url } = await loggedIn(t);
  // The node's console line: a terminal server port played by the test (console=tcp).
  let line: Socket | undefined;
  let received = Buffer.alloc(0);
  const server = createServer((socket) => {
    line = socket;
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    line?.destroy();
    server.close();
  });
  const node = (JSON.parse((await user.run(['node', 'create', '--mac', '52:54:00:00:50:01', '--attr', 'console=tcp', '--attr', `console_address=127.0.0.1:${(server.address() as AddressInfo).port}`, '--json'])).stdout) as { name: string }).name;
  await waitFor('keel to connect to the console line', () => line !== undefined, 120_000);

  const pty = onPty(t, user.env, ['console', node, '--url', url]);
  await pty.waitFor(`[attached to ${node}; ~. to detach, ~? for help]`);
  line!.write('login: ');
  await pty.waitFor('login: ');
  // Raw mode: Ctrl-C goes to the node, not to the CLI; `~` inside a line is an ordinary key; `~~` at a line start is one `~`.
  pty.type('root\r');
  pty.type('\u0003');
  pty.type('a~b\r');
  pty.type('~~x\r');
  await waitFor('the keys at the console line', () => received.toString('latin1') === 'root\r\u0003a~b\r~x\r', 120_000);
  pty.type('~?');
  await pty.waitFor('~.  detach from the console');
  pty.type('~.');
  t.is(await pty.exited, 0, pty.output());
  t.true(pty.output().includes(`[detached from ${node}]`));
  t.is(received.toString('latin1'), 'root\r\u0003a~b\r~x\r', 'the escapes were not sent');
  t.false(pty.output().includes('root'), 'no echo from the terminal (raw mode)');
});

test.serial('console refusals carry the API reason', async (t) => {
  const { user } = await loggedIn(t);
  const node = (JSON.parse((await user.run(['node', 'create', '--mac', '52:54:00:00:50:02', '--json'])).stdout) as { name: string }).name;
  const run = await user.run(['console', node]);
  t.is(run.code, 1);
  t.is(run.stderr, `Node ${node} has no console capture (set its 'console' attribute)\n`);
});

test.serial('boot prints the node\'s boot timeline', async (t) => {
  const { h, user, url } = await loggedIn(t);
  const node = (JSON.parse((await user.run(['node', 'create', '--mac', '52:54:00:00:60:01', '--json'])).stdout) as { name: string }).name;
  t.is((await user.run(['boot', node])).stdout, `${node}: no boot recorded since the head started\n`);
  // The node's iPXE fetching its script: without a boot config it gets a retry script, the script phase.
  const script = await fetch(`${url}/boot/ipxe?mac=52:54:00:00:60:01`);
  t.is(script.status, 200);
  await script.text();
  const run = await user.run(['boot', node]);
  t.is(run.code, 0, run.stderr);
  t.regex(run.stdout, new RegExp(`^${node} last boot: started \\S+ by script, reached script, [\\d.]+ s\\n\\nPHASE\\s+START\\s+SECONDS\\s+COUNT\\s+BYTES\\s+DETAIL\\nscript\\s+\\S+\\s+[\\d.]+\\s+1\\s+.*retries=1.*\\n\\nAT\\s+EVENT\\s+REPEATED\\s+DETAIL\\n\\S+\\s+retry-script\\s+.*problem=`));
  t.deepEqual(JSON.parse((await user.run(['boot', node, '--json'])).stdout), await data(h, `/node/${node}/boot`));
});

test.serial('exec runs the command on the node over SSH: stdout streamed, stderr, its exit code, --stdin, --json', async (t) => {
  const { h, user } = await loggedIn(t);
  const token = (await h.login()).access_token;
  const cluster = (await h.call('GET', '/cluster', { token })).json.data as { heads: { ssh_public: string }[] };
  const sshd = await startSshd(t, cluster.heads[0]!.ssh_public);
  t.is((await h.call('POST', '/nets', { token, body: { first_ip: '127.0.0.1', ip_count: 16, mask_bits: 8 } })).status, 200);
  const node = (JSON.parse((await user.run(['node', 'create', '--mac', '52:54:00:00:70:01', '--attr', `_ssh_port=${sshd.port}`, '--json'])).stdout) as { name: string }).name;

  const run = await user.run(['exec', node, '--', 'echo hello; echo oops >&2; id -un; exit 3']);
  t.deepEqual(run, { code: 3, stdout: 'hello\nroot\n', stderr: 'oops\n' });
  // Output that contains the status marker's text is still the command's.
  const tricky = await user.run(['exec', node, '--', 'printf', `'a\\nkeel-exec-status: {}\\nb'`]);
  t.deepEqual(tricky, { code: 0, stdout: 'a\nkeel-exec-status: {}\nb', stderr: '' });
  const input = await user.run(['exec', node, '--stdin', '--', 'tr', 'a-z', 'A-Z'], 'abc\nxyz\n');
  t.deepEqual(input, { code: 0, stdout: 'ABC\nXYZ\n', stderr: '' });
  const json = await user.run(['exec', node, '--json', '--', 'echo hi; exit 4']);
  t.is(json.code, 4);
  t.deepEqual(JSON.parse(json.stdout), { stdout: 'hi\n', exit: 4, signal: null, stderr: '', stderr_truncated: false });
  // A node that cannot be reached: the head's 502 reason, exit 1.
  await h.call('PATCH', `/node/${node}/attributes`, { token, body: { _ssh_port: '1' } });
  const refused = await user.run(['exec', node, '--', 'true']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, new RegExp(`^Node ${node}: connect failed: `));
});

test.serial('usage errors exit with 2, failures with 1, help with 0', async (t) => {
  const user = cliUser(t);
  for (const args of [['nodes'], ['node', 'show'], ['node', 'ls', '--bogus'], ['node'], ['completion', 'fish'], ['power', 'bootdev', 'n1', 'floppy'],
    ['node', 'create', '--mac', '52:54:00:00:00:01', '--type', 'toaster', '--url', 'http://127.0.0.1:1']]) {
    const run = await user.run(args);
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.not(run.stderr, '', args.join(' '));
  }
  // Usage errors the CLI finds itself, before asking any head.
  for (const [args, reason] of [
    [['node', 'set', 'n1', '--url', 'http://127.0.0.1:1'], /^Nothing to set: /],
    [['attrib', 'set', 'n1', 'rack', '--url', 'http://127.0.0.1:1'], /^"rack": expected KEY=VALUE\n$/],
    [['power', 'on', 'n1', '--selector', 'a[x]', '--url', 'http://127.0.0.1:1'], /^Name the nodes: /],
    [['power', 'status', '--url', 'http://127.0.0.1:1'], /^Name the nodes: /],
  ] as const) {
    const run = await user.run([...args]);
    t.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.regex(run.stderr, reason);
  }
  t.is((await user.run(['node', 'ls', '--help'])).code, 0);
  t.is((await user.run(['--version'])).code, 0);
  // A head that is not there: a failure, not a usage error.
  const down = await user.run(['login', '--url', 'http://127.0.0.1:1'], 'pw\n');
  t.is(down.code, 1);
  t.regex(down.stderr, /^Cannot reach keel at http:\/\/127\.0\.0\.1:1\/api\/v1: /);
});

test.serial('completion scripts for bash and zsh complete commands and options', async (t) => {
  const user = cliUser(t);
  const bash = await user.run(['completion', 'bash']);
  t.is(bash.code, 0, bash.stderr);
  const dir = tempDir(t, 'keel-completion-');
  writeFileSync(join(dir, 'keel.bash'), bash.stdout);
  const complete = async (line: string[]) => {
    const script = `source ${join(dir, 'keel.bash')}; COMP_WORDS=(${line.map(quote).join(' ')}); COMP_CWORD=${line.length - 1}; _keel; printf '%s\\n' "\${COMPREPLY[@]}"`;
    return (await promisify(execFile)('bash', ['-c', script])).stdout.trim().split('\n').sort();
  };
  t.deepEqual(await complete(['keel', 'no']), ['node']);
  t.deepEqual(await complete(['keel', 'power', '']), ['bootdev', 'cycle', 'off', 'on', 'reset', 'soft', 'status']);
  t.deepEqual(await complete(['keel', 'image', '']), ['import', 'ls', 'rm', 'upload']);
  t.deepEqual(await complete(['keel', 'node', 'ls', '--s']), ['--selector']);
  t.deepEqual(await complete(['keel', 'power', 'off', 'n1', '--f']), ['--force']);

  const zsh = await user.run(['completion', 'zsh']);
  t.is(zsh.code, 0, zsh.stderr);
  t.true(zsh.stdout.startsWith('#compdef keel\n'));
  writeFileSync(join(dir, '_keel'), zsh.stdout);
  // zsh parses it (zsh -n) and its _keel offers what the words so far call for, to a compadd that
  // prints them (zsh's own filters them by the prefix typed).
  const zshComplete = async (words: string[]) => {
    const script = `zsh -n ${join(dir, '_keel')} || exit 1; source ${join(dir, '_keel')} 2>/dev/null; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }; `
      + `words=(${words.map(quote).join(' ')}); CURRENT=${words.length}; PREFIX=${quote(words.at(-1)!)}; _keel`;
    return (await promisify(execFile)('zsh', ['-c', script])).stdout.trim().split('\n').sort();
  };
  t.deepEqual(await zshComplete(['keel', 'attrib', '']), ['ls', 'set', 'unset']);
  t.true((await zshComplete(['keel', 'node', 'ls', '--s'])).includes('--selector'));
});
