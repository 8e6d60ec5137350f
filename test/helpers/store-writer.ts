// Child process for the kill -9 durability test: writes records as fast as it can, several
// writes in flight at once, and prints the uid of each write only after the store acknowledged it.
import { Store } from '../../src/store/store.js';
import { adminIndexes } from '../../src/model/indexes.js';

const store = new Store({ dataDir: process.argv[2]!, headName: 'writer' });
const admins = store.collection('admin', adminIndexes);
let n = 0;
async function writer(lane: number): Promise<never> {
  for (;;) {
    const i = n++;
    const record = await store.write('writer', (tx) =>
      tx.put(admins, { name: `user${lane}-${i}`, description: 'x'.repeat(i % 2000) }),
    );
    process.stdout.write(`${record.uid} ${record.name as string}\n`);
  }
}
for (let lane = 0; lane < 8; lane++) void writer(lane);
