import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import { adminIndexes } from '../src/model/indexes.js';
import { acknowledgedUntilKilled } from './helpers/kill-writer.js';

test('every acknowledged write survives kill -9 of the writer mid-stream', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-durability-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers/store-writer.ts'), dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));

  const acknowledged = await acknowledgedUntilKilled(child, 2000, 1000);

  const store = new Store({ dataDir, headName: 'checker' });
  t.teardown(() => store.close());
  const admins = store.collection('admin', adminIndexes);
  const missing = [...acknowledged].filter(([uid, name]) => admins.get(uid)?.name !== name);
  t.deepEqual(missing, [], 'acknowledged records missing after kill -9');
  t.deepEqual(store.check(), [], 'integrity check');
  t.true(admins.count() >= acknowledged.size);
});
