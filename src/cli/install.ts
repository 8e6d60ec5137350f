// `keel install --root DIR`: lays keel out as an appliance under DIR (/ on the machine itself, a
// throwaway directory in tests, an image's root when building one): the binary where the unit runs
// it, the unit, a commented keel.toml, the data directory, and sysusers.d/tmpfiles.d snippets.
// It never overwrites an existing keel.toml: that is the operator's.
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'smol-toml';
import { configDefaults, DEFAULT_CONFIG_FILE } from '../config.js';
import { writeFileDurably } from '../durable-file.js';
import { KEEL_UNIT } from './unit.js';

/** Where the unit's ExecStart expects the binary. */
export const BINARY_PATH = '/usr/local/bin/keel';
export const UNIT_PATH = '/etc/systemd/system/keel.service';
export const DATA_DIR = '/var/lib/keel';
export const SYSUSERS_PATH = '/etc/sysusers.d/keel.conf';
export const TMPFILES_PATH = '/etc/tmpfiles.d/keel.conf';

/**
 * The group `keel`: its members (operators) may read /etc/keel/keel.toml, so `keel image import
 * --config /etc/keel/keel.toml` finds the API's port without root. keel itself runs as root with
 * a bounded capability set (see the unit).
 */
const SYSUSERS = `# keel (keel install): operators in group keel may read /etc/keel/keel.toml.
g keel -
`;

/**
 * The data directory exists, 0700 root, before the first start (so `keel init` and `keel admin`
 * can run first; the unit's StateDirectory= makes it too), and the config is root's, readable by keel.
 */
const TMPFILES = `# keel (keel install): data directory and configuration.
d ${DATA_DIR} 0700 root root -
z /etc/keel 0750 root keel -
z ${DEFAULT_CONFIG_FILE.root} 0640 root keel -
`;

export interface InstallOptions {
  /** The root to install under ("/" for this machine). */
  root: string;
  /** The keel binary to copy to BINARY_PATH; default: this one, when it is the single binary. */
  binary?: string;
  /** This process's own file when it is the single binary (node:sea): installed when `binary` is not given. */
  runningBinary?: string;
}

export interface InstallResult {
  /** Paths written (under root, shown as on the target). */
  written: string[];
  /** Paths left as they were. */
  kept: string[];
  /** Why no binary was installed, when none was. */
  noBinary?: string;
}

/** The commented keel.toml: every key with its description and, commented out, its default as root. */
export function commentedConfig(): string {
  const lines = [
    '# keel configuration (docs/config.md). Every key is shown commented out with its default as root;',
    '# uncomment and change what you need. Environment variables KEEL_<SECTION>_<KEY> and command-line',
    '# flags override this file.',
  ];
  let section = '';
  for (const { section: name, key, description, defaultText, value } of configDefaults({ isRoot: true, hostname: hostname() })) {
    if (name !== section) {
      section = name;
      lines.push('', `[${name}]`);
    }
    lines.push('', ...wrap(description).map((line) => `# ${line}`), `# Default: ${defaultText}.`);
    if (value !== null) lines.push(`# ${stringify({ [key]: value }).trim()}`);
  }
  return `${lines.join('\n')}\n`;
}

function wrap(text: string, width = 98): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** Make directory `path` with `mode`; missing parents get 0755 (a recursive mkdir would give them `mode` too). */
function makeDir(path: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  mkdirSync(path, { recursive: true, mode });
  chmodSync(path, mode);
}

/** Write `contents` to `path` atomically (a reader never sees half a file) with `mode`. */
function writeFile(path: string, contents: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  writeFileDurably(path, contents, mode);
}

export function install(options: InstallOptions): InstallResult {
  const at = (path: string) => join(options.root, path);
  const result: InstallResult = { written: [], kept: [] };
  const config = DEFAULT_CONFIG_FILE.root;
  if (existsSync(at(config))) result.kept.push(config);
  else {
    makeDir(at(dirname(config)), 0o750);
    writeFile(at(config), commentedConfig(), 0o640);
    result.written.push(config);
  }
  makeDir(at(DATA_DIR), 0o700);
  result.written.push(DATA_DIR);
  writeFile(at(UNIT_PATH), KEEL_UNIT, 0o644);
  writeFile(at(SYSUSERS_PATH), SYSUSERS, 0o644);
  writeFile(at(TMPFILES_PATH), TMPFILES, 0o644);
  result.written.push(UNIT_PATH, SYSUSERS_PATH, TMPFILES_PATH);
  const binary = options.binary ?? options.runningBinary;
  if (binary === undefined) {
    result.noBinary = `no binary given and this is not the single binary: build it (./build.sh) and pass --binary dist/keel, or copy it to ${BINARY_PATH}`;
  } else {
    makeDir(at(dirname(BINARY_PATH)), 0o755);
    const tmp = `${at(BINARY_PATH)}.${process.pid}.tmp`;
    copyFileSync(binary, tmp);
    chmodSync(tmp, 0o755);
    renameSync(tmp, at(BINARY_PATH));
    result.written.push(BINARY_PATH);
  }
  return result;
}

/** What to run on the target after installing. */
export function enableInstructions(root: string): string {
  const onThisMachine = root === '/' || root === '';
  return [
    onThisMachine ? 'To start keel now and at every boot:' : `On the machine whose root is ${root}, to start keel now and at every boot:`,
    `  systemd-sysusers ${SYSUSERS_PATH} && systemd-tmpfiles --create ${TMPFILES_PATH}`,
    '  systemctl daemon-reload && systemctl enable --now keel',
    `Configuration: ${DEFAULT_CONFIG_FILE.root}; data: ${DATA_DIR}; log: journalctl -u keel.`,
  ].join('\n');
}
