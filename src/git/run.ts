// Running Debian's `git` for keel: never through a shell, with an environment keel sets (no user or
// system configuration, no prompts, no command transports), a timeout, and output collected up to
// a limit. Callers pass validated names after `--` or `--end-of-options`: user input is never an option.
import { spawn } from 'node:child_process';

/** 64 MiB: the most of one command's output keel keeps in memory (a file read from a repository). */
export const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** The environment every git keel runs gets: only what it needs, nothing inherited that changes git's behaviour. */
export function gitEnvironment(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // No ~/.gitconfig or /etc/gitconfig of whoever runs keel: the same git everywhere.
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    HOME: '/nonexistent',
    // A remote asking for credentials fails instead of waiting on a terminal nobody watches.
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    SSH_ASKPASS: '/bin/false',
    GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new',
    // Only network transports: never file:// or ext:: (see the gitrepo class's URL rule).
    GIT_ALLOW_PROTOCOL: 'http:https:git:ssh',
    // Merge commits keel makes when it follows an upstream.
    GIT_AUTHOR_NAME: 'keel',
    GIT_AUTHOR_EMAIL: 'keel@localhost',
    GIT_COMMITTER_NAME: 'keel',
    GIT_COMMITTER_EMAIL: 'keel@localhost',
    LC_ALL: 'C',
    ...extra,
  };
}

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** git exited non-zero, timed out, or printed more than allowed; `stderr` says why. */
export class GitFailed extends Error {
  override readonly name = 'GitFailed';
  constructor(
    readonly args: readonly string[],
    readonly result: GitResult,
    why = result.stderr.trim().split('\n').slice(-3).join('; ') || `exit code ${result.code}`,
  ) {
    super(why);
  }
}

export interface RunOptions {
  /** The repository (`git -C`). */
  cwd?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Exit codes that are answers, not failures (e.g. 1 of `merge-tree`: a conflict). */
  okCodes?: readonly number[];
  /** Written to git's stdin (e.g. `update-ref --stdin`'s transaction). */
  input?: string;
  /** Kills git when aborted (a head shutting down mid-sync). */
  signal?: AbortSignal;
}

/** Run `git args…`; resolves when it exits with 0 (or an `okCodes` code), else rejects with GitFailed. */
export function runGit(args: readonly string[], options: RunOptions = {}): Promise<GitResult> {
  const { cwd, env, timeoutMs = 60_000, okCodes = [0], input, signal } = options;
  if (signal?.aborted) return Promise.reject(new Error(`git ${args[0]} not started: keel is shutting down`));
  return new Promise((resolve, reject) => {
    /** Why keel stopped git, when it did. */
    let why: string | undefined;
    // A process group of its own, killed whole: `git fetch` runs git-remote-http and index-pack,
    // which a kill of git alone would leave running.
    const child = spawn('git', cwd === undefined ? args : ['-C', cwd, ...args], { env: gitEnvironment(env), stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true });
    const onAbort = () => {
      why = `git ${args[0]} stopped: keel is shutting down`;
      killGroup(child.pid);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (input !== undefined) {
      // git may exit before reading it all (it refused): its exit code says so, not an EPIPE here.
      child.stdin!.on('error', () => {});
      child.stdin!.end(input);
    }
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    const timer = setTimeout(() => {
      why = `git ${args[0]} timed out after ${timeoutMs / 1000} s`;
      killGroup(child.pid);
    }, timeoutMs);
    child.stdout!.on('data', (piece: Buffer) => {
      outBytes += piece.length;
      if (outBytes > MAX_OUTPUT_BYTES) {
        why = `git ${args[0]} printed more than ${MAX_OUTPUT_BYTES} bytes`;
        killGroup(child.pid);
      } else out.push(piece);
    });
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 65_536) stderr += text;
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const result = { code: code ?? -1, stdout: Buffer.concat(out), stderr };
      if (why !== undefined) reject(new GitFailed(args, result, why));
      else if (okCodes.includes(result.code)) resolve(result);
      else reject(new GitFailed(args, result));
    });
  });
}

/** SIGKILL the process group `pid` leads (git and every helper it started); gone already is fine. */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group has exited.
  }
}
