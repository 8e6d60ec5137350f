// The processes a benchmark starts (servers, load generators): each tracked until it exits, so the
// bench's exit handler can kill by pid whatever is still running, and its recent output kept for
// the failure message or for parsing; and the one way the benches wait for a condition.
import { spawn, type ChildProcess } from 'node:child_process';

export interface Started {
  child: ChildProcess;
  exited: Promise<void>;
  output: () => string;
}

export class BenchProcesses {
  private readonly running = new Set<ChildProcess>();

  /** Spawns `argv` (its first word execs the rest, e.g. taskset: the pid is the command's) keeping the last `keepChars` of its output. */
  start(argv: string[], keepChars: number, env: NodeJS.ProcessEnv = process.env): Started {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.running.add(child);
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-keepChars);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<void>((resolve) => child.on('exit', () => {
      this.running.delete(child);
      resolve();
    }));
    return { child, exited, output: () => output };
  }

  async stop(started: Started, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill(signal);
    await started.exited;
  }

  /** SIGKILL to every process still running (the bench's exit handler). */
  killAll(): void {
    for (const child of this.running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Polls `check` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
