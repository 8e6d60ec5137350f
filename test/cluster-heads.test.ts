// The heads registry on a real three-member etcd cluster (src/cluster/heads.ts,
// docs/multihead.md "Heads"): a head that stops renewing its lease (as after kill -9) is listed as
// down once its TTL runs out, one that leaves is down at once, a head that comes back is alive
// again, removing the down heads removes exactly those; and a head's liveness outlives the loss of
// the etcd leader.
import test from 'ava';
import { pino } from 'pino';
import { HeadRegistry, type HeadRecord } from '../src/cluster/heads.js';
import { startEtcdCluster } from './helpers/etcd-cluster.js';

const PREFIX = '/keel/';
const silent = pino({ level: 'silent' });
const head = (n: number): HeadRecord => ({ uid: `head${n}`, ssh_public: `ssh-ed25519 AAAA${n} keel@head${n}`, peer_url: `http://10.222.0.${11 + n}:2380` });
const uids = (heads: HeadRecord[]) => heads.map((h) => h.uid).sort();

/** Polls `down` until it lists `expected` (throws naming what it saw after `timeoutMs`). */
async function downBecomes(registry: HeadRegistry, expected: string[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const down = uids(await registry.down());
    if (JSON.stringify(down) === JSON.stringify(expected)) return;
    if (Date.now() > deadline) throw new Error(`heads down: ${JSON.stringify(down)}, expected ${JSON.stringify(expected)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test.serial('a head that stops renewing is down after its TTL, one that leaves at once; DELETE removes exactly the down ones', async (t) => {
  const cluster = await startEtcdCluster(t);
  const TTL = 3;
  const registries = [0, 1, 2].map((i) => new HeadRegistry(cluster.clientOf(i), PREFIX, silent));
  t.teardown(() => registries.forEach((r) => r.stop()));
  for (const [i, registry] of registries.entries()) await registry.join(head(i), TTL);
  t.deepEqual(await registries[0]!.down(), []);

  registries[1]!.stop();
  t.deepEqual(await registries[0]!.down(), [], 'still alive within its TTL');
  await downBecomes(registries[0]!, ['head1']);

  await registries[2]!.leave();
  t.deepEqual(uids(await registries[0]!.down()), ['head1', 'head2'], 'a head that left is down at once');

  const back = new HeadRegistry(cluster.clientOf(1), PREFIX, silent);
  t.teardown(() => back.stop());
  await back.join(head(1), TTL);
  t.deepEqual(uids(await registries[0]!.down()), ['head2']);

  t.deepEqual(uids(await registries[0]!.removeDown()), ['head2']);
  t.deepEqual(await registries[0]!.down(), []);
  t.deepEqual((await registries[0]!.heads()).map((h) => [h.head.uid, h.alive]).sort(), [['head0', true], ['head1', true]]);
});

test.serial('a head stays alive while the etcd leader is killed and another elected', async (t) => {
  const cluster = await startEtcdCluster(t);
  const TTL = 5;
  const registry = new HeadRegistry(cluster.client(), PREFIX, silent);
  t.teardown(() => registry.stop());
  await registry.join(head(0), TTL);
  const leader = await cluster.leader();
  await cluster.kill(leader);
  await cluster.leader();
  // Three TTLs after the election: a lease not renewed through another member would be gone.
  await new Promise((resolve) => setTimeout(resolve, 3 * TTL * 1000));
  const observer = new HeadRegistry(cluster.clientOf((leader + 1) % 3), PREFIX, silent);
  t.deepEqual(await observer.down(), []);
  t.deepEqual((await observer.heads()).map((h) => [h.head.uid, h.alive]), [['head0', true]]);
});
