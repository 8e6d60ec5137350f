// The CLI as shipped: the esbuild bundle (dist/keel.cjs, what the single binary embeds), built from
// this tree once per test file, run as a child process with stdin a pipe (not a terminal). Bundled,
// its libraries (cli-progress, cli-table3, ws) are exercised as the binary has them, and it starts
// in a fraction of tsx's time. Used by test/cli-upload.test.ts and test/cli-client.test.ts.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const root = join(import.meta.dirname, '..', '..');
export const BUNDLE = join(root, 'dist', 'keel.cjs');

/** `npm run build`'s bundle step (not the native build: the addons are there from npm ci). */
export async function buildBundle(): Promise<void> {
  await promisify(execFile)(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'bundle.mjs')], { cwd: root });
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the bundle with `args` in `env`, `input` on its stdin; resolves with its exit code and output, never rejects. */
export async function runKeel(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<Run> {
  try {
    const running = promisify(execFile)(process.execPath, [BUNDLE, ...args], { env });
    running.child.stdin!.end(input);
    const { stdout, stderr } = await running;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const { code, stdout, stderr } = err as Run;
    return { code, stdout, stderr };
  }
}
