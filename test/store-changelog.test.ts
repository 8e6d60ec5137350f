// The change log stays bounded (issue 19, item 13): repeated writes of one object (a node posting
// its status) keep one entry, and entries older than the retention window are pruned.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';

function openStore(t: { teardown(fn: () => unknown): void }, dataDir: string, changeLogRetention?: number): Store {
  const store = new Store({ dataDir, headName: 'h', changeLogRetention });
  t.teardown(() => store.close());
  return store;
}

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-changelog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('4,000 status writes of one node leave one change-log entry, and subscribers still hear each', async (t) => {
  const store = openStore(t, tempDir(t));
  const nodes = store.collection('node');
  const node = await store.write('a', (tx) => tx.put(nodes, { name: 'n1', status: 0 }));
  let heard = 0;
  store.subscribe(() => heard++);
  const writes = Array.from({ length: 4000 }, (_, i) => store.write('node', (tx) => tx.put(nodes, { ...nodes.get(node.uid)!, status: i })));
  await Promise.all(writes);
  t.is(heard, 4000);
  const log = store.changesSince(0);
  t.is(log.length, 1);
  t.like(log[0], { class: 'node', uid: node.uid, op: 'put', seq: store.lastSeq });
  t.deepEqual(store.check(), []);
});

test('the log keeps the last change_log_retention entries, and numbering goes on after a restart', async (t) => {
  const dataDir = tempDir(t);
  const store = openStore(t, dataDir, 1000);
  const things = store.collection('thing');
  for (let batch = 0; batch < 30; batch++) {
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.write('a', (tx) => tx.put(things, { name: `t${batch}-${i}` }))));
  }
  t.is(store.lastSeq, 3000);
  const log = store.changesSince(0);
  t.is(log.length, 1000);
  t.is(log[0]!.seq, 2001);
  t.deepEqual(store.check(), []);
  await store.close();

  const reopened = openStore(t, dataDir, 1000);
  const thing = await reopened.write('a', (tx) => tx.put(reopened.collection('thing'), { name: 'after' }));
  t.is(reopened.lastSeq, 3001);
  t.deepEqual(reopened.changesSince(3000).map((c) => c.uid), [thing.uid]);
  t.is(reopened.changesSince(0).length, 1000);
  t.deepEqual(reopened.check(), []);
});
