// A node with a real BMC, inside a boot lab's network namespace (test/dhcp/boot-lab.ts): OpenIPMI's
// ipmi_sim is the BMC, and its `startcmd` is the machine — a QEMU VM that network-boots from tap0.
// Power is real: ipmi_sim's power state is whether that QEMU process runs, chassis power on starts
// it, power off makes QEMU shut down (the VM connects back to ipmi_sim with `ipmi-bmc-extern`, the
// KCS interface's external BMC, over which ipmi_sim sends the power-off), a cycle does both. The
// VM's serial port is ipmi_sim's Serial-over-LAN device, so keel can capture it with console=sol.
//
// The serial line between the VM and ipmi_sim is a pty pair joined by socat (test/power/pty-pair.ts):
// ipmi_sim opens its end at start and keeps it, QEMU opens the other end at each power on, and the
// test holds that end open too, so the pair outlives each QEMU. Measured with OpenIPMI 2.0.33,
// FreeIPMI 1.6.10 and QEMU 7.2, the TCP forms of ipmi_sim's SOL device (`sol "tcp:…"` /
// `"telnet:…"` to a QEMU serial server) lose the console for good: ipmi_sim connects by a retry
// timer (every 10 s, QEMU is not up when it starts), and from then on it sends a SOL data packet
// without characters whenever a second passes without output (telnet: at once, the negotiation
// bytes it strips); ipmiconsole NACKs it, ipmi_sim stops reading the socket until an ACK that
// never comes, and nothing more reaches the SOL session. A device ipmi_sim opens at start has no
// such timer.
// FreeIPMI's ipmiconsole reaches no other port than 623 (docs/power.md): the BMC listens on
// 127.0.0.1:623 of the lab's namespace, where keel runs too.
// ipmi_sim, the QEMU it started (from its -pidfile) and socat are killed by PID at teardown.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { vmArgs, type BootLab, type Firmware } from '../dhcp/boot-lab.js';
import { startPtyPair } from '../power/pty-pair.js';
import { lanConfHeader } from '../power/ipmi-sim.js';

export const BMC_USER = 'keeladmin';
export const BMC_PASSWORD = 'bmc-pass-1';
/** ipmi_sim's LAN interface (IPMI 2.0, RMCP+), in the lab's namespace. */
export const BMC_HOST = '127.0.0.1';
export const BMC_PORT = 623;
/** Where ipmi_sim listens for the VM's ipmi-bmc-extern connection. */
const VM_CHANNEL_PORT = 9002;

export interface BmcVm {
  /** The running QEMU's pid (from its pidfile), undefined while the machine is off. */
  qemuPid(): number | undefined;
  /** What QEMU printed over all its runs and what ipmi_sim printed, for failure messages. */
  qemuOutput(): string;
  simOutput(): string;
}

export interface BmcVmOptions {
  firmware: Firmware;
  mac: string;
  memoryMiB: number;
}

const shellQuote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

function isRunning(pid: number, command: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === command && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** Whether a UDP socket is bound to 127.0.0.1:port in the network namespace of process `pid` (its /proc/<pid>/net/udp). */
function udpBound(pid: number, port: number): Promise<boolean> {
  const local = `0100007F:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  return readFile(`/proc/${pid}/net/udp`, 'utf8').then(
    (table) => table.split('\n').some((line) => line.trim().split(/\s+/)[1] === local),
    () => false,
  );
}

/** Starts ipmi_sim in the lab's namespace as the BMC of a VM that is off until powered on. */
export async function startBmcVm(t: ExecutionContext, lab: BootLab, options: BmcVmOptions): Promise<BmcVm> {
  const dir = join(lab.dir, 'bmc');
  mkdirSync(dir);
  const line = await startPtyPair();
  t.teardown(() => line.stop());
  const pidFile = join(dir, 'qemu.pid');
  const qemuLog = join(dir, 'qemu.log');
  const qemu = [
    ...vmArgs(lab, options.firmware, options.mac, {
      memoryMiB: options.memoryMiB,
      serial: ['-chardev', `serial,id=sol,path=${line.machine}`, '-serial', 'chardev:sol'],
    }),
    '-pidfile', pidFile,
    // The external BMC: QEMU reconnects to ipmi_sim every second should the connection drop.
    '-chardev', `socket,id=bmc,host=${BMC_HOST},port=${VM_CHANNEL_PORT},reconnect=1`,
    '-device', 'ipmi-bmc-extern,chardev=bmc,id=bmc0', '-device', 'isa-ipmi-kcs,bmc=bmc0',
  ];
  const startScript = join(dir, 'start-vm.sh');
  // exec: the process ipmi_sim starts, watches and kills is QEMU itself.
  writeFileSync(startScript, `#!/bin/sh\nexec qemu-system-x86_64 ${qemu.map(shellQuote).join(' ')} >>${shellQuote(qemuLog)} 2>&1\n`, { mode: 0o755 });
  writeFileSync(join(dir, 'lan.conf'), [
    ...lanConfHeader('keelnode', BMC_HOST, BMC_PORT),
    `  serial 15 ${BMC_HOST} ${VM_CHANNEL_PORT} codec VM`,
    `  startcmd "${startScript}"`,
    '  startnow false',
    // A power off that QEMU has not acted on within 5 s is a SIGTERM, 5 s later a SIGKILL.
    '  poweroff_wait 5',
    '  kill_wait 5',
    `  sol "${line.device}" 115200`,
    `  user 2 true "${BMC_USER}" "${BMC_PASSWORD}" admin 10 none md2 md5 straight`,
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'sim.emu'), ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr', 'mc_enable 0x20', ''].join('\n'));

  // `ip netns exec` execs ipmi_sim: the child's pid is ipmi_sim's.
  const sim = spawn('ip', ['netns', 'exec', lab.server, 'ipmi_sim', '-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', join(dir, 'state'), '-n', '-p'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let simOutput = '';
  const keep = (chunk: Buffer) => (simOutput = (simOutput + chunk.toString('utf8')).slice(-8000));
  sim.stdout!.on('data', keep);
  sim.stderr!.on('data', keep);
  const simExited = new Promise<void>((resolve) => sim.once('exit', () => resolve()));
  const qemuPid = () => {
    if (!existsSync(pidFile)) return undefined;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && isRunning(pid, 'qemu-system-x86') ? pid : undefined;
  };
  // ipmi_sim first (it would start QEMU again or kill it on its own schedule), then its QEMU.
  t.teardown(async () => {
    if (sim.exitCode === null && sim.signalCode === null) {
      sim.kill('SIGTERM');
      if (!(await until(() => sim.exitCode !== null || sim.signalCode !== null, 3000))) sim.kill('SIGKILL');
      await simExited;
    }
    const pid = qemuPid();
    if (pid !== undefined) {
      process.kill(pid, 'SIGKILL');
      await until(() => !isRunning(pid, 'qemu-system-x86'), 5000);
    }
  });
  // Up to 15 s: ipmi_sim starts slowly on a loaded machine.
  if (!(await until(async () => sim.exitCode !== null || await udpBound(sim.pid!, BMC_PORT), 15_000)) || sim.exitCode !== null) {
    throw new Error(`ipmi_sim did not listen on ${BMC_HOST}:${BMC_PORT}: ${simOutput}`);
  }
  return {
    qemuPid,
    qemuOutput: () => (existsSync(qemuLog) ? readFileSync(qemuLog, 'utf8').slice(-8000) : ''),
    simOutput: () => simOutput,
  };
}
