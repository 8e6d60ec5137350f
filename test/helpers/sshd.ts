// A non-daemon OpenSSH server of the test's own (Debian's openssh-server) on 127.0.0.1 and a free
// port, letting in root with one key from an authorized_keys under the test's temp dir (never
// /root/.ssh); killed by pid at teardown. Used by test/ssh-exec.test.ts and test/cli-client.test.ts.
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../../src/ssh/keys.js';
import { freePort } from './free-port.js';

const SSHD = '/usr/sbin/sshd';

export interface Sshd { pid: number; port: number; dir: string; authorizedKeys: string }

/** Polls `check` every 50 ms until it holds; throws naming `what` after `ms`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const listening = (port: number) => new Promise<boolean>((resolve) => {
  const socket = connect({ host: '127.0.0.1', port }, () => {
    socket.destroy();
    resolve(true);
  });
  socket.on('error', () => resolve(false));
});

/** A non-daemon sshd of the test's own on 127.0.0.1, letting in root with `authorizedKey`. */
export async function startSshd(t: ExecutionContext, authorizedKey: string): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-sshd-'));
  const port = await freePort();
  const host = generateKeyPair('ed25519', 'test-sshd');
  writeFileSync(join(dir, 'host_ed25519'), host.private, { mode: 0o600 });
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${authorizedKey}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host_ed25519')}`, `AuthorizedKeysFile ${authorizedKeys}`,
    'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no',
    'StrictModes no', 'PidFile none', 'LogLevel ERROR', '',
  ].join('\n'));
  // sshd's privilege separation directory (Debian's unit creates it; a bare sshd does not).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  t.teardown(() => {
    if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  // Generous: on a loaded machine sshd takes seconds to start; an sshd that exits fails at once.
  await waitFor(`sshd on port ${port}`, () => {
    if (child.exitCode !== null) throw new Error(`sshd exited with ${child.exitCode}: ${stderr}`);
    return listening(port);
  }, 30_000);
  return { pid: child.pid!, port, dir, authorizedKeys };
}
