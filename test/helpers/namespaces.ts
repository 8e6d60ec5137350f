// Network namespaces for the tests run as root (dgram-native's, the DHCP and TFTP servers'):
// created per test with names that include the pid, always deleted in teardown; processes started
// inside are killed by pid.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ExecutionContext } from 'ava';

export function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

let created = 0;

/** Creates the namespaces (`${prefix}-${pid}-${n}${suffix}`, n counts calls since tests of a
 * file run concurrently), deleted when the test ends. */
export function namespaces<S extends string>(t: ExecutionContext, prefix: string, suffixes: readonly S[]): Record<S, string> {
  const names = {} as Record<S, string>;
  const instance = created++;
  for (const suffix of suffixes) {
    const name = `${prefix}-${process.pid}-${instance}${suffix}`;
    ip('netns', 'add', name);
    t.teardown(() => ip('netns', 'delete', name));
    ip('-n', name, 'link', 'set', 'lo', 'up');
    names[suffix] = name;
  }
  return names;
}

export interface Child {
  process: ChildProcess;
  /** Resolves with the next JSON line printed by the child. */
  nextLine(): Promise<Record<string, unknown>>;
  /** All JSON lines printed so far. */
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Runs a TS script under tsx inside a namespace; killed by pid at teardown. */
export function runInNamespace(t: ExecutionContext, namespace: string, script: string, args: string[]): Child {
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, '--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: ((line: Record<string, unknown>) => void)[] = [];
  let delivered = 0;
  createInterface({ input: child.stdout! }).on('line', (text) => {
    lines.push(JSON.parse(text) as Record<string, unknown>);
    while (waiters.length > 0 && delivered < lines.length) waiters.shift()!(lines[delivered++]!);
  });
  return {
    process: child,
    lines,
    nextLine: () => new Promise((resolve) => {
      if (delivered < lines.length) resolve(lines[delivered++]!);
      else waiters.push(resolve);
    }),
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
}
