import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Store } from '../src/store/store.js';
import { adminIndexes } from '../src/model/indexes.js';

test('every acknowledged write survives kill -9 of the writer mid-stream', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'keel-durability-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers/store-writer.ts'), dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));

  const acknowledged = new Map<string, string>();
  const lines = createInterface({ input: child.stdout });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  // Kill at a pseudo-random point after a bounded number of acknowledgements, so the kill
  // lands while writes are in flight.
  const killAfter = 2000 + Math.floor(Math.random() * 1000);
  for await (const line of lines) {
    const [uid, name] = line.split(' ');
    acknowledged.set(uid!, name!);
    if (acknowledged.size >= killAfter) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
  t.true(acknowledged.size >= killAfter);

  const store = new Store({ dataDir, headName: 'checker' });
  t.teardown(() => store.close());
  const admins = store.collection('admin', adminIndexes);
  const missing = [...acknowledged].filter(([uid, name]) => admins.get(uid)?.name !== name);
  t.deepEqual(missing, [], 'acknowledged records missing after kill -9');
  t.deepEqual(store.check(), [], 'integrity check');
  t.true(admins.count() >= acknowledged.size);
});
