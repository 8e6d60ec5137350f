// Starts OpenIPMI's ipmi_sim as a real IPMI 2.0 BMC on loopback, with chassis-control.sh keeping
// the simulated machine's power state and boot device in files of the instance directory.
// Stopped by PID in teardown (or by the returned stop()).
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHASSIS_CONTROL = fileURLToPath(new URL('./chassis-control.sh', import.meta.url));

export const SIM_USER = 'keeladmin';
export const SIM_PASSWORD = 'sim-pass-1';

export interface IpmiSim {
  host: string;
  port: number;
  dir: string;
  pid: number;
  /** '0' | '1', as the chassis control script keeps it. */
  power(): string;
  setPower(on: boolean): void;
  boot(): string;
  /** Make the simulated OS ignore soft shutdown requests. */
  ignoreSoft(): void;
  stop(): Promise<void>;
}

/** A UDP port nobody listens on right now. */
export async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(0, host, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * Whether a UDP socket is bound to host:port, read from /proc/net/udp. (Probing by binding a socket
 * of our own races with ipmi_sim's bind: measured, ipmi_sim then failed with EADDRINUSE.)
 */
async function isBound(host: string, port: number): Promise<boolean> {
  // /proc/net/udp: local_address as the in-memory (little-endian here) hex of the IPv4 address, then :PORT in hex.
  const ip = host.split('.').map((b) => Number(b).toString(16).padStart(2, '0').toUpperCase()).reverse().join('');
  const local = `${ip}:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  const table = await readFile('/proc/net/udp', 'utf8');
  return table.split('\n').some((line) => line.trim().split(/\s+/)[1] === local);
}

export interface SimOptions {
  host?: string;
  port?: number;
  power?: boolean;
  /** SOL device (a pty path) for Serial-over-LAN. */
  solDevice?: string;
}

/** The head of an ipmi_sim lan.conf: the BMC's name and its LAN channel on `host`:`port`, every auth type allowed. */
export function lanConfHeader(name: string, host: string, port: number): string[] {
  return [
    `name "${name}"`,
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr ${host} ${port}`,
    '    priv_limit admin',
    '    allowed_auths_callback none md2 md5 straight',
    '    allowed_auths_user none md2 md5 straight',
    '    allowed_auths_operator none md2 md5 straight',
    '    allowed_auths_admin none md2 md5 straight',
    '    guid a123456789abcdefa123456789abcdef',
    '  endlan',
  ];
}

export async function startIpmiSim(options: SimOptions = {}): Promise<IpmiSim> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? await freeUdpPort(host);
  const dir = mkdtempSync(join(tmpdir(), 'keel-ipmisim-'));
  writeFileSync(join(dir, 'power'), options.power ? '1\n' : '0\n');
  writeFileSync(join(dir, 'boot'), 'none\n');
  const lines = [
    ...lanConfHeader('keelsim', host, port),
    `  chassis_control "${CHASSIS_CONTROL} ${dir}"`,
    ...(options.solDevice ? [`  sol "${options.solDevice}" 115200`] : []),
    `  user 2 true "${SIM_USER}" "${SIM_PASSWORD}" admin 10 none md2 md5 straight`,
  ];
  writeFileSync(join(dir, 'lan.conf'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'sim.emu'), [
    'mc_setbmc 0x20',
    'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr',
    'mc_enable 0x20',
  ].join('\n') + '\n');
  const child: ChildProcess = spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', join(dir, 'state'), '-n', '-p'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid!;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Up to 15 s: ipmi_sim starts slowly on a loaded machine (measured: > 3 s with 1,000 running).
  for (const deadline = Date.now() + 15_000; Date.now() < deadline && !(await isBound(host, port));) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 30));
  }
  if (!(await isBound(host, port))) {
    await stop();
    throw new Error(`ipmi_sim did not bind ${host}:${port} (exit ${child.exitCode ?? child.signalCode ?? 'none'}): ${stderr}`);
  }
  const read = (name: string) => readFileSync(join(dir, name), 'utf8').trim();
  return {
    host, port, dir, pid,
    power: () => read('power'),
    setPower: (on) => writeFileSync(join(dir, 'power'), on ? '1\n' : '0\n'),
    boot: () => read('boot'),
    ignoreSoft: () => writeFileSync(join(dir, 'ignore-soft'), ''),
    stop,
  };
}
