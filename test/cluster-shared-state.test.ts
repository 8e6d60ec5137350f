// keel's shared state on a real three-member etcd cluster (test/helpers/etcd-cluster.ts): records
// written through one member's client reach another head's LMDB replica; a replicator restarted
// resumes from its stored revision and reads everything again only when etcd compacted it; two
// writers creating the same name or MAC at once get exactly one winner; and writes resume after
// the etcd leader is killed, with every acknowledged write on every replica (docs/multihead.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { Etcd3 } from 'etcd3';
import { objectKey, prefixRangeEnd } from '../src/cluster/keys.js';
import type { Replica } from '../src/cluster/replica.js';
import { SharedObjects, type SharedRecord } from '../src/cluster/shared-objects.js';
import { nodeIndexes } from '../src/model/indexes.js';
import { StoreConflict } from '../src/store/errors.js';
import { newUid } from '../src/store/store.js';
import { startEtcdCluster } from './helpers/etcd-cluster.js';
import { openReplicaHead, type ReplicaHead } from './helpers/replica-head.js';

const PREFIX = '/keel/';
const REPLICA_WAIT_MS = 60_000;

/** A head's replica on `dataDir` (kept across restarts), fed through `client`; closed at teardown. */
function openHead(t: ExecutionContext, client: Etcd3, dataDir: string): ReplicaHead {
  const head = openReplicaHead(client, dataDir, PREFIX);
  t.teardown(head.close);
  return head;
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-replica-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const node = (name: string, mac: string): SharedRecord => ({ uid: newUid(), name, mac });

/** Every key under the prefix in etcd now, with its value. */
async function etcdContents(client: Etcd3): Promise<Map<string, string>> {
  const key = Buffer.from(PREFIX);
  const { kvs } = await client.kv.range({ key, range_end: prefixRangeEnd(key) });
  return new Map(kvs.map((kv) => [kv.key.toString('utf8'), kv.value.toString('utf8')]));
}

function replicaContents(replica: Replica): Map<string, string> {
  return new Map([...replica.range(PREFIX)].map(([key, entry]) => [key, entry.value.toString('utf8')]));
}

test.serial('a record written through one member is in a replica fed by another; its rename and delete follow', async (t) => {
  const cluster = await startEtcdCluster(t);
  const writer = new SharedObjects(cluster.clientOf(0), PREFIX);
  const head = openHead(t, cluster.clientOf(2), tempDir(t));
  t.is(await head.replicator.start(), 'full-sync');

  const record = node('n1', 'aa:bb:cc:00:00:01');
  await head.replicator.waitFor(await writer.create('node', nodeIndexes, record), REPLICA_WAIT_MS);
  t.deepEqual(JSON.parse(head.replica.get(objectKey(PREFIX, 'node', record.uid))!.value.toString('utf8')), record);
  t.is(head.replica.get(`${PREFIX}idx/node/name/n1`)?.value.toString('utf8'), record.uid);

  const renamed = await writer.update('node', nodeIndexes, record.uid, (current) => ({ ...current, name: 'n1-renamed' }));
  await head.replicator.waitFor(renamed!, REPLICA_WAIT_MS);
  t.is(head.replica.get(`${PREFIX}idx/node/name/n1`), undefined, 'the old name is free');
  t.is(head.replica.get(`${PREFIX}idx/node/name/n1-renamed`)?.value.toString('utf8'), record.uid);

  await head.replicator.waitFor((await writer.remove('node', nodeIndexes, record.uid))!, REPLICA_WAIT_MS);
  t.deepEqual(replicaContents(head.replica), new Map());
  t.deepEqual(replicaContents(head.replica), await etcdContents(cluster.clientOf(2)));
});

test.serial('a restarted replicator resumes from its stored revision, and reads everything again only after a compaction', async (t) => {
  const cluster = await startEtcdCluster(t);
  const client = cluster.client();
  const writer = new SharedObjects(client, PREFIX);
  const dataDir = tempDir(t);
  const created: SharedRecord[] = [];
  const create = async (name: string) => {
    const record = node(name, `aa:bb:cc:00:01:${String(created.length).padStart(2, '0')}`);
    created.push(record);
    return writer.create('node', nodeIndexes, record);
  };

  let head = openHead(t, client, dataDir);
  t.is(await head.replicator.start(), 'full-sync');
  let last = 0;
  for (let i = 0; i < 5; i++) last = await create(`first-${i}`);
  await head.replicator.waitFor(last, REPLICA_WAIT_MS);
  await head.close();

  // While the head is down: more creates, and a delete of a record the replica holds.
  for (let i = 0; i < 5; i++) await create(`second-${i}`);
  last = (await writer.remove('node', nodeIndexes, created[0]!.uid))!;
  head = openHead(t, client, dataDir);
  t.is(await head.replicator.start(), 'resumed');
  await head.replicator.waitFor(last, REPLICA_WAIT_MS);
  t.is(head.replicator.fullSyncs, 0);
  t.true(head.replicator.eventsApplied > 0 && head.replicator.eventsApplied <= 3 * 6, `only the changes made while down: ${head.replicator.eventsApplied} events`);
  t.deepEqual(replicaContents(head.replica), await etcdContents(client));
  await head.close();

  // Down again; changes, then etcd compacts its history past the replica's revision.
  await create('third-0');
  await writer.remove('node', nodeIndexes, created[1]!.uid);
  const { header } = await client.kv.range({ key: Buffer.from(PREFIX) });
  await client.kv.compact({ revision: header.revision, physical: true });
  head = openHead(t, client, dataDir);
  t.is(await head.replicator.start(), 'full-sync');
  t.is(head.replicator.fullSyncs, 1);
  t.true(head.replica.revision >= Number(header.revision));
  t.deepEqual(replicaContents(head.replica), await etcdContents(client));
  t.is(head.replica.get(objectKey(PREFIX, 'node', created[1]!.uid)), undefined, 'a record deleted before the compaction is gone');
});

test.serial('a running replicator whose member dies while etcd compacts reads everything again once the member is back', async (t) => {
  const cluster = await startEtcdCluster(t);
  const writer = new SharedObjects(cluster.clientOf(0), PREFIX);
  const head = openHead(t, cluster.clientOf(2), tempDir(t));
  await head.replicator.start();
  const records = [node('a', '02:00:00:02:00:01'), node('b', '02:00:00:02:00:02')];
  for (const record of records) await head.replicator.waitFor(await writer.create('node', nodeIndexes, record), REPLICA_WAIT_MS);

  await cluster.kill(2);
  await writer.create('node', nodeIndexes, node('c', '02:00:00:02:00:03'));
  const last = (await writer.remove('node', nodeIndexes, records[0]!.uid))!;
  await cluster.clientOf(0).kv.compact({ revision: last, physical: true });
  cluster.start(2);
  await head.replicator.waitFor(last, REPLICA_WAIT_MS);
  t.is(head.replicator.fullSyncs, 2, 'the first sync of the empty replica, and one after the compaction');
  t.deepEqual(replicaContents(head.replica), await etcdContents(cluster.clientOf(0)));
  t.is(head.replica.get(objectKey(PREFIX, 'node', records[0]!.uid)), undefined);
});

test.serial('a head whose member is cut off keeps its replica, knows it is cut off, and catches up when healed', async (t) => {
  const cluster = await startEtcdCluster(t);
  const writer = new SharedObjects(cluster.clientOf(0), PREFIX);
  const head = openHead(t, cluster.clientOf(2), tempDir(t));
  await head.replicator.start();
  let last = 0;
  for (let i = 0; i < 3; i++) last = await writer.create('node', nodeIndexes, node(`before-${i}`, `02:00:00:03:00:0${i}`));
  await head.replicator.waitFor(last, REPLICA_WAIT_MS);
  const before = replicaContents(head.replica);

  cluster.cut(2);
  for (const deadline = Date.now() + 60_000; head.replicator.cutOffSince === undefined;) {
    if (Date.now() > deadline) throw new Error('the replicator did not notice that its member is cut off');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await t.throwsAsync(new SharedObjects(cluster.clientOf(2), PREFIX).create('node', nodeIndexes, node('through-cut', '02:00:00:03:01:00')));
  last = await writer.create('node', nodeIndexes, node('during', '02:00:00:03:00:10'));
  t.deepEqual(replicaContents(head.replica), before, 'the replica still holds what it had, and nothing newer');

  cluster.heal(2);
  await head.replicator.waitFor(last, REPLICA_WAIT_MS);
  t.deepEqual(replicaContents(head.replica), await etcdContents(cluster.clientOf(0)));
  t.is(head.replicator.fullSyncs, 1, 'caught up from its revision, no full read');
  for (const deadline = Date.now() + 60_000; head.replicator.cutOffSince !== undefined;) {
    if (Date.now() > deadline) throw new Error('the replicator still counts itself cut off after healing');
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
});

test.serial('concurrent creates of one name or one MAC through two members: exactly one wins each, and the replicas agree', async (t) => {
  const cluster = await startEtcdCluster(t);
  const writers = [new SharedObjects(cluster.clientOf(0), PREFIX), new SharedObjects(cluster.clientOf(1), PREFIX)];
  const heads = [openHead(t, cluster.clientOf(0), tempDir(t)), openHead(t, cluster.clientOf(2), tempDir(t))];
  for (const head of heads) await head.replicator.start();
  const ROUNDS = 25;
  const mac = (round: number, writer: number) => `02:00:00:00:${writer.toString(16).padStart(2, '0')}:${round.toString(16).padStart(2, '0')}`;
  // Round r: both writers create `same-name-r` (different MACs), and each a name of its own with
  // the one MAC `02:00:00:00:ff:r`. All rounds at once.
  const rounds = await Promise.all(Array.from({ length: ROUNDS }, async (_, r) => {
    const byName = await Promise.allSettled(writers.map((w, i) => w.create('node', nodeIndexes, node(`same-name-${r}`, mac(r, i)))));
    const byMac = await Promise.allSettled(writers.map((w, i) => w.create('node', nodeIndexes, node(`own-${i}-${r}`, mac(r, 0xff)))));
    return { r, byName, byMac };
  }));
  let revision = 0;
  for (const { r, byName, byMac } of rounds) {
    for (const [results, reason] of [[byName, `Node with name=same-name-${r} already exists.`], [byMac, `Node with MAC=${mac(r, 0xff)} already exists.`]] as const) {
      const won = results.filter((result) => result.status === 'fulfilled');
      const lost = results.filter((result) => result.status === 'rejected');
      t.is(won.length, 1, `round ${r}: one winner (${reason})`);
      t.true(lost[0]?.reason instanceof StoreConflict, `round ${r}: the loser gets StoreConflict`);
      t.is((lost[0]?.reason as Error | undefined)?.message, reason);
      for (const result of won) revision = Math.max(revision, result.value);
    }
  }

  const contents = await etcdContents(cluster.clientOf(2));
  const records = [...contents].filter(([key]) => key.startsWith(`${PREFIX}obj/node/`)).map(([, value]) => JSON.parse(value) as SharedRecord);
  t.is(records.length, 2 * ROUNDS);
  t.is(new Set(records.map((r) => r.name)).size, records.length, 'no name twice');
  t.is(new Set(records.map((r) => r.mac)).size, records.length, 'no MAC twice');
  for (const record of records) {
    t.is(contents.get(`${PREFIX}idx/node/name/${String(record.name)}`), record.uid);
    t.is(contents.get(`${PREFIX}idx/node/mac/${String(record.mac)}`), record.uid);
  }
  t.is(contents.size, 3 * records.length, 'a record and its two index keys, nothing else');
  for (const head of heads) {
    await head.replicator.waitFor(revision, REPLICA_WAIT_MS);
    t.deepEqual(replicaContents(head.replica), contents);
  }
});

test.serial('writes resume after the etcd leader is killed, and every acknowledged write is on every replica', async (t) => {
  const cluster = await startEtcdCluster(t);
  const writer = new SharedObjects(cluster.client(), PREFIX);
  const heads = [openHead(t, cluster.client(), tempDir(t)), openHead(t, cluster.client(), tempDir(t))];
  for (const head of heads) await head.replicator.start();
  const WRITES = 40;
  const KILL_AFTER = 10;
  const deadline = Date.now() + 120_000;
  const acknowledged: { record: SharedRecord; revision: number }[] = [];
  let killedAt = 0;
  let firstAfterKillMs: number | undefined;
  let failures = 0;
  const oldLeader = await cluster.leader();
  for (let i = 0; i < WRITES; i++) {
    if (i === KILL_AFTER) {
      await cluster.kill(oldLeader);
      killedAt = Date.now();
    }
    const record = node(`kill-${i}`, `02:00:00:01:00:${i.toString(16).padStart(2, '0')}`);
    // Retried with the same record until acknowledged: a create whose answer was lost and that is
    // sent again finds itself already there, which counts as done (SharedObjects.create).
    for (;;) {
      if (Date.now() > deadline) throw new Error(`write ${i} not acknowledged within the time bound (${failures} failures)`);
      try {
        acknowledged.push({ record, revision: await writer.create('node', nodeIndexes, record) });
        if (killedAt && firstAfterKillMs === undefined) firstAfterKillMs = Date.now() - killedAt;
        break;
      } catch (err) {
        t.false(err instanceof StoreConflict, `write ${i}: ${(err as Error).message}`);
        failures++;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
  t.log(`first write acknowledged ${firstAfterKillMs} ms after the leader was killed; ${failures} failed attempts`);
  t.not(await cluster.leader(), oldLeader);
  t.is(acknowledged.length, WRITES);
  const last = Math.max(...acknowledged.map((a) => a.revision));
  for (const head of heads) {
    await head.replicator.waitFor(last, REPLICA_WAIT_MS);
    for (const { record } of acknowledged) t.deepEqual(JSON.parse(head.replica.get(objectKey(PREFIX, 'node', record.uid))?.value.toString('utf8') ?? 'null'), record);
    t.deepEqual(replicaContents(head.replica), await etcdContents(cluster.client()));
  }
});
