// The build queue every artifact builder uses: jobs (jobs.ts) wait as `queued` and run, oldest
// first, at most `concurrency` at a time; each build's commands run in a process group of their
// own, so that a cancel (DELETE of a queued or running artifact) ends every process of it; the
// artifact lands in the content store in the same write that marks the job `done`. A job that was
// `running` when keel stopped (a crash, kill -9, a restart) is queued again at the next start: a
// build only reads its inputs, so running it again is safe. docs/builders.md.
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { Conflict, NotFound } from '../model/errors.js';
import type { ChunkStore } from '../store/chunks.js';
import { artifactFileId, type BuildJob, BuildJobs, ENDED } from './jobs.js';

/** The actor keel's own job changes are recorded under. */
const KEEL = 'keel';
/** At most one progress write per this many milliseconds (a build reports a step per object file). */
const PROGRESS_WRITE_INTERVAL_MS = 1000;
/** An output line that reports an error (gcc, ld, make, sh). */
const ERROR_LINE = /\berror\b|undefined (symbol|reference)|No rule to make target|No such file|not found|\*\*\*/i;
/** How long a cancelled build's processes get after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 5000;

/** What a builder gets for one job. */
export interface BuildRun {
  readonly job: BuildJob;
  /** Aborted when the job is cancelled or keel stops. */
  readonly signal: AbortSignal;
  /** A line of the job's log (GET /<kind>s/<id>/log). */
  log(line: string): void;
  /** The build's progress, 0–99 (100 is the queue's, when the artifact is stored); never goes back. */
  progress(percent: number): void;
  /**
   * Runs a command in a process group of its own, its output lines in the job's log (and to
   * `onLine`); resolves when it exits with status 0. On cancel the whole group is killed.
   */
  exec(file: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void }): Promise<void>;
}

/** One kind of artifact: how its request is checked and how it is built. */
export interface Builder {
  /** The job kind and API name: `ipxe` is served as /ipxes. */
  readonly kind: string;
  /** The request's fields, checked (throws Invalid naming the field). */
  params(body: unknown): Record<string, unknown>;
  /** The artifact's file name (`ipxe.efi`), known before it is built: its URL is stable. */
  fileName(params: Record<string, unknown>): string;
  /** Builds the artifact; answers the path of the built file, which the queue stores and then removes. */
  build(run: BuildRun): Promise<string>;
}

export interface BuildQueueOptions {
  jobs: BuildJobs;
  chunks: ChunkStore;
  builders: readonly Builder[];
  /** Builds at once (config build.concurrency). */
  concurrency: number;
  /** Where the jobs' logs are kept, one file per job. */
  logDir: string;
  log: Logger;
}

interface Running {
  controller: AbortController;
  /** Who cancelled it, once someone did. */
  cancelledBy?: string;
  settled: Promise<void>;
}

export class BuildQueue {
  readonly jobs: BuildJobs;
  private readonly running = new Map<string, Running>();
  private closing = false;

  constructor(private readonly options: BuildQueueOptions) {
    this.jobs = options.jobs;
    mkdirSync(options.logDir, { recursive: true, mode: 0o700 });
  }

  /** Queues again what was running when keel stopped, then starts what is queued. */
  async start(): Promise<void> {
    for (const job of this.jobs.list()) {
      if (job.status !== 'running') continue;
      const reason = 'keel stopped during the build; queued again';
      // A keel killed mid-build leaves the build's process group running: end it before building again.
      if (job.process && await endGroupIfSame(job.process)) this.appendLog(job, `--- killed the process group ${job.process.pgid} left by the stopped keel`);
      this.appendLog(job, `--- ${reason}`);
      await this.jobs.update(KEEL, job.uid, { status: 'queued', progress: 0, started: undefined, process: undefined, reason });
    }
    this.pump();
  }

  builder(kind: string): Builder {
    const builder = this.options.builders.find((b) => b.kind === kind);
    if (!builder) throw new NotFound(`No builder of kind ${kind}`);
    return builder;
  }

  /** A new job of `kind` for the request `body` (checked by its builder), queued. */
  async submit(actor: string, kind: string, body: unknown): Promise<BuildJob> {
    const params = this.builder(kind).params(body);
    const job = await this.jobs.create(actor, kind, params);
    this.appendLog(job, `--- queued by ${actor}`);
    this.pump();
    return job;
  }

  /** Cancels a queued or running job (a running build's process group is killed first); answers the job. */
  async cancel(actor: string, job: BuildJob): Promise<BuildJob> {
    // The stored status first: a build whose end is written is still in `running` until its
    // bookkeeping is done, and must not be reported cancelled.
    const current = this.jobs.get(job.uid) ?? job;
    if (ENDED.includes(current.status)) throw new Conflict(`Build ${current.kind} ${current.id} has ended (${current.status}): DELETE removes it`);
    const running = this.running.get(job.uid);
    if (running) {
      running.cancelledBy = actor;
      running.controller.abort();
      await running.settled;
      return this.jobs.get(job.uid)!;
    }
    this.appendLog(job, `--- cancelled by ${actor} while queued`);
    return (await this.jobs.update(actor, job.uid, { status: 'cancelled', reason: `cancelled by ${actor} while queued`, ended: this.jobs.store.now() }))!;
  }

  /** Removes an ended job: its record, its artifact and its log. */
  async remove(actor: string, job: BuildJob): Promise<void> {
    // An ended build may still be finishing its bookkeeping (see cancel): wait for it.
    if (ENDED.includes(job.status)) await this.running.get(job.uid)?.settled;
    if (!ENDED.includes(job.status) || this.running.has(job.uid)) throw new Conflict(`Build ${job.kind} ${job.id} is ${job.status}: DELETE cancels it first`);
    const fileId = job.file ? artifactFileId(job, job.file.name) : undefined;
    await this.jobs.remove(actor, job.uid, () => {
      if (fileId) this.options.chunks.unlinkInTx(fileId);
    });
    rmSync(this.logPath(job), { force: true });
  }

  logPath(job: Pick<BuildJob, 'uid'>): string {
    return join(this.options.logDir, `${job.uid}.log`);
  }

  /** Stops every running build (their processes killed) without ending their jobs: the next start queues them again. */
  async close(): Promise<void> {
    this.closing = true;
    for (const running of this.running.values()) running.controller.abort();
    await Promise.all([...this.running.values()].map((running) => running.settled));
  }

  /** Starts queued jobs, oldest first, while there is room. */
  private pump(): void {
    if (this.closing) return;
    const waiting = this.jobs.list().filter((job) => job.status === 'queued' && !this.running.has(job.uid));
    waiting.sort((a, b) => a.created - b.created || a.id - b.id);
    for (const job of waiting) {
      if (this.running.size >= this.options.concurrency) return;
      this.run(job);
    }
  }

  private run(queued: BuildJob): void {
    const controller = new AbortController();
    const entry: Running = { controller, settled: Promise.resolve() };
    this.running.set(queued.uid, entry);
    entry.settled = this.execute(queued, entry)
      .catch((error: unknown) => this.options.log.error({ err: error, job: queued.uid }, 'build job bookkeeping failed'))
      .finally(() => {
        this.running.delete(queued.uid);
        this.pump();
      });
  }

  private async execute(queued: BuildJob, entry: Running): Promise<void> {
    const { jobs, chunks, log } = this.options;
    const builder = this.builder(queued.kind);
    const signal = entry.controller.signal;
    const job = await jobs.update(KEEL, queued.uid, { status: 'running', progress: 0, started: jobs.store.now(), ended: undefined, reason: undefined });
    if (!job) return;
    this.appendLog(job, `--- started`);
    log.info({ kind: job.kind, id: job.id, uid: job.uid }, 'build started');
    const progress = new ProgressWriter(jobs, job.uid);
    const run: BuildRun = {
      job,
      signal,
      log: (line) => this.appendLog(job, line),
      progress: (percent) => progress.report(Math.min(99, Math.floor(percent))),
      exec: (file, args, options) => execInGroup(file, args, {
        ...options, signal, log: (line) => this.appendLog(job, line),
        // Recorded so that the next start can end it if keel dies while it runs.
        started: (pgid) => jobs.update(KEEL, job.uid, { process: { pgid, start: processStartTime(pgid) } }),
      }),
    };
    try {
      const path = await builder.build(run);
      signal.throwIfAborted();
      const name = builder.fileName(job.params);
      const staged = await chunks.stage(createReadStream(path));
      try {
        await progress.settled();
        await jobs.update(KEEL, job.uid, {
          status: 'done', progress: 100, ended: jobs.store.now(), process: undefined, file: { name, size: staged.manifest.size, sha256: staged.manifest.sha256 },
        }, () => chunks.linkInTx(artifactFileId(job, name), staged));
      } finally {
        staged.release();
        rmSync(path, { force: true });
      }
      this.appendLog(job, `--- done: ${name}, ${staged.manifest.size} bytes, sha256 ${staged.manifest.sha256}`);
      log.info({ kind: job.kind, id: job.id, uid: job.uid, bytes: staged.manifest.size }, 'build done');
    } catch (error) {
      await progress.settled();
      if (this.closing) {
        this.appendLog(job, '--- keel stopping: the build is stopped and queued again at the next start');
        return;
      }
      const cancelled = signal.aborted;
      const reason = cancelled ? `cancelled by ${entry.cancelledBy ?? KEEL}` : (error as Error).message;
      this.appendLog(job, `--- ${cancelled ? 'cancelled' : 'failed'}: ${reason}`);
      log.info({ kind: job.kind, id: job.id, uid: job.uid, reason }, cancelled ? 'build cancelled' : 'build failed');
      await jobs.update(entry.cancelledBy ?? KEEL, job.uid, { status: cancelled ? 'cancelled' : 'failed', ended: jobs.store.now(), process: undefined, reason });
    }
  }

  private appendLog(job: Pick<BuildJob, 'uid'>, line: string): void {
    const fd = openSync(this.logPath(job), 'a', 0o600);
    try {
      writeSync(fd, `${new Date().toISOString()} ${line}\n`);
    } finally {
      closeSync(fd);
    }
  }
}

/** Writes a job's progress when it rises, at most once per interval, one write at a time. */
class ProgressWriter {
  private written = 0;
  private wanted = 0;
  private lastWrite = 0;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(private readonly jobs: BuildJobs, private readonly uid: string) {}

  report(percent: number): void {
    if (percent <= this.wanted) return;
    this.wanted = percent;
    const now = Date.now();
    if (now - this.lastWrite < PROGRESS_WRITE_INTERVAL_MS) return;
    this.lastWrite = now;
    this.pending = this.pending.then(async () => {
      if (this.wanted <= this.written) return;
      this.written = this.wanted;
      await this.jobs.update(KEEL, this.uid, { progress: this.written });
    });
  }

  settled(): Promise<unknown> {
    return this.pending;
  }
}

/** Runs a command in its own process group; on `signal` the group gets SIGTERM, then SIGKILL. */
function execInGroup(file: string, args: readonly string[], options: {
  cwd: string; env?: NodeJS.ProcessEnv; signal: AbortSignal; log: (line: string) => void; onLine?: (line: string) => void; started: (pgid: number) => Promise<unknown>;
}): Promise<void> {
  const { signal } = options;
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('aborted'));
      return;
    }
    options.log(`$ ${[file, ...args].join(' ')}`);
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) void options.started(child.pid).catch(() => undefined);
    // The reason of a failure: the first line that reads as an error (a compiler's or linker's
    // message names the cause; make's own `*** Error` and cleanup lines come after), else the last line.
    let firstError = '';
    let lastLine = '';
    const onLine = (line: string) => {
      options.log(line);
      if (line.trim()) lastLine = line.trim();
      if (!firstError && ERROR_LINE.test(line)) firstError = line.trim();
      options.onLine?.(line);
    };
    createInterface({ input: child.stdout }).on('line', onLine);
    createInterface({ input: child.stderr }).on('line', onLine);
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        // The group has exited already.
      }
    };
    const onAbort = () => {
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(new Error(`could not run ${file}: ${error.message}`));
    });
    child.on('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      // Whatever the leader's end, no process of the group may outlive the step.
      killGroup('SIGKILL');
      clearTimeout(killTimer);
      if (code === 0 && !signal.aborted) resolve();
      else {
        const detail = firstError || lastLine;
        reject(new Error(`${file} ${sig ? `was killed by ${sig}` : `exited with status ${code}`}${detail ? `: ${detail}` : ''}`));
      }
    });
  });
}

/** A process's start time (clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it names one process. */
function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/**
 * Ends process group `pgid` when its leader is still the process recorded (not a reused pid):
 * SIGTERM first, so that make removes the target it was writing, SIGKILL after the grace time.
 * Answers whether there was a group to end.
 */
async function endGroupIfSame(recorded: { pgid: number; start?: number }): Promise<boolean> {
  const alive = () => recorded.start !== undefined && processStartTime(recorded.pgid) === recorded.start;
  if (!alive()) return false;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-recorded.pgid, sig);
    } catch {
      // Gone already.
    }
  };
  signal('SIGTERM');
  for (const deadline = Date.now() + KILL_GRACE_MS; alive() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
  signal('SIGKILL');
  return true;
}
