// A real etcd cluster for the multi-head tests (docs/multihead.md): N members of Debian's
// etcd-server, each in a network namespace of its own, joined by veth pairs to one bridge that lives
// in a further namespace the harness creates (nothing is added to the root namespace). Peers talk
// over the bridge (10.222.0.0/24), as heads on a site network would. Each member also serves clients
// on a Unix socket in its data directory: the file system is shared across namespaces, so the test
// process (in the root namespace) reaches every member without a route, and a client of one member
// sees what a head co-located with it would see when that member is cut off. Members are started and
// SIGKILLed by pid; data directories live in a temporary directory removed at teardown.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { Etcd3 } from 'etcd3';
import { ip, namespaces } from './namespaces.js';

const SUBNET = '10.222.0';
const PEER_PORT = 2380;
const CLIENT_PORT = 2379;
/**
 * Raft timing for a loaded 2-core CI machine: etcd's defaults (100 ms heartbeat, 1 s election)
 * elect spuriously when the members are starved of CPU for a second. Still well under the tests' waits.
 */
const HEARTBEAT_MS = 250;
const ELECTION_MS = 2500;
/** The nftables table that cuts a member off its peers (`cut`), removed by `heal`. */
const CUT_TABLE = 'keel_cut';
/** The client socket in a member's directory: etcd takes a unix:// URL's host:port as the file name. */
const SOCKET = 'client.sock:0';

export interface EtcdMember {
  index: number;
  name: string;
  namespace: string;
  /** Address on the bridge. */
  address: string;
  peerUrl: string;
  /** For clients in other namespaces on the bridge (the heads of later tests). */
  clientUrl: string;
  /** For clients in the test process: `unix://<data dir>/client.sock:0`. */
  socketHost: string;
  dir: string;
}

export interface EtcdCluster {
  members: readonly EtcdMember[];
  /** A client of every member (the test's clients reach them through their sockets); closed at teardown. */
  client(): Etcd3;
  /** A client of member `index` alone; closed at teardown. */
  clientOf(index: number): Etcd3;
  /** SIGKILLs member `index` and waits until it is gone. */
  kill(index: number): Promise<void>;
  /** Starts member `index` again on its data directory. */
  start(index: number): void;
  running(index: number): boolean;
  /**
   * The index of the member that every running member not cut off names as leader, once they all
   * answer and agree (throws after `timeoutMs`).
   */
  leader(timeoutMs?: number): Promise<number>;
  /** Drops all traffic between member `index` and the bridge (nftables in its namespace). */
  cut(index: number): void;
  heal(index: number): void;
  /** The end of member `index`'s log, for failure messages. */
  log(index: number): string;
}

/** Starts a cluster of `size` members and waits until it has a leader; everything is stopped at teardown. */
export async function startEtcdCluster(t: ExecutionContext, size = 3): Promise<EtcdCluster> {
  const suffixes = ['-sw', ...Array.from({ length: size }, (_, i) => `-e${i}`)];
  const ns = namespaces(t, 'ketcd', suffixes);
  const root = mkdtempSync(join(tmpdir(), 'keel-etcd-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const bridgeNs = ns['-sw']!;
  ip('-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', bridgeNs, 'link', 'set', 'br0', 'up');

  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    const namespace = ns[`-e${i}`]!;
    const address = `${SUBNET}.${11 + i}`;
    // Both ends are made in their namespaces at once: the pair never exists in the root namespace.
    ip('-n', bridgeNs, 'link', 'add', `m${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace);
    ip('-n', bridgeNs, 'link', 'set', `m${i}`, 'master', 'br0', 'up');
    ip('-n', namespace, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', namespace, 'link', 'set', 'eth0', 'up');
    const dir = join(root, `etcd${i}`);
    members.push({
      index: i,
      name: `etcd${i}`,
      namespace,
      address,
      peerUrl: `http://${address}:${PEER_PORT}`,
      clientUrl: `http://${address}:${CLIENT_PORT}`,
      socketHost: `unix://${dir}/${SOCKET}`,
      dir,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');

  const processes = new Map<number, { child: ChildProcess; exited: Promise<void> }>();
  const cutOff = new Set<number>();
  const crashed = new Set<number>();
  const clients: Etcd3[] = [];
  t.teardown(async () => {
    for (const client of clients) client.close();
    for (const index of processes.keys()) await kill(index);
  });

  function start(index: number): void {
    if (processes.has(index)) throw new Error(`etcd member ${index} is already running`);
    const m = members[index]!;
    mkdirSync(m.dir, { recursive: true });
    // A member killed with SIGKILL leaves its socket behind, and etcd will not bind over it.
    rmSync(join(m.dir, SOCKET), { force: true });
    const log = openSync(join(m.dir, 'etcd.log'), 'a');
    // `ip netns exec` execs etcd: the pid is etcd's. The socket name is relative to the working
    // directory (etcd wants host:port, so no absolute path fits in a unix:// URL).
    const child = spawn('ip', ['netns', 'exec', m.namespace, 'etcd',
      '--name', m.name,
      '--data-dir', join(m.dir, 'data'),
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--listen-client-urls', `${m.clientUrl},unix://${SOCKET}`,
      '--advertise-client-urls', m.clientUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', `keel-test-${process.pid}`,
      '--heartbeat-interval', String(HEARTBEAT_MS),
      '--election-timeout', String(ELECTION_MS),
      '--logger', 'zap',
    ], { cwd: m.dir, stdio: ['ignore', log, log] });
    closeSync(log);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // A member that exits on its own (bad flags, a corrupt data directory) fails the next wait at once.
    child.once('exit', () => {
      if (processes.get(index)?.child === child) crashed.add(index);
    });
    processes.set(index, { child, exited });
  }

  async function kill(index: number): Promise<void> {
    const running = processes.get(index);
    if (!running) return;
    processes.delete(index);
    crashed.delete(index);
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
    await running.exited;
  }

  // nftables by its path: under npx, node_modules/.bin comes first in PATH and has an `nft` of its
  // own (@vercel/nft, a file tracer ava depends on), which would take the rules as file names.
  const nft = (index: number, script: string) =>
    execFileSync('ip', ['netns', 'exec', members[index]!.namespace, '/usr/sbin/nft', '-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });

  const newClient = (hosts: string[]) => {
    // A deadline on every unary call: a member without quorum otherwise holds a request for as
    // long as etcd's own request timeout, and a dead socket for the 30 s dial timeout.
    const client = new Etcd3({ hosts, dialTimeout: 5_000, defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 5_000 }) });
    clients.push(client);
    return client;
  };

  async function statuses(): Promise<{ index: number; id: string; leader: string }[]> {
    const answers = await Promise.all(members.filter((m) => processes.has(m.index) && !cutOff.has(m.index)).map(async (m) => {
      const client = new Etcd3({ hosts: m.socketHost, dialTimeout: 2_000, defaultCallOptions: () => ({ deadline: Date.now() + 2_000 }) });
      try {
        const status = await client.maintenance.status();
        return { index: m.index, id: status.header.member_id, leader: status.leader };
      } catch {
        return undefined;
      } finally {
        client.close();
      }
    }));
    return answers.filter((a) => a !== undefined);
  }

  async function leader(timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const index of crashed) throw new Error(`etcd member ${index} exited:\n${cluster.log(index)}`);
      const answers = await statuses();
      const running = [...processes.keys()].filter((index) => !cutOff.has(index)).length;
      const named = new Set(answers.map((a) => a.leader));
      const leaderIndex = answers.find((a) => a.id === answers[0]?.leader)?.index;
      if (answers.length === running && named.size === 1 && !named.has('0') && leaderIndex !== undefined) return leaderIndex;
      if (Date.now() > deadline) throw new Error(`etcd members agree on no leader after ${timeoutMs} ms: ${JSON.stringify(answers)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  for (let i = 0; i < size; i++) start(i);
  const cluster: EtcdCluster = {
    members,
    client: () => newClient(members.map((m) => m.socketHost)),
    clientOf: (index) => newClient([members[index]!.socketHost]),
    kill,
    start,
    running: (index) => processes.has(index),
    leader,
    cut: (index) => {
      nft(index, `table inet ${CUT_TABLE} {
        chain input { type filter hook input priority 0; iifname "eth0" drop; }
        chain output { type filter hook output priority 0; oifname "eth0" drop; }
      }\n`);
      cutOff.add(index);
    },
    heal: (index) => {
      nft(index, `delete table inet ${CUT_TABLE}\n`);
      cutOff.delete(index);
    },
    log: (index) => {
      try {
        return readFileSync(join(members[index]!.dir, 'etcd.log'), 'utf8').slice(-4000);
      } catch {
        return '(no log)';
      }
    },
  };
  try {
    await cluster.leader(90_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${members.map((m) => `--- ${m.name}\n${cluster.log(m.index)}`).join('\n')}`);
  }
  return cluster;
}
