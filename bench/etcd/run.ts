// etcd as keel's shared state (docs/multihead.md): what one head's client gets from a real
// three-member cluster (test/helpers/etcd-cluster.ts: members in network namespaces on one bridge,
// data directories in the temporary directory, fsync on): the latency of a plain put and of the
// transaction a node create is (SharedObjects.create: 3 compares, 3 puts), create throughput with
// many in flight, how fast a replica applies a burst of writes from its watch into LMDB, and how
// long a full re-read takes. Every loop is bounded in count and in time; every process is killed by
// pid on exit. Run as root: `node --import tsx bench/etcd/run.ts [records]`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { Etcd3 } from 'etcd3';
import { SharedObjects } from '../../src/cluster/shared-objects.js';
import { nodeIndexes } from '../../src/model/indexes.js';
import { newUid } from '../../src/store/store.js';
import { startEtcdCluster } from '../../test/helpers/etcd-cluster.js';
import { openReplicaHead } from '../../test/helpers/replica-head.js';

const RECORDS = Number(process.argv[2] ?? 2000);
const SEQUENTIAL = 300;
const IN_FLIGHT = 64;
const TIME_BOUND_MS = 120_000;
const PREFIX = '/keel/';

// The harness wants a test's teardown; here the same jobs run at exit (and on failure).
const teardowns: (() => unknown)[] = [];
const context = { teardown: (fn: () => unknown) => teardowns.push(fn) } as unknown as ExecutionContext;
async function cleanUp(): Promise<void> {
  for (const fn of teardowns.reverse()) await fn();
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const ms = (n: number) => `${n.toFixed(2)} ms`;

/** Runs `op` `count` times one after another; latencies in ms, sorted. */
async function sequential(count: number, op: (i: number) => Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  const deadline = Date.now() + TIME_BOUND_MS;
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    const start = performance.now();
    await op(i);
    latencies.push(performance.now() - start);
  }
  return latencies.sort((a, b) => a - b);
}

/** Runs `op` `count` times with `inFlight` at once; ops per second. */
async function concurrent(count: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const deadline = Date.now() + TIME_BOUND_MS;
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < count && Date.now() < deadline) await op(next++);
  }));
  return (next / (performance.now() - start)) * 1000;
}

function report(name: string, latencies: number[]): void {
  console.log(`${name.padEnd(44)} n=${latencies.length}  p50 ${ms(percentile(latencies, 50))}  p99 ${ms(percentile(latencies, 99))}`);
}

const nodeRecord = (tag: string, i: number) => ({
  uid: newUid(),
  name: `${tag}-${i}`,
  mac: `02:${tag.length.toString(16).padStart(2, '0')}:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
  // About the size of a node record as the API stores it.
  attributes: { rack: `r${i % 40}`, role: 'compute', note: 'x'.repeat(200) },
});

/** A head's replica in `dir` (a new temporary one unless given); `close` stops it, keeping the directory. */
function replicaHead(client: Etcd3, dir = mkdtempSync(join(tmpdir(), 'keel-bench-replica-'))) {
  const head = openReplicaHead(client, dir, PREFIX);
  teardowns.push(async () => {
    await head.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, ...head };
}

async function main(): Promise<void> {
  const cluster = await startEtcdCluster(context);
  const leader = await cluster.leader();
  const follower = (leader + 1) % 3;
  console.log(`etcd ${cluster.members.length} members, leader etcd${leader}; records ${RECORDS}`);
  const viaLeader = cluster.clientOf(leader);
  const viaFollower = cluster.clientOf(follower);
  const value = Buffer.alloc(300, 'x');

  report('put via leader (raw KV)', await sequential(SEQUENTIAL, (i) => viaLeader.kv.put({ key: Buffer.from(`/bench/l/${i}`), value })));
  report('put via follower (raw KV)', await sequential(SEQUENTIAL, (i) => viaFollower.kv.put({ key: Buffer.from(`/bench/f/${i}`), value })));
  report('put via follower (etcd3 builder)', await sequential(SEQUENTIAL, async (i) => {
    await viaFollower.put(`/bench/b/${i}`).value(value);
  }));
  report('get via follower (linearizable)', await sequential(SEQUENTIAL, (i) => viaFollower.kv.range({ key: Buffer.from(`/bench/f/${i}`) })));
  const objects = new SharedObjects(viaFollower, PREFIX);
  report('node create txn via follower', await sequential(SEQUENTIAL, (i) => objects.create('node', nodeIndexes, nodeRecord('seq', i))));

  // One replica follows the burst live; another is stopped during it and catches up after.
  const live = replicaHead(cluster.clientOf(follower));
  const stopped = replicaHead(cluster.clientOf(follower));
  await live.replicator.start();
  await stopped.replicator.start();
  await stopped.close();
  const before = live.replica.revision;
  const all = new SharedObjects(cluster.client(), PREFIX);
  let lastRevision = 0;
  const writeStart = performance.now();
  const createsPerSecond = await concurrent(RECORDS, IN_FLIGHT, async (i) => {
    lastRevision = Math.max(lastRevision, await all.create('node', nodeIndexes, nodeRecord('burst', i)));
  });
  const writeMs = performance.now() - writeStart;
  await live.replicator.waitFor(lastRevision, TIME_BOUND_MS);
  const replicatedMs = performance.now() - writeStart;
  console.log(`node creates, ${IN_FLIGHT} in flight, all members          ${createsPerSecond.toFixed(0)} creates/s (${RECORDS} in ${writeMs.toFixed(0)} ms, revisions ${before}–${lastRevision})`);
  console.log(`live replica behind the last acknowledgement  ${(replicatedMs - writeMs).toFixed(0)} ms (${live.replicator.eventsApplied} events applied)`);

  const resumed = replicaHead(cluster.clientOf(follower), stopped.dir);
  const catchUpStart = performance.now();
  const mode = await resumed.replicator.start();
  await resumed.replicator.waitFor(lastRevision, TIME_BOUND_MS);
  const catchUpMs = performance.now() - catchUpStart;
  console.log(`stopped replica catching up (${mode})           ${catchUpMs.toFixed(0)} ms for ${resumed.replicator.eventsApplied} events: ` +
    `${(resumed.replicator.eventsApplied / (catchUpMs / 1000)).toFixed(0)} events/s`);

  const fresh = replicaHead(cluster.clientOf(follower));
  const syncStart = performance.now();
  await fresh.replicator.start();
  console.log(`full sync of an empty replica                 ${(performance.now() - syncStart).toFixed(0)} ms for ${fresh.replica.count()} keys`);
  const status = await viaFollower.maintenance.status();
  console.log(`etcd database size                            ${(Number(status.dbSize) / 1024 ** 2).toFixed(1)} MiB at revision ${status.header.revision}`);
}

process.on('SIGINT', () => void cleanUp().then(() => process.exit(130)));
try {
  await main();
} finally {
  await cleanUp();
}
