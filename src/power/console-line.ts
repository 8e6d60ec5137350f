// The two kinds of console line keel reads a node's serial console from:
// - a local serial device: `stty -F <dev> <baud> raw -echo`, then the device opened non-blocking
//   and driven by a libuv TTY handle (node:tty), both directions. No native addon
//   (@serialport/bindings-cpp would have to join NATIVE_ADDONS of the single binary, docs/build.md),
//   and no libuv threadpool thread parked in a blocking read per console, as fs streams would.
// - IPMI Serial-over-LAN: FreeIPMI's `ipmiconsole`, which needs a terminal on stdin, run under
//   util-linux `script` (a pty) with the credentials in a FreeIPMI config file (never argv).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { isatty, ReadStream } from 'node:tty';
import { execa } from 'execa';

export interface SerialSpec {
  kind: 'serial';
  device: string;
  baud: number;
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

export type LineSpec = SerialSpec | SolSpec;

export interface LineEvents {
  data(bytes: Buffer): void;
  /** The line is gone (device error, process exit); called once, not after close(). */
  ended(reason: string): void;
}

export interface ConsoleLine {
  /** Keystrokes to the node. */
  write(bytes: Buffer): void;
  /** Close the device or stop the process (by PID) and wait for it. */
  close(): Promise<void>;
}

/** Speeds stty accepts. */
export const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600] as const;

export async function openSerialLine(spec: SerialSpec, events: LineEvents): Promise<ConsoleLine> {
  const stty = await execa('stty', ['-F', spec.device, String(spec.baud), 'raw', '-echo'], { reject: false, timeout: 5000, stdin: 'ignore', all: true });
  if (stty.failed) throw new Error(`stty ${spec.device}: ${(stty.all ?? stty.shortMessage).trim().split('\n')[0]}`);
  const fd = openSync(spec.device, constants.O_RDWR | constants.O_NOCTTY | constants.O_NONBLOCK);
  if (!isatty(fd)) {
    closeSync(fd);
    throw new Error(`${spec.device} is not a terminal device`);
  }
  // A TTY handle is a full-duplex stream; node:tty only calls its class ReadStream.
  const stream = new ReadStream(fd, { readable: true, writable: true });
  let closing = false;
  let ended = false;
  const end = (reason: string) => {
    if (closing || ended) return;
    ended = true;
    stream.destroy();
    events.ended(reason);
  };
  stream.on('data', (chunk: Buffer) => events.data(chunk));
  stream.on('error', (err) => end(`${spec.device}: ${err.message}`));
  stream.on('end', () => end(`${spec.device}: end of input`));
  const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
  return {
    write: (bytes) => {
      if (!stream.destroyed) stream.write(bytes);
    },
    async close() {
      closing = true;
      stream.destroy();
      await closed;
    },
  };
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

export function openLine(spec: LineSpec, events: LineEvents): Promise<ConsoleLine> {
  return spec.kind === 'serial' ? openSerialLine(spec, events) : Promise.resolve(openSolLine(spec, events));
}
