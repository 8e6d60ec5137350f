// The generic object machinery on its own: a class declared only for this test exercises what no
// foundation class uses yet (frozen records).
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DomainError } from '../src/model/errors.js';
import { describe, ObjectStore, type ObjectClass } from '../src/model/object-store.js';
import { ChunkStore } from '../src/store/chunks.js';
import { Store } from '../src/store/store.js';

const widgetClass: ObjectClass = {
  name: 'widget', plural: 'widgets', label: 'widget',
  indexes: [{ name: 'name', keys: (r) => r.name as string, conflict: (k) => `Widget with name=${k} already exists.` }],
  readAccess: 'role.authuser', writeAccess: 'role.fulladmin',
  frozenReason: 'Cannot modify frozen widget.',
  fields: { name: { type: 'string', required: true, summary: 'Name' }, size: { type: 'integer', summary: 'Size' } },
};

function open(t: { teardown(fn: () => unknown): void }): { store: Store; widgets: ObjectStore } {
  const dir = mkdtempSync(join(tmpdir(), 'keel-objects-'));
  const store = new Store({ dataDir: dir, headName: 'h1' });
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // The widget class refers to no other class: its catalog is itself alone.
  const widgets: ObjectStore = new ObjectStore(widgetClass, store, new ChunkStore(store), { objectsNamed: () => widgets, all: () => [widgets] });
  return { store, widgets };
}

const reason = async (promise: Promise<unknown>) => ((await promise.then(() => undefined, (e: unknown) => e)) as DomainError | undefined)?.message;

test('a frozen record refuses changes and deletion until unfrozen', async (t) => {
  const { widgets } = open(t);
  const w = await widgets.create('alice', { name: 'w1', size: 1, frozen: true });
  t.is(await reason(widgets.update('bob', 'w1', { size: 2 }, false)), 'Cannot modify frozen widget.');
  t.is(await reason(widgets.update('bob', 'w1', { name: 'w1', size: 2 }, true)), 'Cannot modify frozen widget.');
  t.is(await reason(widgets.remove('bob', 'w1')), 'Cannot modify frozen widget.');
  t.is(await reason(widgets.update('bob', 'w1', { frozen: false, size: 3 }, false)), 'Cannot modify frozen widget.', 'unfreeze alone, not with changes');
  await widgets.update('bob', 'w1', { frozen: false }, false);
  await widgets.update('bob', w.uid, { size: 4 }, false);
  const after = widgets.view(widgets.resolve('w1'));
  t.like(after, { name: 'w1', size: 4, frozen: false, last_modified_by: 'bob', last_modified_on: 'h1', uid: w.uid });
  await widgets.remove('bob', 'w1');
  t.is(widgets.findUid('w1'), undefined);
});

test('cached views follow every change, including deletion', async (t) => {
  const { widgets } = open(t);
  const w = await widgets.create('a', { name: 'w3', size: 1 });
  t.is(widgets.viewOf('w3').size, 1);
  t.is(widgets.viewOf('w3'), widgets.viewOf(w.uid), 'an unchanged record is served from the cache');
  await widgets.update('a', 'w3', { size: 2 }, false);
  t.is(widgets.viewOf('w3').size, 2);
  t.deepEqual(Object.values(widgets.viewAll()).map((v) => v.size), [2]);
  await widgets.update('a', 'w3', { name: 'w4' }, false);
  t.throws(() => widgets.viewOf('w3'), { message: 'No widget found for ID=w3' });
  await widgets.remove('a', 'w4');
  t.throws(() => widgets.viewOf(w.uid));
  t.deepEqual(widgets.viewAll(), {});
});

test('names that look like a uid are refused; every change is on the feed in order', async (t) => {
  const { store, widgets } = open(t);
  t.regex((await reason(widgets.create('a', { name: 'ab'.repeat(16) })))!, /not look like a UID/);
  const seen: string[] = [];
  store.subscribe((c) => seen.push(`${c.seq}:${c.op}:${c.class}`));
  const w = await widgets.create('a', { name: 'w2' });
  await widgets.update('a', 'w2', { size: 9 }, false);
  await widgets.remove('a', w.uid);
  t.deepEqual(seen, ['1:put:widget', '2:put:widget', '3:delete:widget']);
  // Catching up gives each object's latest change only (docs/store.md, change-log retention).
  t.deepEqual(store.changesSince(1).map((c) => c.seq), [3]);
  t.deepEqual(store.check(), []);
});

test('meta lists the frozen field and the store-maintained fields', (t) => {
  const paths = describe(open(t).widgets.fields).fields.map((f) => f.path[0]);
  t.deepEqual(paths.sort(), ['frozen', 'last_modified', 'last_modified_by', 'last_modified_on', 'name', 'size', 'uid']);
});
