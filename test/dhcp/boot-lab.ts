// A network namespace where a QEMU VM network-boots from keel: a bridge `br0` (10.67.0.1/24, keel's
// DHCP interface) with the VM's tap device on it, IPv6 router advertisements from radvd (without
// them iPXE waits ~14 s for IPv6 autoconfiguration before going on), and optionally "the site's
// DHCP server" (busybox udhcpd) in a namespace of its own on the same bridge, for proxy mode.
// Every process is started here and killed by pid at teardown; namespaces are deleted.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { ip, namespaces } from '../helpers/namespaces.js';

export const SERVER_ADDRESS = '10.67.0.1';
/** The site's DHCP server (proxy-mode tests) hands out addresses from this range. */
export const SITE_POOL = { first: '10.67.0.120', last: '10.67.0.140' } as const;

export interface BootLab {
  /** keel's namespace; br0 is the DHCP interface, tap0 the VM's NIC. */
  server: string;
  /** Scratch directory (keel's data directory is `dataDir`). */
  dir: string;
  dataDir: string;
}

export interface Started {
  process: ChildProcess;
  exited: Promise<void>;
  /** What it printed (stdout and stderr), for failure messages. */
  output(): string;
}

/** Runs `command` inside `namespace` (`ip netns exec` execs it: the pid is the command's), killed by pid at teardown. */
export function startInNamespace(t: ExecutionContext, namespace: string, command: string, args: string[], stopSignal: NodeJS.Signals = 'SIGKILL'): Started {
  const child = spawn('ip', ['netns', 'exec', namespace, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(stopSignal);
      await exited;
    }
  });
  return { process: child, exited, output: () => output };
}

export interface BootLabOptions {
  /** Run the site's DHCP server (udhcpd) beside keel, for proxy mode. */
  siteDhcp: boolean;
  /** Fixed addresses the site's server gives by MAC (a site reserving the addresses keel has for its nodes). */
  siteStaticLeases?: Readonly<Record<string, string>>;
}

export function bootLab(t: ExecutionContext, { siteDhcp, siteStaticLeases = {} }: BootLabOptions): BootLab {
  const ns = namespaces(t, 'kbt', siteDhcp ? ['s', 'd'] : ['s']) as Record<'s' | 'd', string>;
  const server = ns.s;
  const dir = mkdtempSync(join(tmpdir(), 'keel-boot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  ip('-n', server, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', server, 'addr', 'add', `${SERVER_ADDRESS}/24`, 'dev', 'br0');
  ip('-n', server, 'link', 'set', 'br0', 'up');
  // The VM's NIC: QEMU opens this tap device by name (it runs in the same namespace).
  ip('-n', server, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  ip('-n', server, 'link', 'set', 'tap0', 'master', 'br0');
  ip('-n', server, 'link', 'set', 'tap0', 'up');
  startRadvd(t, server, dir);
  if (siteDhcp) startSiteDhcp(t, server, ns.d, dir, siteStaticLeases);
  return { server, dir, dataDir: join(dir, 'data') };
}

function startRadvd(t: ExecutionContext, namespace: string, dir: string): void {
  const config = join(dir, 'radvd.conf');
  writeFileSync(config, 'interface br0 {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  prefix fd67::/64 { };\n};\n');
  // SIGTERM: radvd's privilege-separation child exits with it.
  startInNamespace(t, namespace, 'radvd', ['--nodaemon', '--config', config, '--pidfile', join(dir, 'radvd.pid'), '--logmethod', 'stderr'], 'SIGTERM');
}

/** busybox udhcpd in namespace `site`, on a veth port of the server's bridge: the site's address server. */
function startSiteDhcp(t: ExecutionContext, server: string, site: string, dir: string, staticLeases: Readonly<Record<string, string>>): void {
  ip('link', 'add', 'site0', 'netns', server, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', site);
  ip('-n', server, 'link', 'set', 'site0', 'master', 'br0');
  ip('-n', server, 'link', 'set', 'site0', 'up');
  ip('-n', site, 'addr', 'add', '10.67.0.2/24', 'dev', 'eth0');
  ip('-n', site, 'link', 'set', 'eth0', 'up');
  const config = join(dir, 'udhcpd.conf');
  writeFileSync(join(dir, 'udhcpd.leases'), '');
  writeFileSync(config, [
    'interface eth0', `start ${SITE_POOL.first}`, `end ${SITE_POOL.last}`,
    `lease_file ${join(dir, 'udhcpd.leases')}`, `pidfile ${join(dir, 'udhcpd.pid')}`,
    'opt subnet 255.255.255.0', 'opt router 10.67.0.254', 'opt lease 600',
    ...Object.entries(staticLeases).map(([mac, address]) => `static_lease ${mac} ${address}`), '',
  ].join('\n'));
  startInNamespace(t, site, 'busybox', ['udhcpd', '-f', config]);
}

export type Firmware = 'bios-e1000' | 'uefi-virtio';

export interface Vm {
  /** Resolves when QEMU exits (it should not, before the test kills it). */
  exited: Promise<void>;
  output(): string;
}

export interface VmOptions {
  /** Default: 128 MiB (BIOS), 256 MiB (UEFI): enough for the firmware and iPXE. */
  memoryMiB?: number;
  /** QEMU's serial port arguments; default none (`-serial none`). */
  serial?: string[];
  /**
   * QEMU's CPU model; default QEMU's own (qemu64). `max` has RDRAND, which seeds the kernel's
   * random number generator at boot as on real hardware: without it, a Linux booted under TCG
   * waits a minute or more for entropy at its first getrandom().
   */
  cpu?: string;
}

/**
 * QEMU's arguments for a diskless VM that network-boots from tap0: `bios-e1000` is SeaBIOS with
 * QEMU's default e1000 option ROM (iPXE, from ipxe-qemu); `uefi-virtio` is OVMF with its own UEFI
 * PXE stack on virtio-net (no option ROM: `romfile=`). TCG only: KVM is not available to (or hangs
 * in) CI.
 */
export function vmArgs(lab: BootLab, firmware: Firmware, mac: string, options: VmOptions = {}): string[] {
  const common = ['-accel', 'tcg', ...(options.cpu === undefined ? [] : ['-cpu', options.cpu]), '-nodefaults', '-display', 'none', ...(options.serial ?? ['-serial', 'none']), '-monitor', 'none', '-boot', 'n',
    '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no'];
  if (firmware === 'bios-e1000') return [...common, '-m', String(options.memoryMiB ?? 128), '-device', `e1000,netdev=n0,mac=${mac}`];
  // OVMF writes its variable store: each VM gets its own copy.
  const vars = join(lab.dir, 'OVMF_VARS.fd');
  copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', vars);
  return [...common, '-m', String(options.memoryMiB ?? 256), '-machine', 'q35',
    '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd',
    '-drive', `if=pflash,format=raw,file=${vars}`,
    '-device', `virtio-net-pci,netdev=n0,mac=${mac},romfile=`];
}

/** Starts the VM of vmArgs in the lab's namespace, killed by pid at teardown. */
export function startVm(t: ExecutionContext, lab: BootLab, firmware: Firmware, mac: string, options: VmOptions = {}): Vm {
  const qemu = startInNamespace(t, lab.server, 'qemu-system-x86_64', vmArgs(lab, firmware, mac, options));
  return { exited: qemu.exited, output: qemu.output };
}
