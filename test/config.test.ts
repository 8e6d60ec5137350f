import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_SCHEMA, ConfigError, loadConfig, renderConfigTable, type LoadConfigOptions } from '../src/config.js';

const dir = mkdtempSync(join(tmpdir(), `keel-config-${process.pid}-`));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function tomlFile(text: string): string {
  const file = join(dir, `${fileCount++}.toml`);
  writeFileSync(file, text);
  return file;
}

// Every test names its inputs: no process.env, no default config file from the working directory.
const load = (opts: LoadConfigOptions = {}) =>
  loadConfig({ env: {}, isRoot: false, hostname: 'testhost', file: tomlFile(''), ...opts });

function loadError(t: import('ava').ExecutionContext, opts: LoadConfigOptions): string {
  return t.throws(() => load(opts), { instanceOf: ConfigError })?.message ?? '';
}

test('defaults without root: unprivileged ports and ./var', (t) => {
  t.deepEqual(load(), {
    server: { name: 'testhost', data_dir: './var', bind: '0.0.0.0' },
    http: { port: 8080, max_body_bytes: 1048576 },
    https: { enabled: false, port: 8443, cert_file: null, key_file: null, ca_file: null, extra_names: [] },
    auth: { access_token_ttl: 1200, refresh_token_ttl: 2592000 },
    store: { min_free_bytes: 268435456, change_log_retention: 100000 },
    tftp: {
      port: 6969, root: null, window_memory_bytes: 134217728, window_memory_per_source_bytes: 16777216,
      max_transfers: 4096, max_transfers_per_source: 64,
    },
    dhcp: { interfaces: [] },
    dns: { enabled: false, port: 1053, bind: '0.0.0.0', domain: 'cluster.local', upstreams: [], ttl: 60 },
    boot: { assets_dir: null },
    install: { clientpkgs_dir: null, max_expanded_bytes: 2147483648, ignition_bin: null, ignition_fetch_timeout: 10, ignition_max_bytes: 1048576 },
    build: { concurrency: 1, work_dir: null, ipxe_source: null },
    console: { device_patterns: ['/dev/ttyS*', '/dev/ttyUSB*'] },
    log: { level: 'info', format: 'auto' },
  });
});

test('console.device_patterns: absolute paths, from the file or a comma list in the environment; no ..', (t) => {
  t.deepEqual(load({ env: { KEEL_CONSOLE_DEVICE_PATTERNS: '/dev/ttyS*, /dev/ttyACM?' } }).console.device_patterns, ['/dev/ttyS*', '/dev/ttyACM?']);
  t.deepEqual(load({ file: tomlFile('[console]\ndevice_patterns = []\n') }).console.device_patterns, []);
  for (const bad of ['ttyS*', '/dev/ttyS*/../pts/*', '/dev/tty S0']) {
    t.regex(loadError(t, { file: tomlFile(`[console]\ndevice_patterns = [${JSON.stringify(bad)}]\n`) }), /^console\.device_patterns: must be a list of absolute device path patterns/, bad);
  }
});

test('defaults as root: standard ports and /var/lib/keel', (t) => {
  const config = load({ isRoot: true });
  t.is(config.server.data_dir, '/var/lib/keel');
  t.is(config.http.port, 80);
  t.is(config.tftp.port, 69);
  t.is(config.https.port, 443);
  t.is(config.dns.port, 53);
  t.is(config.boot.assets_dir, '/usr/share/keel/assets');
  t.is(load({ isRoot: true, env: { KEEL_BOOT_ASSETS_DIR: '' } }).boot.assets_dir, null, 'an empty variable unsets it');
});

test('the result is frozen', (t) => {
  const config = load({ file: tomlFile('[dhcp]\ninterfaces = ["eth0"]\n') });
  t.true(Object.isFrozen(config) && Object.isFrozen(config.http) && Object.isFrozen(config.dhcp.interfaces));
  t.throws(() => {
    (config.http as { port: number }).port = 1;
  });
});

test('the file sets every kind of value', (t) => {
  const file = tomlFile(`
[server]
name = "boot1"
data_dir = "/srv/keel"
bind = "::1"
[http]
max_body_bytes = 2048
[tftp]
port = 1069
root = "/srv/tftp"
[dhcp]
interfaces = ["eth1", "enp0s31f6"]
[log]
level = "debug"
`);
  const config = load({ file });
  t.deepEqual(config.server, { name: 'boot1', data_dir: '/srv/keel', bind: '::1' });
  t.deepEqual(config.http, { port: 8080, max_body_bytes: 2048 });
  t.like(config.tftp, { port: 1069, root: '/srv/tftp' });
  t.deepEqual(config.dhcp.interfaces, ['eth1', 'enp0s31f6']);
  t.deepEqual(config.log, { level: 'debug', format: 'auto' });
});

test('environment variables set every kind of value', (t) => {
  const config = load({
    env: {
      KEEL_SERVER_NAME: 'envhost',
      KEEL_SERVER_BIND: '127.0.0.1',
      KEEL_HTTP_MAX_BODY_BYTES: '4096',
      KEEL_AUTH_REFRESH_TOKEN_TTL: '60',
      KEEL_TFTP_ROOT: '/tftp',
      KEEL_DHCP_INTERFACES: 'eth0, eth1',
      KEEL_LOG_FORMAT: 'json',
      PATH: '/usr/bin', // not ours: ignored
    },
  });
  t.is(config.server.name, 'envhost');
  t.is(config.server.bind, '127.0.0.1');
  t.is(config.http.max_body_bytes, 4096);
  t.is(config.auth.refresh_token_ttl, 60);
  t.is(config.tftp.root, '/tftp');
  t.deepEqual(config.dhcp.interfaces, ['eth0', 'eth1']);
  t.is(config.log.format, 'json');
});

test('empty environment values clear a list and unset tftp.root', (t) => {
  const file = tomlFile('[tftp]\nroot = "/srv/tftp"\n[dhcp]\ninterfaces = ["eth0"]\n');
  const config = load({ file, env: { KEEL_TFTP_ROOT: '', KEEL_DHCP_INTERFACES: '' } });
  t.is(config.tftp.root, null);
  t.deepEqual(config.dhcp.interfaces, []);
});

test('precedence: defaults < file < environment < overrides', (t) => {
  const file = tomlFile('[http]\nport = 1001\n[tftp]\nport = 1002\n[auth]\naccess_token_ttl = 5\n');
  const env = { KEEL_HTTP_PORT: '2001', KEEL_TFTP_PORT: '2002' };
  const config = load({ file, env, overrides: { http: { port: 3001 } } });
  t.is(config.http.port, 3001); // file, env and override: override wins
  t.is(config.tftp.port, 2002); // file and env: env wins
  t.is(config.auth.access_token_ttl, 5); // file only
  t.is(config.auth.refresh_token_ttl, 2592000); // default
});

test('overrides accept flag text and skip flags that were not given', (t) => {
  const config = load({
    overrides: { http: { port: '8081' }, dhcp: { interfaces: 'eth0,eth1' }, tftp: { port: undefined } },
  });
  t.is(config.http.port, 8081);
  t.deepEqual(config.dhcp.interfaces, ['eth0', 'eth1']);
  t.is(config.tftp.port, 6969);
});

// Each bad value: [key, TOML value, env text, what the message must say].
const badValues: [string, string, string, string][] = [
  ['http.port', '"abc"', 'abc', 'must be an integer 1..65535'],
  ['http.port', '0', '0', 'must be an integer 1..65535'],
  ['tftp.port', '65536', '65536', 'must be an integer 1..65535'],
  ['http.port', '80.5', '80.5', 'must be an integer 1..65535'],
  ['http.max_body_bytes', '1023', '1023', 'must be an integer >= 1024'],
  ['auth.access_token_ttl', '0', '0', 'must be an integer >= 1'],
  ['auth.refresh_token_ttl', '-5', '-5', 'must be an integer >= 1'],
  ['server.name', '""', '', 'must be a non-empty string'],
  ['server.data_dir', '""', '', 'must be a non-empty string'],
  ['server.bind', '"localhost"', 'localhost', 'must be an IPv4 or IPv6 address literal'],
  ['server.bind', '"300.1.1.1"', '300.1.1.1', 'must be an IPv4 or IPv6 address literal'],
  ['dhcp.interfaces', '["eth0", "has space"]', 'eth0,has space', 'must be a list of interface names'],
  ['dhcp.interfaces', '["a/b"]', 'a/b', 'must be a list of interface names'],
  ['dhcp.interfaces', '["sixteen-chars-xx"]', 'sixteen-chars-xx', 'must be a list of interface names'],
  ['dns.enabled', '"yes"', 'yes', 'must be true or false'],
  ['dns.upstreams', '["10.0.0.1:99999"]', '10.0.0.1:99999', 'must be a list of IPv4 addresses, each optionally with :port'],
  ['dns.upstreams', '["dns.example"]', 'dns.example', 'must be a list of IPv4 addresses, each optionally with :port'],
  ['dns.domain', '"-bad.example"', '-bad.example', 'must be a DNS domain name'],
  ['log.level', '"verbose"', 'verbose', 'must be one of "trace", "debug", "info", "warn", "error", "fatal"'],
  ['log.format', '"xml"', 'xml', 'must be one of "auto", "json", "pretty"'],
];

for (const [key, tomlValue, envText, expected] of badValues) {
  const [section, name] = key.split('.') as [string, string];
  const envName = `KEEL_${section}_${name}`.toUpperCase();

  test(`bad ${key} = ${tomlValue} in the file names the key and the file`, (t) => {
    const file = tomlFile(`[${section}]\n${name} = ${tomlValue}\n`);
    const message = loadError(t, { file });
    t.true(message.startsWith(`${key}: ${expected}`), message);
    t.true(message.endsWith(`[from ${file}]`), message);
  });

  test(`bad ${envName}=${JSON.stringify(envText)} names the key and the variable`, (t) => {
    const message = loadError(t, { env: { [envName]: envText } });
    t.true(message.startsWith(`${key}: ${expected}`), message);
    t.true(message.endsWith(`[from ${envName}]`), message);
  });
}

test('a bad value in the environment quotes what was given', (t) => {
  t.is(
    loadError(t, { env: { KEEL_HTTP_PORT: 'abc' } }),
    'http.port: must be an integer 1..65535 (got "abc") [from KEEL_HTTP_PORT]',
  );
});

test('a bad override names the flag', (t) => {
  t.is(
    loadError(t, { overrides: { tftp: { port: '99999' } } }),
    'tftp.port: must be an integer 1..65535 (got 99999) [from --tftp-port]',
  );
});

test('every problem is reported at once', (t) => {
  const file = tomlFile('[http]\nport = "x"\n[log]\nlevel = "loud"\n');
  const lines = loadError(t, { file, env: { KEEL_TFTP_PORT: 'y' } }).split('\n');
  t.is(lines.length, 3);
  t.true(lines[0]!.startsWith('http.port:'));
  t.true(lines[1]!.startsWith('log.level:'));
  t.true(lines[2]!.startsWith('tftp.port:'));
});

test('an unknown key in the file is named, with the nearest known key', (t) => {
  const file = tomlFile('[http]\nprot = 8080\n');
  t.is(loadError(t, { file }), `unknown key http.prot (did you mean http.port?) [from ${file}]`);
});

test('an unknown section in the file is named', (t) => {
  const file = tomlFile('[htpp]\nport = 8080\n[frobnicate]\n');
  t.is(
    loadError(t, { file }),
    `unknown section [htpp] (did you mean [http]?) [from ${file}]\nunknown section [frobnicate] [from ${file}]`,
  );
});

test('a section given as a plain value is an error', (t) => {
  const file = tomlFile('http = 8080\n');
  t.is(loadError(t, { file }), `http: must be a table ([http]) (got 8080) [from ${file}]`);
});

test('an unknown KEEL_ variable is an error, with the nearest known one', (t) => {
  t.is(
    loadError(t, { env: { KEEL_HTTP_PROT: '80' } }),
    'unknown environment variable KEEL_HTTP_PROT (did you mean KEEL_HTTP_PORT?)',
  );
  t.is(loadError(t, { env: { KEEL_NOPE: '1' } }), 'unknown environment variable KEEL_NOPE');
});

test('KEEL_ADMIN_PASSWORD is not config and is accepted', (t) => {
  t.is(load({ env: { KEEL_ADMIN_PASSWORD: 'secret' } }).http.port, 8080);
});

test('an unknown override key is an error', (t) => {
  const overrides = { http: { prot: 1 } } as unknown as LoadConfigOptions['overrides'];
  t.is(loadError(t, { overrides }), 'unknown key http.prot [from command line]');
});

test('a TOML syntax error gives file, line and column', (t) => {
  const file = tomlFile('[http]\nport = 8080\nmax_body_bytes = = 1\n');
  const message = loadError(t, { file });
  t.true(message.startsWith(`${file}:3:18: TOML syntax error: `), message);
  t.true(message.includes('max_body_bytes = = 1'), message); // the offending line is shown
});

test('a config file named explicitly must exist', (t) => {
  const missing = join(dir, 'missing.toml');
  t.is(loadError(t, { file: missing }), `config file ${missing}: not found`);
  t.is(loadError(t, { file: undefined, env: { KEEL_CONFIG: missing } }), `config file ${missing}: not found`);
});

test('KEEL_CONFIG names the file when no file is given', (t) => {
  const file = tomlFile('[http]\nport = 9000\n');
  t.is(load({ file: undefined, env: { KEEL_CONFIG: file } }).http.port, 9000);
});

test.serial('without root, ./keel.toml is read if present and may be missing', (t) => {
  const cwd = process.cwd();
  const work = mkdtempSync(join(dir, 'cwd-'));
  process.chdir(work);
  t.teardown(() => process.chdir(cwd));
  t.is(load({ file: undefined }).http.port, 8080);
  writeFileSync(join(work, 'keel.toml'), '[http]\nport = 9001\n');
  t.is(load({ file: undefined }).http.port, 9001);
});

const docs = readFileSync(new URL('../docs/config.md', import.meta.url), 'utf8');

// The table in docs/config.md is generated from CONFIG_SCHEMA; this catches any drift.
test('docs/config.md holds the table rendered from CONFIG_SCHEMA', (t) => {
  const table = /<!-- config-table:begin[^>]*-->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(docs)?.[1];
  t.is(table, renderConfigTable(), 'regenerate the table: see docs/config.md');
});

test('docs/config.md lists every key with its default and variable', (t) => {
  const rows = docs.split('\n').filter((line) => line.startsWith('| `'));
  const keys = Object.entries(CONFIG_SCHEMA).flatMap(([section, keys]) => Object.keys(keys).map((k) => `${section}.${k}`));
  t.is(rows.length, keys.length + 4); // + the four non-config variables
  for (const key of keys) {
    const row = rows.find((r) => r.startsWith(`| \`${key}\` |`));
    t.truthy(row, `${key} missing from docs/config.md`);
    t.true(row!.includes(`\`KEEL_${key.replace('.', '_').toUpperCase()}\``), key);
  }
  // Spot-check defaults as a reader sees them, independently of the renderer.
  for (const [key, text] of [
    ['http.port', '80 as root, else 8080'],
    ['tftp.port', '69 as root, else 6969'],
    ['server.data_dir', '"/var/lib/keel" as root, else "./var"'],
    ['http.max_body_bytes', '1048576'],
    ['auth.refresh_token_ttl', '2592000'],
    ['log.level', '"info"'],
  ]) {
    t.true(rows.some((r) => r.startsWith(`| \`${key}\` |`) && r.includes(`| ${text} |`)), key);
  }
});

test('the example in docs/config.md is a valid config', (t) => {
  const example = /```toml\n([\s\S]*?)```/.exec(docs)?.[1] ?? '';
  const config = load({ file: tomlFile(example) });
  t.is(config.server.name, 'boot1');
  t.deepEqual(config.dhcp.interfaces, ['eth1', 'eth2']);
});
