// One command run as root on a node over SSH (ssh2; no ssh process): its stdout streamed as it
// comes, its stderr and exit status kept for a status line after it, a caller who goes away ending
// the remote command, and every failure before the command starts naming the node and the step it
// failed at (connect, handshake, authenticate, exec). Used by PUT /node/<UID>/exec with the head's
// key (keys.ts). docs/security.md, "Remote execution".
import { connect as tcpConnect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import ssh2, { type ClientChannel } from 'ssh2';

export type ExecStep = 'connect' | 'handshake' | 'authenticate' | 'exec';

/** A command that never started: which node, which step, why. */
export class RemoteExecError extends Error {
  constructor(
    readonly node: string,
    readonly step: ExecStep,
    detail: string,
  ) {
    super(`Node ${node}: ${step} failed: ${detail}`);
  }
}

export interface RemoteTarget {
  /** The node's name, for reasons and the log. */
  node: string;
  host: string;
  port: number;
}

export interface RemoteCommand {
  cmd: string;
  /** The command's standard input; without it the input is empty (/dev/null). */
  stdin?: string;
  username: string;
  privateKey: Buffer | string;
  /** Connect, handshake, authentication and channel opening each within this many ms. */
  timeoutMs: number;
}

/** How the command ended. */
export interface RemoteResult {
  /** Exit status; null when it was killed by a signal or the connection broke. */
  exit: number | null;
  signal: string | null;
  /** The first MAX_STDERR_BYTES of its standard error. */
  stderr: string;
  stderr_truncated: boolean;
}

export const MAX_STDERR_BYTES = 64 * 1024;
/**
 * Largest standard input: it travels base64-encoded inside the command line keel runs (see
 * wrappedCommand), and Linux takes at most 128 KiB in one argument.
 */
export const MAX_STDIN_BYTES = 64 * 1024;

export interface RemoteRun {
  /** Standard output as it comes, then the status line (statusLine). */
  output: AsyncIterable<Buffer>;
  /** Settles when the command has ended (or was cancelled). */
  result: Promise<RemoteResult>;
  /** End the remote command (the connection closes; the node kills the command): the caller has gone. */
  cancel(): void;
}

/** The separator before the status line: a line break, then this, then the JSON of RemoteResult. */
export const STATUS_MARKER = '\nkeel-exec-status: ';

/** What follows the output: the one line a caller splits on (the last STATUS_MARKER in the body). */
export function statusLine(result: RemoteResult): Buffer {
  return Buffer.from(`${STATUS_MARKER}${JSON.stringify(result)}\n`);
}

function tcp(target: RemoteTarget, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new RemoteExecError(target.node, 'connect', `no TCP connection to ${target.host}:${target.port} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new RemoteExecError(target.node, 'connect', `${target.host}:${target.port}: ${err.message}`));
    });
  });
}

/** A connected, authenticated client. */
function session(target: RemoteTarget, socket: Socket, command: RemoteCommand): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let settled = false;
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    // `on`, not `once`: ssh2 may report the same failure twice (a timeout, then the lost
    // connection), and an error with no listener would throw.
    client.on('error', (err: Error & { level?: string }) => {
      if (settled) return;
      settled = true;
      client.end();
      socket.destroy();
      const step: ExecStep = err.level === 'client-authentication' ? 'authenticate' : 'handshake';
      const detail = err.level === 'client-timeout' ? `no answer within ${command.timeoutMs / 1000} s` : err.level === 'client-authentication' ? `the node refused the key for ${command.username}` : err.message;
      reject(new RemoteExecError(target.node, step, detail));
    });
    client.connect({ sock: socket, username: command.username, privateKey: command.privateKey, readyTimeout: command.timeoutMs, keepaliveInterval: 15_000 });
  });
}

function openExec(target: RemoteTarget, client: ssh2.Client, command: RemoteCommand): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.end();
      reject(new RemoteExecError(target.node, 'exec', `no channel within ${command.timeoutMs / 1000} s`));
    }, command.timeoutMs);
    client.exec(wrappedCommand(command.cmd, command.stdin), (err, channel) => {
      clearTimeout(timer);
      if (err) {
        client.end();
        reject(new RemoteExecError(target.node, 'exec', err.message));
      } else resolve(channel);
    });
  });
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

/**
 * What keel runs on the node for `command`: OpenSSH does not signal a root session's command
 * (session_signal_req: "session signalling requires privilege separation", which root logins do
 * not use), and a command without a terminal outlives a closed session. So the command runs in a
 * session (process group) of its own, beside a watcher reading the channel's input, which keel
 * keeps open: when the connection ends, for whatever reason, the watcher reads end of file and
 * kills the command's process group. The command's own input comes from a temporary file (or
 * /dev/null). Command and input travel base64-encoded: nothing in them is read as wrapper script.
 * The node needs a POSIX sh, base64, mktemp and setsid (coreutils, util-linux).
 */
export function wrappedCommand(cmd: string, stdin: string | undefined): string {
  const input = stdin === undefined
    ? ['i=/dev/null']
    : ['i=$(mktemp) || exit 125', `printf %s '${b64(stdin)}' | base64 -d > "$i" || exit 125`];
  return [
    'exec 3<&0',
    ...input,
    `c=$(printf %s '${b64(cmd)}' | base64 -d) || exit 125`,
    'setsid "${SHELL:-/bin/sh}" -c "$c" < "$i" 3<&- &',
    'p=$!',
    // `kill -9 -<pgid>`: dash's kill takes no `--`.
    'setsid sh -c \'cat > /dev/null; kill -9 -"$1"\' watch "$p" <&3 > /dev/null 2>&1 &',
    'w=$!',
    'exec 3<&-',
    'wait "$p"; s=$?',
    // Reaped here, with the shell's "Killed" notice going nowhere (not into the command's stderr).
    '{ kill -9 -"$w"; wait "$w"; } 2> /dev/null',
    stdin === undefined ? ':' : 'rm -f "$i"',
    'exit "$s"',
  ].join('\n');
}

/** Start `command` on `target`; resolves once the command runs, rejects with a RemoteExecError if it never does. */
export async function runRemote(target: RemoteTarget, command: RemoteCommand): Promise<RemoteRun> {
  const socket = await tcp(target, command.timeoutMs);
  const client = await session(target, socket, command);
  const channel = await openExec(target, client, command);
  // A connection error from here on ends the run (below, on 'close').
  client.on('error', () => client.end());
  const output = new PassThrough();
  const stderr: Buffer[] = [];
  let stderrBytes = 0;
  let truncated = false;
  let exit: number | null = null;
  let signal: string | null = null;
  let finished = false;
  // Backpressure: the channel's window stays closed while the HTTP side has not taken the output.
  channel.on('data', (piece: Buffer) => {
    if (!output.write(piece)) channel.pause();
  });
  output.on('drain', () => channel.resume());
  channel.stderr.on('data', (piece: Buffer) => {
    const room = MAX_STDERR_BYTES - stderrBytes;
    if (piece.length > room) truncated = true;
    if (room > 0) stderr.push(piece.subarray(0, room));
    stderrBytes += Math.min(room, piece.length);
  });
  channel.on('exit', (code: number | null, name?: string) => {
    exit = typeof code === 'number' ? code : null;
    signal = name ?? null;
  });
  const result = new Promise<RemoteResult>((resolve) => {
    const done = () => {
      if (finished) return;
      finished = true;
      const ended: RemoteResult = { exit, signal, stderr: Buffer.concat(stderr).toString('utf8'), stderr_truncated: truncated };
      output.end(statusLine(ended));
      client.end();
      resolve(ended);
    };
    channel.once('close', done);
    // The connection broke under the command: end what was sent with what is known.
    client.once('close', done);
  });
  // The channel's input stays open: the watcher on the node reads it (wrappedCommand).
  return {
    output,
    result,
    cancel() {
      if (finished) return;
      // The node's watcher reads end of file and kills the command (wrappedCommand).
      client.end();
    },
  };
}
