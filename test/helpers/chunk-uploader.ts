// Child process for the kill -9 chunk store test: replaces file `id` with `size` seeded bytes,
// printing `consumed <bytes>` as it reads its input. The input never yields its last piece, so
// the upload is always still running (with chunk writes in flight) when the parent kills it.
import { Store } from '../../src/store/store.js';
import { ChunkStore } from '../../src/store/chunks.js';
import { seededBytes } from './seeded-bytes.js';

const [dataDir, id, seed, size] = process.argv.slice(2);
const store = new Store({ dataDir: dataDir!, headName: 'uploader' });
const chunks = new ChunkStore(store);

async function* stallingInput(): AsyncGenerator<Buffer> {
  const total = Number(size);
  let consumed = 0;
  for await (const piece of seededBytes(Number(seed), total)) {
    // Bounded stall: the parent kills long before; an orphan still goes away on its own.
    if (consumed + piece.length >= total) await new Promise((resolve) => setTimeout(resolve, 120_000));
    yield piece;
    consumed += piece.length;
    if (consumed % (1024 * 1024) === 0) process.stdout.write(`consumed ${consumed}\n`);
  }
}

await chunks.putFile(id!, stallingInput());
process.stdout.write('committed\n');
