// Transfers under packet loss: the server and the client in two network namespaces joined by a
// veth pair, nftables in each dropping a share of the UDP packets it receives (netem is not in this
// kernel), so DATA and ACKs are both lost. Every transfer must complete with identical content,
// lock-step (curl) and windowed (atftp). Bounded sizes keep each case to seconds.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ip, namespaces, runInNamespace } from './helpers/namespaces.js';
import type { TftpServerStats } from '../src/net/tftp/server.js';
import { seededBuffer } from './helpers/seeded-bytes.js';
import { runClient, sha256 } from './tftp/fixture.js';

const SERVER = '10.78.0.1';

/**
 * Drops `perMille`/1000 of the UDP packets arriving in `namespace`; returns a reader of the drop
 * counter. The option handshake (OACK, and the ACK of block 0 that answers it) is spared: when
 * that ACK is lost the server rightly sends its OACK again, and atftp 0.8 then aborts with
 * "unexpected OACK" instead of acknowledging it again (seen in a CI run) — a client limit, not
 * something a server can work around. Loss in the data phase, which is what windows and
 * retransmission handle, stays random.
 */
function dropIncoming(namespace: string, perMille: number): () => number {
  const rules = `table inet loss {
    chain input {
      type filter hook input priority 0; policy accept;
      meta l4proto udp @th,64,16 6 accept
      meta l4proto udp @th,64,32 0x00040000 accept
      meta l4proto udp numgen random mod 1000 < ${perMille} counter drop
    }
  }`;
  execFileSync('ip', ['netns', 'exec', namespace, '/usr/sbin/nft', '-f', '-'], { input: rules });
  return () => {
    const listing = execFileSync('ip', ['netns', 'exec', namespace, '/usr/sbin/nft', 'list', 'table', 'inet', 'loss'], { encoding: 'utf8' });
    return Number(/counter packets (\d+)/.exec(listing)?.[1] ?? NaN);
  };
}

async function lossyPair(t: ExecutionContext, perMille: number) {
  const ns = namespaces(t, 'ktftp', ['s', 'c'] as const);
  ip('link', 'add', 'name', 'ts', 'netns', ns.s, 'type', 'veth', 'peer', 'name', 'tc', 'netns', ns.c);
  ip('-n', ns.s, 'addr', 'add', `${SERVER}/24`, 'dev', 'ts');
  ip('-n', ns.c, 'addr', 'add', '10.78.0.2/24', 'dev', 'tc');
  ip('-n', ns.s, 'link', 'set', 'ts', 'up');
  ip('-n', ns.c, 'link', 'set', 'tc', 'up');
  const drops = [dropIncoming(ns.s, perMille), dropIncoming(ns.c, perMille)];
  const root = mkdtempSync(join(tmpdir(), 'keel-tftp-loss-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const server = runInNamespace(t, ns.s, 'test/tftp/serve.ts', ['--root', root, '--port', '69']);
  await server.nextLine();
  const stop = async () => {
    server.process.kill('SIGTERM');
    for (;;) {
      const line = await server.nextLine();
      if (line.stats) return line.stats as TftpServerStats;
    }
  };
  return { ns, root, server, stop, dropped: () => drops.reduce((sum, read) => sum + read(), 0) };
}

// Lock-step with tftp-hpa (RFC 1350, no options) and atftp (blksize 1468), windowed with atftp. Not
// curl: it always asks for "timeout 6", and a server honouring that (RFC 2349, as tftpd-hpa does)
// retransmits a lost block after 6 s, which would make a loss test take minutes.
function lossTest(perMille: number, sizes: { plain: number; lockStep: number; windowed: number }) {
  test(`${perMille / 10}% loss each way: lock-step and windowed transfers complete with identical content`, async (t) => {
    const pair = await lossyPair(t, perMille);
    const files = {
      plain: await seededBuffer(perMille, sizes.plain),
      lockStep: await seededBuffer(perMille + 1, sizes.lockStep),
      windowed: await seededBuffer(perMille + 2, sizes.windowed),
    };
    for (const [name, data] of Object.entries(files)) writeFileSync(join(pair.root, name), data);
    const inClient = (command: string, ...args: string[]) => runClient(t, 'ip', ['netns', 'exec', pair.ns.c, command, ...args]);
    const atftpGet = (name: string, ...options: string[]) =>
      inClient('atftp', '-g', '-r', name, '-l', 'out', ...options.flatMap((o) => ['--option', o]), SERVER, '69');
    const runs = await Promise.all([
      inClient('tftp', '-m', 'binary', SERVER, '69', '-c', 'get', 'plain', 'out'),
      atftpGet('lockStep', 'blksize 1468'),
      atftpGet('windowed', 'blksize 1468', 'windowsize 16'),
    ]);
    for (const [i, name] of (['plain', 'lockStep', 'windowed'] as const).entries()) {
      t.is(runs[i]!.exitCode, 0, `${name}: ${runs[i]!.output.slice(-2000)}`);
      t.is(sha256(runs[i]!.data ?? Buffer.alloc(0)), sha256(files[name]), name);
    }
    const dropped = pair.dropped();
    const stats = await pair.stop();
    t.log(`dropped ${dropped} packets; server resent ${stats.blocksResent} blocks after ${stats.timeouts} timeouts`);
    t.true(dropped > 0, 'the loss rule dropped packets');
    t.true(stats.blocksResent > 0);
    // A client that does not dally may lose its final ACK: the server then ends 'end-unconfirmed'
    // after retransmitting the last block; the client had the whole file (checked above).
    t.log(`outcomes ${JSON.stringify(stats.outcomes)}`);
    t.is(stats.outcomes.complete + stats.outcomes['end-unconfirmed'], 3);
  });
}

lossTest(5, { plain: 2 * 1024 * 1024, lockStep: 2 * 1024 * 1024, windowed: 4 * 1024 * 1024 });
lossTest(50, { plain: 192 * 1024, lockStep: 384 * 1024, windowed: 768 * 1024 });
