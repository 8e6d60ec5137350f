// The etcd test harness itself (test/helpers/etcd-cluster.ts): three real members in network
// namespaces elect a leader and replicate writes; killing the leader elects another and writes go on;
// a member cut off with nftables stops taking writes and catches up once healed. The multi-head
// tests rest on these behaviours, so they are proved here first.
import test from 'ava';
import { startEtcdCluster } from './helpers/etcd-cluster.js';

// Serial: each test runs a cluster of three etcd processes, and the machine is shared.
test.serial('three members elect one leader and a write through one member is read through every member', async (t) => {
  const cluster = await startEtcdCluster(t);
  const leader = await cluster.leader();
  t.true(leader >= 0 && leader < 3);
  await cluster.clientOf((leader + 1) % 3).put('harness/a').value('one');
  for (const m of cluster.members) t.is(await cluster.clientOf(m.index).get('harness/a').string(), 'one', `member ${m.name}`);
});

test.serial('killing the leader elects another; writes resume, and the killed member catches up when restarted', async (t) => {
  const cluster = await startEtcdCluster(t);
  const client = cluster.client();
  await client.put('harness/before').value('1');
  const first = await cluster.leader();
  await cluster.kill(first);
  const second = await cluster.leader(60_000);
  t.not(second, first);
  t.false(cluster.running(first));
  await cluster.clientOf(second).put('harness/after').value('2');
  cluster.start(first);
  await cluster.leader(60_000);
  // A linearizable read through the restarted member alone: it answers only once it has caught up.
  t.is(await cluster.clientOf(first).get('harness/after').string(), '2');
});

test.serial('a member cut off with nftables refuses writes; healed, it has the writes made without it', async (t) => {
  const cluster = await startEtcdCluster(t);
  const leader = await cluster.leader();
  const isolated = (leader + 1) % 3;
  cluster.cut(isolated);
  // The cut member's client fails (no quorum behind it: a timeout or "no leader"), the others write on.
  await t.throwsAsync(cluster.clientOf(isolated).put('harness/cut').value('lost'));
  await cluster.clientOf((isolated + 1) % 3).put('harness/during').value('3');
  cluster.heal(isolated);
  await cluster.leader(60_000);
  t.is(await cluster.clientOf(isolated).get('harness/during').string(), '3');
  t.is(await cluster.clientOf(isolated).get('harness/cut').string(), null);
});
