// `keel exec NODE -- CMD`: runs CMD as root on the node over SSH through the head
// (PUT /node/<id>/exec, src/api/routes/exec.ts). The command's stdout is streamed to ours as it
// comes; keel's status line after it gives the command's stderr (written to ours) and its exit
// status, which becomes this command's exit code, as with ssh.
import { constants } from 'node:os';
import type { Command } from 'commander';
import { MAX_STDIN_BYTES, STATUS_MARKER } from '../../ssh/exec.js';
import { ApiError } from '../client.js';
import { clientCommand, seg, sessionFor, type ClientOptions } from './common.js';

const MARKER = Buffer.from(STATUS_MARKER);

export interface ExecStatus {
  exit: number | null;
  signal: string | null;
  stderr: string;
  stderr_truncated: boolean;
}

/**
 * Splits the exec answer into the command's stdout, written as it comes, and the status record
 * after the last marker. Everything that cannot be the start of the final marker is written at
 * once: what follows the last marker seen so far (and the bytes that could begin one) is held back.
 */
export class ExecStream {
  private held = Buffer.alloc(0);

  constructor(private readonly write: (bytes: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.held = Buffer.concat([this.held, chunk]);
    const marker = this.held.lastIndexOf(MARKER);
    // No marker yet: keep only what could be its first bytes.
    const keepFrom = marker >= 0 ? marker : Math.max(0, this.held.length - (MARKER.length - 1));
    if (keepFrom > 0) {
      this.write(this.held.subarray(0, keepFrom));
      this.held = this.held.subarray(keepFrom);
    }
  }

  /** The status record once the answer has ended; an answer without one was cut off. */
  end(): ExecStatus {
    if (!this.held.subarray(0, MARKER.length).equals(MARKER)) {
      this.write(this.held);
      throw new Error('The answer ended without keel\'s status line: the connection to the head broke');
    }
    return JSON.parse(this.held.subarray(MARKER.length).toString('utf8')) as ExecStatus;
  }
}

/** The exit code for the remote status: the command's, or 128 + the signal's number as a shell reports it. */
export function exitCodeFor(status: ExecStatus): number {
  if (status.exit !== null) return status.exit;
  const number = status.signal === null ? undefined : (constants.signals as Record<string, number>)[`SIG${status.signal}`];
  return number === undefined ? 255 : 128 + number;
}

/** All of standard input, refused beyond what the head accepts. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN_BYTES) throw new Error(`Standard input is over ${MAX_STDIN_BYTES} bytes, more than keel sends to a remote command`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function registerExecCommand(program: Command): void {
  clientCommand(program.command('exec <node> <command...>').description('run a command as root on a node over SSH (through the head): keel exec NODE -- CMD [ARGS…]; exits with its exit status')
    .option('--stdin', "send this command's standard input to the remote command (at most 64 KiB)")
    .option('--timeout <seconds>', 'seconds each step before the command runs may take (default 15)'))
    .action(async (node: string, words: string[], options: ClientOptions & { stdin?: boolean; timeout?: string }) => {
      const body: Record<string, unknown> = { cmd: words.join(' ') };
      if (options.stdin) body.stdin = await readStdin();
      if (options.timeout !== undefined) body.timeout = Number(options.timeout);
      const client = await (await sessionFor(options)).fresh();
      const res = await fetch(`${client.base}/node/${seg(node)}/exec`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${client.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.headers.get('content-type') !== 'application/octet-stream') {
        const answer = (await res.json().catch(() => ({}))) as { reason?: string };
        throw new ApiError(res.status, answer.reason ?? `HTTP ${res.status}`);
      }
      // --json: one object at the end ({stdout, exit, signal, stderr, stderr_truncated}); else stdout as it comes.
      const stdout: Buffer[] = [];
      const stream = new ExecStream((bytes) => (options.json ? stdout.push(Buffer.from(bytes)) : process.stdout.write(bytes)));
      for await (const chunk of res.body!) stream.push(Buffer.from(chunk as Uint8Array));
      const status = stream.end();
      if (options.json) process.stdout.write(`${JSON.stringify({ stdout: Buffer.concat(stdout).toString('utf8'), ...status }, null, 2)}\n`);
      else {
        process.stderr.write(status.stderr);
        if (status.stderr_truncated) process.stderr.write('[keel: stderr truncated]\n');
      }
      process.exitCode = exitCodeFor(status);
    });
}
