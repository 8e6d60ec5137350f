// Helpers for DHCP tests with real clients: a store prepared before keel starts (networks, nodes,
// cluster settings, written through the same object machinery as the API), and `keel serve` run
// inside a network namespace with --dhcp-interface, killed by pid at teardown.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ExecutionContext } from 'ava';
import { networkClass } from '../../src/model/classes/network.js';
import { Model } from '../../src/model/model.js';
import { clusterSettings, putClusterSettingsInTx } from '../../src/model/settings.js';
import { Store } from '../../src/store/store.js';

const CLI = new URL('../../src/main.ts', import.meta.url).pathname;

export interface ClusterSetup {
  network: Record<string, unknown>;
  macs?: string[];
  acceptNewNodes?: boolean;
}

/** Writes a network (the default network of the default pool) and nodes into the store at `dataDir`. */
export async function prepareCluster(dataDir: string, setup: ClusterSetup): Promise<void> {
  const store = new Store({ dataDir, headName: 'dhcp-test' });
  try {
    const model = new Model(store, { dataDir });
    const net = await model.objects(networkClass).create('test', setup.network);
    await store.write('test', () => putClusterSettingsInTx(store, { ...clusterSettings(store), default_network: net.uid, accept_new_nodes: setup.acceptNewNodes === true }));
    const macs = setup.macs ?? [];
    for (let i = 0; i < macs.length; i += 1000) await model.nodes.createMany('test', macs.slice(i, i + 1000).map((mac) => ({ mac })));
  } finally {
    await store.close();
  }
}

export interface KeelProcess {
  process: ChildProcess;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log line (already printed or to come) that `match` accepts. */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then wait for the exit (the store is closed cleanly). */
  stop(): Promise<void>;
}

/** Which keel runs: the sources under tsx (default), or an executable such as the single binary. */
export interface KeelCommand {
  executable?: string;
  /** Added to the environment (e.g. the binary's XDG_CACHE_HOME). */
  env?: NodeJS.ProcessEnv;
}

/** `tftpPort` defaults off port 69; a firmware boot test needs 69, where PXE ROMs ask. */
export async function startKeelInNamespace(t: ExecutionContext, namespace: string, dataDir: string, dhcpInterface: string, httpPort = 8080, tftpPort = 6969, command: KeelCommand = {}): Promise<KeelProcess> {
  const keel = command.executable === undefined ? [process.execPath, '--import', 'tsx', CLI] : [command.executable];
  const child = spawn('ip', ['netns', 'exec', namespace, ...keel, 'serve', '--data-dir', dataDir, '--bind', '0.0.0.0',
    '--http-port', String(httpPort), '--tftp-port', String(tftpPort), '--dhcp-interface', dhcpInterface, '--log-level', 'debug'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...command.env, KEEL_ADMIN_PASSWORD: 'dhcp-test-password', KEEL_LOG_FORMAT: 'json' },
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      // SIGTERM first: keel then stops the console helpers it started (ipmiconsole under script),
      // which a SIGKILL would orphan; SIGKILL only if it has not exited within 15 s.
      child.kill('SIGTERM');
      const killed = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killed);
    }
  });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      logs.push(JSON.parse(text) as Record<string, unknown>);
    } catch {
      logs.push({ msg: text });
    }
    for (const wake of waiters) wake();
  });
  const waitForLog: KeelProcess['waitForLog'] = (match, timeoutMs = 20_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const line = logs.find(match);
        if (!line) return false;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(line);
        return true;
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`keel did not log the expected line within ${timeoutMs} ms; logs: ${JSON.stringify(logs.slice(-10))}`));
      }, timeoutMs);
      if (!check()) waiters.add(check);
      void exited.then(() => check() || (clearTimeout(timer), waiters.delete(check), reject(new Error(`keel exited; logs: ${JSON.stringify(logs.slice(-10))}`))));
    });
  await waitForLog((line) => line.msg === 'DHCP listening (ports 67 and 4011)');
  return {
    process: child,
    logs,
    waitForLog,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs a command to completion (bounded by `timeoutMs`), returning its exit code and output. */
export function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}
