// The real git client for the gitrepo tests and bench: no user or system configuration, no prompts,
// a fixed identity, so that every run sees the same git.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const GIT_ENV = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '/bin/false',
  GIT_AUTHOR_NAME: 'tester',
  GIT_AUTHOR_EMAIL: 'tester@example.com',
  GIT_COMMITTER_NAME: 'tester',
  GIT_COMMITTER_EMAIL: 'tester@example.com',
};

/** `git args…` in `cwd`; resolves to its output, or with `reject: false` to the whole result. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  return (await execa('git', args, { cwd, env: GIT_ENV, extendEnv: true })).stdout;
}

/** `git args…` that may fail: exit code and stderr. */
export async function gitTry(cwd: string, ...args: string[]): Promise<{ exitCode: number; stderr: string; stdout: string }> {
  const result = await execa('git', args, { cwd, env: GIT_ENV, extendEnv: true, reject: false });
  return { exitCode: result.exitCode ?? -1, stderr: result.stderr, stdout: result.stdout };
}

/** Write `files` (path → content) under `dir`, then commit them all with `message`. */
export async function commitFiles(dir: string, files: Record<string, string | Buffer>, message: string): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  await git(dir, 'add', '--all');
  await git(dir, 'commit', '--quiet', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

/** A clone URL with `token` as the password of HTTP Basic (how git sends credentials). */
export function withToken(url: string, token: string): string {
  const parsed = new URL(url);
  parsed.username = 'git';
  parsed.password = token;
  return parsed.toString();
}

/**
 * The git-daemon program itself. `git daemon` runs it as a child and waits, so killing that `git` by
 * its PID would leave the daemon running: start this instead, and its PID is the daemon's.
 */
export function gitDaemonProgram(): string {
  return join(execFileSync('git', ['--exec-path']).toString().trim(), 'git-daemon');
}
