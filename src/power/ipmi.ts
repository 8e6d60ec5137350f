// IPMI through FreeIPMI: `ipmipower` for power (one process per batch of hosts, see plan.ts) and
// `ipmi-chassis-config` for the boot device. Credentials never go on argv: each distinct
// username/password pair is written once to a FreeIPMI config file (mode 0600) in a private
// runtime directory (0700) and passed with --config-file.
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { IpmiBatch } from './plan.js';
import type { IpmiOptions, IpmiTarget } from './target.js';

export type PowerAction = 'on' | 'off' | 'cycle' | 'reset' | 'soft';
export type BootDevice = 'pxe' | 'disk';

export interface HostOutcome {
  ok: boolean;
  /** On a status query: the state read. */
  state?: 'on' | 'off';
  /** FreeIPMI's message when not ok (e.g. `connection timeout`, `password verification timeout`). */
  reason?: string;
}

const ACTION_FLAGS: Record<PowerAction | 'stat', string[]> = {
  stat: ['--stat'],
  on: ['--on'],
  off: ['--off'],
  // A cycle or reset of a node that is off powers it on (the user wants it running afterwards).
  cycle: ['--cycle', '--on-if-off'],
  reset: ['--reset', '--on-if-off'],
  soft: ['--soft'],
};

/** FreeIPMI's names of the boot devices keel sets (ipmi-chassis-config Chassis_Boot_Flags:Boot_Device). */
const BOOT_DEVICE_NAMES: Record<BootDevice, string> = { pxe: 'PXE', disk: 'HARD-DRIVE' };

function quoteConfValue(value: string, what: string): string {
  if (/[\n\r"\0]/.test(value)) throw new Error(`IPMI ${what} must not contain quotes or line breaks`);
  return `"${value}"`;
}

function commonArgs(configFile: string, hosts: string, options: IpmiOptions): string[] {
  const args = [`--config-file=${configFile}`, `--hostname=${hosts}`, `--driver-type=${options.driverType}`,
    `--session-timeout=${options.sessionTimeoutMs}`, `--retransmission-timeout=${options.retransmissionTimeoutMs}`];
  if (options.cipherSuite !== undefined) args.push(`--cipher-suite-id=${options.cipherSuite}`);
  if (options.workarounds !== '') args.push(`--workaround-flags=${options.workarounds}`);
  return args;
}

/** The wall-clock bound of one FreeIPMI process: its own session timeout plus slack to start and exit. */
function processTimeoutMs(options: IpmiOptions): number {
  return options.sessionTimeoutMs * 2 + 3000;
}

/** Parse ipmipower's `host: message` lines. */
export function parseIpmipowerOutput(text: string, action: PowerAction | 'stat'): Map<string, HostOutcome> {
  const outcomes = new Map<string, HostOutcome>();
  for (const line of text.split('\n')) {
    const match = /^(.+?): (.+)$/.exec(line.trim());
    if (!match) continue;
    const [, host, message] = match as unknown as [string, string, string];
    if (action === 'stat' && (message === 'on' || message === 'off')) outcomes.set(host, { ok: true, state: message });
    else if (action !== 'stat' && message === 'ok') outcomes.set(host, { ok: true });
    else outcomes.set(host, { ok: false, reason: message });
  }
  return outcomes;
}

export class FreeIpmi {
  private readonly files = new Set<string>();

  /** `runtimeDir` is created 0700; it holds only the credential files. */
  constructor(private readonly runtimeDir: string) {
    mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  }

  /** The config file holding these credentials (written once, mode 0600, named by a hash). */
  credentialFile(username: string, password: string): string {
    const name = createHash('sha256').update(`${username}\0${password}`).digest('hex').slice(0, 32);
    const file = join(this.runtimeDir, `${name}.conf`);
    if (!this.files.has(file) || !existsSync(file)) {
      const text = `username ${quoteConfValue(username, 'username')}\npassword ${quoteConfValue(password, 'password')}\n`;
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, text, { mode: 0o600 });
      renameSync(temp, file);
      this.files.add(file);
    }
    return file;
  }

  /** Run one ipmipower for the batch; every host gets an outcome (a process failure is every host's reason). */
  async power(batch: IpmiBatch, action: PowerAction | 'stat'): Promise<Map<string, HostOutcome>> {
    const hosts = batch.hosts.map((host) => (batch.port === 623 ? host : `${host}:${batch.port}`)).join(',');
    let outcomes = new Map<string, HostOutcome>();
    let failure: string | undefined;
    try {
      const file = this.credentialFile(batch.username, batch.password);
      const result = await execa('ipmipower', [...commonArgs(file, hosts, batch.options), ...ACTION_FLAGS[action]], {
        reject: false, timeout: processTimeoutMs(batch.options), forceKillAfterDelay: 1000, stdin: 'ignore', all: true,
      });
      outcomes = parseIpmipowerOutput(result.all ?? '', action);
      if (result.timedOut) failure = 'timed out waiting for ipmipower';
      else if (result.failed && outcomes.size === 0) failure = `ipmipower failed: ${(result.all ?? result.shortMessage).trim().split('\n')[0]}`;
    } catch (err) {
      failure = (err as Error).message;
    }
    for (const host of batch.hosts) if (!outcomes.has(host)) outcomes.set(host, { ok: false, reason: failure ?? 'no answer from ipmipower' });
    return outcomes;
  }

  async setBootDevice(target: IpmiTarget, device: BootDevice): Promise<void> {
    await this.chassisConfig(target, ['--commit', `--key-pair=Chassis_Boot_Flags:Boot_Device=${BOOT_DEVICE_NAMES[device]}`]);
  }

  /** The boot device the BMC reports: pxe, disk, or FreeIPMI's name of another device (lower case). */
  async getBootDevice(target: IpmiTarget): Promise<string> {
    const text = await this.chassisConfig(target, ['--checkout', '--key-pair=Chassis_Boot_Flags:Boot_Device']);
    const match = /^\s*Boot_Device\s+(\S+)/m.exec(text);
    if (!match) throw new Error('BMC did not report a boot device');
    const name = match[1]!;
    const known = (Object.keys(BOOT_DEVICE_NAMES) as BootDevice[]).find((d) => BOOT_DEVICE_NAMES[d] === name);
    return known ?? name.toLowerCase();
  }

  private async chassisConfig(target: IpmiTarget, args: string[]): Promise<string> {
    const host = target.port === 623 ? target.host : `${target.host}:${target.port}`;
    const file = this.credentialFile(target.username, target.password);
    const result = await execa('ipmi-chassis-config', [...commonArgs(file, host, target.options), ...args], {
      reject: false, timeout: processTimeoutMs(target.options), forceKillAfterDelay: 1000, stdin: 'ignore', all: true,
    });
    if (result.timedOut) throw new Error('timed out waiting for ipmi-chassis-config');
    if (result.failed) throw new Error((result.all ?? '').trim().split('\n')[0] || result.shortMessage);
    return result.stdout;
  }

  /** Remove the credential files. */
  close(): void {
    for (const file of this.files) rmSync(file, { force: true });
    this.files.clear();
  }
}
