// What a console line is, and the kinds keel reads a node's serial console from:
// - a local serial device: @serialport/stream on the native @serialport/bindings-cpp
//   (console-serial.ts), both directions, line parameters and BREAK through the binding.
// - a terminal server's TCP port, raw or telnet (console-tcp.ts).
// - IPMI Serial-over-LAN (here): FreeIPMI's `ipmiconsole`, which needs a terminal on stdin, run under
//   util-linux `script` (a pty) with the credentials in a FreeIPMI config file (never argv).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface SerialSpec {
  kind: 'serial';
  device: string;
  baud: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'even' | 'odd';
  stopBits: 1 | 2;
  flow: 'none' | 'rtscts' | 'xonxoff';
}

/** A terminal server's TCP port (serial concentrators, QEMU's `-serial tcp:`): raw bytes, or telnet. */
export interface TcpSpec {
  kind: 'tcp';
  host: string;
  port: number;
  protocol: 'raw' | 'telnet';
}

export interface SolSpec {
  kind: 'sol';
  host: string;
  port: number;
  /** FreeIPMI config file holding username and password (mode 0600). */
  configFile: string;
  cipherSuite?: number;
  workarounds: string;
  retransmissionTimeoutMs: number;
}

export type LineSpec = SerialSpec | TcpSpec | SolSpec;

/** The node has no console line to act on (no capture, the line is down, or it cannot do that): the caller's 409. */
export class ConsoleUnavailable extends Error {}

export interface LineEvents {
  data(bytes: Buffer): void;
  /** The line is gone (device error, process exit); called once, not after close(). */
  ended(reason: string): void;
}

export interface ConsoleLine {
  /** Keystrokes to the node. */
  write(bytes: Buffer): void;
  /** A serial BREAK (Magic SysRq's first half); `durationMs` where the line can time it (serial). */
  sendBreak(durationMs: number): Promise<void>;
  /** Close the device or stop the process (by PID) and wait for it. */
  close(): Promise<void>;
}

const shellQuote = (arg: string) => `'${arg.replaceAll("'", `'\\''`)}'`;

/**
 * ipmiconsole's argv (no credentials: they are in the config file). No --session-timeout: the
 * node's ipmi_session_timeout_ms is sized for power queries, and ipmiconsole refuses anything
 * under 20 s ("ipmiconsole_ctx_create: Invalid argument", FreeIPMI 1.6.10); its default is 60 s.
 */
export function ipmiconsoleArgs(spec: SolSpec): string[] {
  const args = [`--config-file=${spec.configFile}`, `--hostname=${spec.port === 623 ? spec.host : `${spec.host}:${spec.port}`}`,
    `--retransmission-timeout=${spec.retransmissionTimeoutMs}`];
  if (spec.cipherSuite !== undefined) args.push(`--cipher-suite-id=${spec.cipherSuite}`);
  if (spec.workarounds !== '') args.push(`--workaround-flags=${spec.workarounds}`);
  return args;
}

/** PIDs of a process's children (Linux /proc), to stop what `script` started when it is killed. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number);
  } catch {
    return [];
  }
}

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** ipmiconsole's escape character: a typed `&` is sent as `&&` so it reaches the node as `&`. */
export const escapeSolInput = (bytes: Buffer): Buffer => (bytes.includes(0x26) ? Buffer.from(bytes.toString('latin1').replaceAll('&', '&&'), 'latin1') : bytes);

/** ipmiconsole's escape sequence for a serial break; only ever sent for a BREAK request, never from keystrokes (escapeSolInput). */
export const SOL_BREAK_ESCAPE = Buffer.from('&B', 'latin1');

export function openSolLine(spec: SolSpec, events: LineEvents): ConsoleLine {
  const command = `exec ipmiconsole ${ipmiconsoleArgs(spec).map(shellQuote).join(' ')}`;
  // script: -q quiet, -f flush every write, -c the command, /dev/null as the typescript file.
  const child: ChildProcess = spawn('script', ['-qfc', command, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', SHELL: '/bin/sh', TERM: 'dumb', LANG: 'C' },
  });
  let closing = false;
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => events.data(chunk));
  child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-500)));
  child.stdin!.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  child.once('error', (err) => {
    if (!closing) events.ended(`cannot start ipmiconsole: ${err.message}`);
    closing = true;
  });
  child.once('exit', (code, sig) => {
    if (closing) return;
    closing = true;
    const why = sig ? `signal ${sig}` : `code ${code}`;
    events.ended(`ipmiconsole exited (${why})${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`);
  });
  return {
    write: (bytes) => {
      if (!closing && child.stdin!.writable) child.stdin!.write(escapeSolInput(bytes));
    },
    // ipmiconsole's escape `&B` sends a SOL break (the packet's break bit; the BMC decides how long).
    sendBreak: async () => {
      if (closing || !child.stdin!.writable) throw new Error('ipmiconsole is not running');
      child.stdin!.write(SOL_BREAK_ESCAPE);
    },
    async close() {
      const wasRunning = !closing && child.pid !== undefined;
      closing = true;
      if (!wasRunning || child.pid === undefined) return exited;
      const pid = child.pid;
      const children = childPids(pid);
      signal(pid, 'SIGTERM');
      const timer = setTimeout(() => signal(pid, 'SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      // script terminates ipmiconsole on SIGTERM; after a SIGKILL of script it would linger.
      for (const orphan of children) if (commandOf(orphan) === 'ipmiconsole') signal(orphan, 'SIGKILL');
    },
  };
}
