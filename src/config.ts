// keel configuration: one TOML file, KEEL_<SECTION>_<KEY> environment overrides and CLI overrides,
// all checked against CONFIG_SCHEMA. Any unknown key or bad value stops start-up with a ConfigError
// naming the key, the problem and where the value came from.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { parse as parseToml, TomlError } from 'smol-toml';

export interface KeelConfig {
  server: { name: string; data_dir: string; bind: string };
  http: { port: number; max_body_bytes: number };
  https: { enabled: boolean; port: number; cert_file: string | null; key_file: string | null; ca_file: string | null; extra_names: string[] };
  auth: { access_token_ttl: number; refresh_token_ttl: number };
  store: { min_free_bytes: number; change_log_retention: number };
  tftp: {
    port: number;
    root: string | null;
    window_memory_bytes: number;
    window_memory_per_source_bytes: number;
    max_transfers: number;
    max_transfers_per_source: number;
  };
  dhcp: { interfaces: string[] };
  dns: { enabled: boolean; port: number; bind: string; domain: string; upstreams: string[]; ttl: number };
  boot: { assets_dir: string | null };
  install: {
    clientpkgs_dir: string | null;
    max_expanded_bytes: number;
    ignition_bin: string | null;
    ignition_fetch_timeout: number;
    ignition_max_bytes: number;
  };
  build: { concurrency: number; work_dir: string | null; ipxe_source: string | null };
  console: { device_patterns: string[] };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'; format: 'auto' | 'json' | 'pretty' };
}

/** Command-line values for loadConfig: typed, or the flag's raw text (read like an env value). */
export type ConfigOverrides = { [S in keyof KeelConfig]?: { [K in keyof KeelConfig[S]]?: KeelConfig[S][K] | string } };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Variables starting with KEEL_ that are not config keys, so they are not rejected as unknown. */
export const NON_CONFIG_ENV: readonly string[] = Object.freeze([
  'KEEL_CONFIG', // path of the config file (same as --config)
  'KEEL_ADMIN_PASSWORD', // password of the initial admin account, used when the database has none
  'KEEL_PASSWORD', // password the CLI's API commands (keel image import, keel bootconfig create) log in with
  'KEEL_CA', // PEM file of CA certificates the CLI trusts for https:// heads, besides the system's
]);

/** Config file read when neither opts.file nor KEEL_CONFIG names one; a missing default file is fine. */
export const DEFAULT_CONFIG_FILE = { root: '/etc/keel/keel.toml', user: './keel.toml' } as const;

export interface HostFacts {
  isRoot: boolean;
  hostname: string;
}

/** How one kind of value is checked, read from text (env, CLI) and described in docs and errors. */
interface ValueType<T> {
  /** Completes "must be …" in errors; also the Type column of docs/config.md. */
  expected: string;
  isValid(value: unknown): value is T;
  /** Env var or CLI text → candidate value; isValid() then decides. */
  fromText(text: string): unknown;
}

/** A default that depends on the host (root or not, host name); `text` is what docs show. */
class HostDefault<T> {
  constructor(
    readonly resolve: (host: HostFacts) => T,
    readonly text: string,
  ) {}
}

interface KeySpec<T> {
  type: ValueType<T>;
  default: T | HostDefault<T>;
  description: string;
  /** Command-line flag the CLI maps onto this key via loadConfig's `overrides`. */
  flag?: string;
}

type Schema = { [S in keyof KeelConfig]: { [K in keyof KeelConfig[S]]: KeySpec<KeelConfig[S][K]> } };

const integer = (min: number, max?: number): ValueType<number> => ({
  expected: max === undefined ? `an integer >= ${min}` : `an integer ${min}..${max}`,
  isValid: (v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && (max === undefined || v <= max),
  fromText: (text) => (/^[+-]?\d+$/.test(text.trim()) ? Number(text) : text),
});

const nonEmptyString: ValueType<string> = {
  expected: 'a non-empty string',
  isValid: (v): v is string => typeof v === 'string' && v.length > 0,
  fromText: (text) => text,
};

// TOML has no null: leave the key out of the file (or set the env var to "") for "none".
const optionalPath: ValueType<string | null> = {
  expected: 'a non-empty path, or unset',
  isValid: (v): v is string | null => v === null || (typeof v === 'string' && v.length > 0),
  fromText: (text) => (text === '' ? null : text),
};

const ipAddress: ValueType<string> = {
  expected: 'an IPv4 or IPv6 address literal',
  isValid: (v): v is string => typeof v === 'string' && isIP(v) !== 0,
  fromText: (text) => text,
};

// Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace.
const isInterfaceName = (v: unknown): boolean =>
  typeof v === 'string' && /^[^/:\s]{1,15}$/.test(v) && v !== '.' && v !== '..';

const interfaceList: ValueType<string[]> = {
  expected: "a list of interface names (1-15 characters, no '/', ':' or whitespace)",
  isValid: (v): v is string[] => Array.isArray(v) && v.every(isInterfaceName),
  fromText: (text) => (text.trim() === '' ? [] : text.split(',').map((name) => name.trim())),
};

// An absolute path with `*` / `?` wildcards that never match '/': `/dev/ttyS*` cannot reach /dev/pts/0.
const isDevicePattern = (v: unknown): boolean => typeof v === 'string' && /^\/\S+$/.test(v) && !v.split('/').includes('..');

const devicePatternList: ValueType<string[]> = {
  expected: 'a list of absolute device path patterns (* and ? match within one path segment)',
  isValid: (v): v is string[] => Array.isArray(v) && v.every(isDevicePattern),
  fromText: (text) => (text.trim() === '' ? [] : text.split(',').map((pattern) => pattern.trim())),
};

const boolean: ValueType<boolean> = {
  expected: 'true or false',
  isValid: (v): v is boolean => typeof v === 'boolean',
  fromText: (text) => (text === 'true' ? true : text === 'false' ? false : text),
};

// A DNS name (letters, digits, '-', '.', a leading '*.' for a wildcard) or an IP address literal.
const isCertificateName = (v: unknown): boolean =>
  typeof v === 'string' && (isIP(v) !== 0 || /^(\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v));

const certificateNameList: ValueType<string[]> = {
  expected: 'a list of DNS names (*.name for a wildcard) and IP addresses',
  isValid: (v): v is string[] => Array.isArray(v) && v.every(isCertificateName),
  fromText: (text) => (text.trim() === '' ? [] : text.split(',').map((name) => name.trim())),
};

const ipv4Address: ValueType<string> = {
  expected: 'an IPv4 address literal',
  isValid: (v): v is string => typeof v === 'string' && isIP(v) === 4,
  fromText: (text) => text,
};

// RFC 1035 names: labels of letters, digits and '-' (not at either end), 63 at most, 253 in all.
const domainName: ValueType<string> = {
  expected: 'a DNS domain name, e.g. cluster.local',
  isValid: (v): v is string => typeof v === 'string' && /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v),
  fromText: (text) => text,
};

const isUpstream = (v: unknown): boolean => {
  if (typeof v !== 'string') return false;
  const [address, port, ...rest] = v.split(':');
  return rest.length === 0 && isIP(address!) === 4 && (port === undefined || (/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535));
};

const upstreamList: ValueType<string[]> = {
  expected: 'a list of IPv4 addresses, each optionally with :port',
  isValid: (v): v is string[] => Array.isArray(v) && v.every(isUpstream),
  fromText: (text) => (text.trim() === '' ? [] : text.split(',').map((upstream) => upstream.trim())),
};

const oneOf = <const T extends string>(...choices: T[]): ValueType<T> => ({
  expected: `one of ${choices.map((c) => JSON.stringify(c)).join(', ')}`,
  isValid: (v): v is T => (choices as unknown[]).includes(v),
  fromText: (text) => text,
});

const rootOrUser = <T>(root: T, user: T) =>
  new HostDefault((host) => (host.isRoot ? root : user), `${formatValue(root)} as root, else ${formatValue(user)}`);

/** The single declaration of every config key; docs/config.md's table is rendered from it. */
export const CONFIG_SCHEMA: Schema = {
  server: {
    name: {
      type: nonEmptyString,
      default: new HostDefault((host) => host.hostname, 'the host name'),
      description: 'Name of this keel server.',
    },
    data_dir: {
      type: nonEmptyString,
      default: rootOrUser('/var/lib/keel', './var'),
      description: 'Directory holding the database and content store.',
      flag: '--data-dir <dir>',
    },
    bind: {
      type: ipAddress,
      default: '0.0.0.0',
      description: 'Address the HTTP and TFTP servers listen on.',
      flag: '--bind <address>',
    },
  },
  http: {
    port: {
      type: integer(1, 65535),
      default: rootOrUser(80, 8080),
      description: 'HTTP port (REST API and boot file streaming).',
      flag: '--http-port <port>',
    },
    max_body_bytes: {
      type: integer(1024),
      default: 1048576,
      description: 'Largest accepted JSON API request body; file uploads are streamed and not limited by it.',
    },
  },
  https: {
    enabled: {
      type: boolean,
      default: false,
      description: 'Serve the API (and /boot, /metrics) over HTTPS on https.port as well as over plain HTTP on http.port; at first start keel makes a CA and a server certificate under <data_dir>/tls unless https.cert_file and https.key_file are set (docs/security.md, "HTTPS").',
      flag: '--https-enabled <bool>',
    },
    port: {
      type: integer(1, 65535),
      default: rootOrUser(443, 8443),
      description: 'HTTPS port.',
      flag: '--https-port <port>',
    },
    cert_file: {
      type: optionalPath,
      default: null,
      description: 'PEM server certificate (and its chain) to serve instead of the generated one; with https.key_file.',
    },
    key_file: {
      type: optionalPath,
      default: null,
      description: 'PEM private key (unencrypted) of https.cert_file.',
    },
    ca_file: {
      type: optionalPath,
      default: null,
      description: 'PEM CA certificates that verify https.cert_file, published at GET /cluster/cabundle; unset with a configured certificate: none published (clients use their system\'s CAs).',
    },
    extra_names: {
      type: certificateNameList,
      default: [],
      description: 'Names and addresses the generated server certificate covers besides the head\'s name, host name, `localhost`, `<name>.<dns.domain>` and its interfaces\' addresses (a load balancer\'s name, a DNS alias).',
    },
  },
  auth: {
    access_token_ttl: {
      type: integer(1),
      default: 1200,
      description: 'Lifetime of an access token, in seconds.',
    },
    refresh_token_ttl: {
      type: integer(1),
      default: 2592000,
      description: 'Lifetime of a refresh token, in seconds.',
    },
  },
  store: {
    min_free_bytes: {
      type: integer(0),
      default: 268435456,
      description: 'Uploads are refused (507) while the data directory has less room than this, in bytes: free file-system space plus space freed inside the database.',
    },
    change_log_retention: {
      type: integer(1000),
      default: 100000,
      description: 'Entries of the change log kept (it holds the latest change of each object); older ones are pruned as new ones are written.',
    },
  },
  tftp: {
    port: {
      type: integer(1, 65535),
      default: rootOrUser(69, 6969),
      description: 'TFTP port.',
      flag: '--tftp-port <port>',
    },
    root: {
      type: optionalPath,
      default: null,
      description: 'Directory also served over TFTP; unset: TFTP serves only the content store and boot policy.',
      flag: '--tftp-root <dir>',
    },
    window_memory_bytes: {
      type: integer(65536),
      default: 134217728,
      description: 'Bytes all running TFTP transfers may hold in send windows; beyond, new transfers get smaller windows, down to lock-step 512-byte blocks.',
    },
    window_memory_per_source_bytes: {
      type: integer(65536),
      default: 16777216,
      description: 'Bytes of TFTP send windows the transfers of one client address may hold.',
    },
    max_transfers: {
      type: integer(1),
      default: 4096,
      description: 'TFTP transfers at once; requests beyond are dropped unanswered (the client retries).',
    },
    max_transfers_per_source: {
      type: integer(1),
      default: 64,
      description: 'TFTP transfers at once from one client address, so that one address cannot take every slot.',
    },
  },
  dhcp: {
    interfaces: {
      type: interfaceList,
      default: [],
      description: 'Interfaces DHCP answers on; empty: DHCP is off.',
      flag: '--dhcp-interface <names>',
    },
  },
  dns: {
    enabled: {
      type: boolean,
      default: false,
      description: 'Run the DNS server: authoritative for the cluster\'s domains (nodes, hostname records) and their in-addr.arpa zones (docs/dns.md).',
      flag: '--dns-enabled <bool>',
    },
    port: {
      type: integer(1, 65535),
      default: rootOrUser(53, 1053),
      description: 'DNS port (UDP). Authoritative DHCP names keel as DNS server (option 6) only when it is 53: clients cannot be told another port.',
      flag: '--dns-port <port>',
    },
    bind: {
      type: ipv4Address,
      default: '0.0.0.0',
      description: 'Address the DNS server listens on; answers leave from the address each query was sent to.',
    },
    domain: {
      type: domainName,
      default: 'cluster.local',
      description: 'Domain of the nodes on networks without a `domain`, of hostname records and of keel itself.',
    },
    upstreams: {
      type: upstreamList,
      default: [],
      description: 'DNS servers that names outside the cluster\'s zones are forwarded to, in turn (`address` or `address:port`); empty: such queries are REFUSED.',
      flag: '--dns-upstream <addresses>',
    },
    ttl: {
      type: integer(0, 2147483647),
      default: 60,
      description: 'TTL of the records keel serves, and of negative answers (SOA minimum), in seconds.',
    },
  },
  boot: {
    assets_dir: {
      type: optionalPath,
      default: rootOrUser<string | null>('/usr/share/keel/assets', null),
      description: 'Directory of the default boot assets (vmlinuz, initramfs.img, rootfs.squashfs, as images/build.sh makes them): the first start that finds all three creates the image DefaultImage and the boot config DefaultBoot from them, unless they exist (docs/content.md). Unset: none at start; `keel init --assets DIR` does it on demand.',
    },
  },
  install: {
    clientpkgs_dir: {
      type: optionalPath,
      default: null,
      description: 'Directory of the client packages nodes download (rpm/, deb/, tar/, installers/; docs/install.md); unset: `<data_dir>/clientpkgs`.',
    },
    max_expanded_bytes: {
      type: integer(1024),
      default: 2147483648,
      description: 'Largest payload an RPM may expand to when keel converts it to a TAR, in bytes; a larger one (a decompression bomb) is refused.',
    },
    ignition_bin: {
      type: optionalPath,
      default: null,
      description: 'The Ignition binary GET /ignition/bin serves; unset: it answers 404.',
    },
    ignition_fetch_timeout: {
      type: integer(1, 3600),
      default: 10,
      description: 'Seconds keel waits for a node\'s `_ignition` URL to answer in full (GET /ignition/<UID>).',
    },
    ignition_max_bytes: {
      type: integer(1024),
      default: 1048576,
      description: 'Largest Ignition config keel fetches from a node\'s `_ignition` URL, in bytes.',
    },
  },
  build: {
    concurrency: {
      type: integer(1, 64),
      default: 1,
      description: 'Artifact builds (spec 004\'s /ipxes) that run at once; the others wait in the queue (docs/builders.md).',
    },
    work_dir: {
      type: optionalPath,
      default: null,
      description: 'Directory of the builders\' unpacked sources and object trees, kept between builds so that a new script only relinks; unset: <data_dir>/build.',
    },
    ipxe_source: {
      type: optionalPath,
      default: rootOrUser('/usr/share/keel/ipxe-src.tar.xz', null),
      description: 'The iPXE source an /ipxes build compiles: a tarball (.tar.xz, .tar.gz; unpacked once into build.work_dir) or an unpacked tree; unset: /ipxes builds fail naming this key (docs/builders.md).',
    },
  },
  console: {
    device_patterns: {
      type: devicePatternList,
      default: ['/dev/ttyS*', '/dev/ttyUSB*'],
      description: 'Devices a serial console (node attribute console_device) may be; any other device, such as a pty or a virtual console, is refused.',
    },
  },
  log: {
    level: {
      type: oneOf('trace', 'debug', 'info', 'warn', 'error', 'fatal'),
      default: 'info',
      description: 'Lowest level logged.',
      flag: '--log-level <level>',
    },
    format: {
      type: oneOf('auto', 'json', 'pretty'),
      default: 'auto',
      description: 'Log format; auto: pretty on a TTY, JSON otherwise.',
    },
  },
};

interface KeyEntry {
  section: string;
  key: string;
  path: string; // "http.port"
  env: string; // "KEEL_HTTP_PORT"
  spec: KeySpec<unknown>;
}

const KEYS: KeyEntry[] = Object.entries(CONFIG_SCHEMA).flatMap(([section, keys]) =>
  Object.entries(keys as Record<string, KeySpec<unknown>>).map(([key, spec]) => ({
    section,
    key,
    path: `${section}.${key}`,
    env: `KEEL_${section}_${key}`.toUpperCase(),
    spec,
  })),
);
const KEY_BY_PATH = new Map(KEYS.map((k) => [k.path, k]));

/** The keys that have a command-line flag, for the CLI to declare. */
export const CONFIG_FLAGS: readonly { section: string; key: string; flag: string; description: string }[] = KEYS.filter(
  (k) => k.spec.flag !== undefined,
).map((k) => ({ section: k.section, key: k.key, flag: k.spec.flag!, description: k.spec.description }));
const KEY_BY_ENV = new Map(KEYS.map((k) => [k.env, k]));
const SECTIONS = Object.keys(CONFIG_SCHEMA);

export interface LoadConfigOptions {
  /** Config file; else KEEL_CONFIG; else DEFAULT_CONFIG_FILE if it exists. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Command-line values, highest precedence; strings are read like env values ("8081", "eth0,eth1"). */
  overrides?: ConfigOverrides;
  isRoot?: boolean;
  hostname?: string;
}

/** Defaults < TOML file < KEEL_* environment < overrides. Throws ConfigError listing every problem. */
export function loadConfig(opts: LoadConfigOptions = {}): KeelConfig {
  const env = opts.env ?? process.env;
  const host: HostFacts = {
    isRoot: opts.isRoot ?? process.getuid?.() === 0,
    hostname: opts.hostname ?? osHostname(),
  };
  const values = new Map<string, unknown>(KEYS.map((k) => [k.path, defaultFor(k.spec, host)]));
  const problems: string[] = [];
  const set = (entry: KeyEntry, value: unknown, source: string) => {
    if (entry.spec.type.isValid(value)) values.set(entry.path, value);
    else problems.push(`${entry.path}: must be ${entry.spec.type.expected} (got ${formatValue(value)}) [from ${source}]`);
  };

  const explicitFile = opts.file ?? (env.KEEL_CONFIG || undefined);
  const file = explicitFile ?? (host.isRoot ? DEFAULT_CONFIG_FILE.root : DEFAULT_CONFIG_FILE.user);
  const table = readTomlFile(file, explicitFile !== undefined);
  if (table) {
    for (const [section, keys] of Object.entries(table)) {
      if (!SECTIONS.includes(section)) {
        problems.push(`unknown section [${section}]${suggest(section, SECTIONS, (s) => `[${s}]`)} [from ${file}]`);
      } else if (!isTable(keys)) {
        problems.push(`${section}: must be a table ([${section}]) (got ${formatValue(keys)}) [from ${file}]`);
      } else {
        for (const [key, value] of Object.entries(keys)) {
          const entry = KEY_BY_PATH.get(`${section}.${key}`);
          if (entry) set(entry, value, file);
          else problems.push(`unknown key ${section}.${key}${suggest(`${section}.${key}`, [...KEY_BY_PATH.keys()])} [from ${file}]`);
        }
      }
    }
  }

  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith('KEEL_') || text === undefined || NON_CONFIG_ENV.includes(name)) continue;
    const entry = KEY_BY_ENV.get(name);
    if (entry) set(entry, entry.spec.type.fromText(text), name);
    else problems.push(`unknown environment variable ${name}${suggest(name, [...KEY_BY_ENV.keys(), ...NON_CONFIG_ENV])}`);
  }

  for (const [section, keys] of Object.entries(opts.overrides ?? {})) {
    for (const [key, value] of Object.entries(keys ?? {})) {
      if (value === undefined) continue; // a flag that was not given
      const entry = KEY_BY_PATH.get(`${section}.${key}`);
      if (!entry) {
        problems.push(`unknown key ${section}.${key} [from command line]`);
        continue;
      }
      const source = entry.spec.flag?.split(' ')[0] ?? 'command line';
      set(entry, typeof value === 'string' ? entry.spec.type.fromText(value) : value, source);
    }
  }

  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
  const config: Record<string, Record<string, unknown>> = {};
  for (const { section, key, path } of KEYS) {
    const value = values.get(path);
    (config[section] ??= {})[key] = Array.isArray(value) ? Object.freeze([...value]) : value;
  }
  for (const section of Object.values(config)) Object.freeze(section);
  return Object.freeze(config) as unknown as KeelConfig;
}

function defaultFor(spec: KeySpec<unknown>, host: HostFacts): unknown {
  return spec.default instanceof HostDefault ? spec.default.resolve(host) : spec.default;
}

function readTomlFile(file: string, required: boolean): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return undefined;
    throw new ConfigError(`config file ${file}: ${code === 'ENOENT' ? 'not found' : (err as Error).message}`);
  }
  try {
    return parseToml(text);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    const reason = err.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '');
    throw new ConfigError(`${file}:${err.line}:${err.column}: TOML syntax error: ${reason}\n${err.codeblock.trimEnd()}`);
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** " (did you mean X?)" when a known name is within a couple of typos of `name`, else "". */
function suggest(name: string, known: string[], show = (s: string) => s): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best === undefined ? '' : ` (did you mean ${show(best)}?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** A value as it would be written in TOML, for errors and docs. */
function formatValue(value: unknown): string {
  if (value === null) return 'unset';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' || typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/**
 * Every key with its description, the docs' text of its default and its default value on a host
 * (as root, for the installed /etc/keel/keel.toml of `keel install`; null = unset), in schema order.
 */
export function configDefaults(host: HostFacts): { section: string; key: string; description: string; defaultText: string; value: unknown }[] {
  return KEYS.map(({ section, key, spec }) => ({
    section,
    key,
    description: spec.description,
    defaultText: spec.default instanceof HostDefault ? spec.default.text : formatValue(spec.default),
    value: defaultFor(spec, host),
  }));
}

/** The reference table of docs/config.md (between its config-table markers), rendered from CONFIG_SCHEMA. */
export function renderConfigTable(): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const rows = KEYS.map(({ path, env, spec }) => {
    const defaultText = spec.default instanceof HostDefault ? spec.default.text : formatValue(spec.default);
    const flag = spec.flag ? `\`${spec.flag}\`` : '';
    return `| \`${path}\` | ${cell(spec.type.expected)} | ${cell(defaultText)} | \`${env}\` | ${flag} | ${cell(spec.description)} |`;
  });
  return ['| Key | Type | Default | Environment | Flag | Description |', '|---|---|---|---|---|---|', ...rows].join('\n');
}
