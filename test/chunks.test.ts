import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { loadAddon } from '../src/native.js';
import { Store } from '../src/store/store.js';
import { ChecksumMismatch, ChunkStore, type Manifest } from '../src/store/chunks.js';
import { seededBytes, seededSha256 } from './helpers/seeded-bytes.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-chunks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function openStore(t: ExecutionContext, dataDir: string, chunkSize?: number): { store: Store; chunks: ChunkStore } {
  const store = new Store({ dataDir, headName: 'test' });
  t.teardown(() => store.close());
  return { store, chunks: new ChunkStore(store, { chunkSize }) };
}

/** Whole-file sha256 of what the store serves for `id`, read chunk by chunk. */
function servedSha256(chunks: ChunkStore, id: string): string | undefined {
  const reader = chunks.open(id);
  if (!reader) return undefined;
  try {
    const hash = createHash('sha256');
    for (const slice of reader.slices()) hash.update(slice);
    return hash.digest('hex');
  } finally {
    reader.close();
  }
}

async function collect(input: AsyncIterable<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of input) pieces.push(piece);
  return Buffer.concat(pieces);
}

/** Yields `size` seeded bytes, then fails the way a dropped client connection does. */
async function* abortedInput(seed: number, size: number): AsyncGenerator<Buffer> {
  yield* seededBytes(seed, size);
  throw new Error('client went away');
}

test('a streamed upload is stored as a manifest whose checksums match the content', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  const size = 1 * MiB + 12345;
  const content = await collect(seededBytes(1, size));
  const manifest = await chunks.putFile('bootconfig/x/kernel', Readable.from(seededBytes(1, size, { pieceSize: 1000 })), {
    mtime: 1700000000,
  });
  t.is(manifest.size, size);
  t.is(manifest.mtime, 1700000000);
  t.is(manifest.sha256, createHash('sha256').update(content).digest('hex'));
  t.is(manifest.sha1, createHash('sha1').update(content).digest('hex'));
  t.is(manifest.chunks.length, 17);
  t.deepEqual(chunks.stat('bootconfig/x/kernel'), manifest);
  t.is(servedSha256(chunks, 'bootconfig/x/kernel'), manifest.sha256);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('reads at arbitrary offsets and ranges return exactly the stored bytes', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  const size = 300 * KiB + 7;
  const content = await collect(seededBytes(2, size));
  await chunks.putFile('f', seededBytes(2, size));
  const reader = chunks.open('f')!;
  t.teardown(() => reader.close());
  // TFTP-style sequential blocks of every legal extreme, crossing chunk boundaries.
  for (const blksize of [512, 1468, 65464]) {
    const blocks: Buffer[] = [];
    for (let offset = 0; offset < size; offset += blksize) blocks.push(Buffer.from(reader.read(offset, blksize)));
    t.true(Buffer.concat(blocks).equals(content), `blksize ${blksize}`);
  }
  t.is(reader.read(size, 512).length, 0);
  t.true(reader.read(64 * KiB - 3, 10).equals(content.subarray(64 * KiB - 3, 64 * KiB + 7)));
  // HTTP-style ranges: the slices concatenate to exactly [start, end).
  for (const [start, end] of [[0, size], [1, 2], [64 * KiB - 1, 64 * KiB + 1], [100_000, 250_000], [size - 5, size]] as const) {
    const got = Buffer.concat(Array.from(reader.slices(start, end), (s) => Buffer.from(s)));
    t.true(got.equals(content.subarray(start, end)), `range ${start}-${end}`);
  }
});

test('an empty file has no chunks and reads as empty', async (t) => {
  const { chunks } = openStore(t, tempDir(t));
  const manifest = await chunks.putFile('empty', seededBytes(3, 0));
  t.is(manifest.size, 0);
  t.deepEqual(manifest.chunks, []);
  t.is(manifest.sha256, createHash('sha256').digest('hex'));
  t.is(servedSha256(chunks, 'empty'), manifest.sha256);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('an expected checksum is verified: match commits, mismatch keeps the old content', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  const size = 500 * KiB;
  const sha256 = await seededSha256(4, size);
  const sha1 = createHash('sha1').update(await collect(seededBytes(4, size))).digest('hex');
  const old = await chunks.putFile('f', seededBytes(4, size), { expectedSha256: sha256.toUpperCase(), expectedSha1: sha1 });
  t.is(old.sha256, sha256);

  const error = await t.throwsAsync(chunks.putFile('f', seededBytes(5, size), { expectedSha256: sha256 }), {
    instanceOf: ChecksumMismatch,
  });
  t.is(error?.algorithm, 'sha256');
  t.is(error?.expected, sha256);
  t.is(error?.actual, await seededSha256(5, size));
  await t.throwsAsync(chunks.putFile('f', seededBytes(5, size), { expectedSha1: sha1 }), { instanceOf: ChecksumMismatch });

  t.deepEqual(chunks.stat('f'), old);
  t.is(servedSha256(chunks, 'f'), sha256);
  // The rejected upload's chunks are garbage, and only those.
  const unused = chunks.unused();
  t.is(unused.bytes, size);
  t.deepEqual(chunks.check({ verify: true }), []);
  const freed = await chunks.collectGarbage();
  t.is(freed.bytes, size);
  t.deepEqual(chunks.unused(), { chunks: [], bytes: 0 });
  t.is(servedSha256(chunks, 'f'), sha256);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('the same file under two images is stored once with refcount 2; GC frees it when both are gone', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  const size = 1 * MiB;
  const a = await chunks.putFile('image/a/content', seededBytes(6, size));
  const b = await chunks.putFile('image/b/content', seededBytes(6, size));
  t.deepEqual(b.chunks, a.chunks);
  t.is(chunks.stats().chunks, 16);
  for (const hash of a.chunks) t.is(chunks.refcount(hash), 2);
  t.deepEqual(chunks.check(), []);

  t.true(await chunks.deleteFile('image/a/content'));
  t.false(await chunks.deleteFile('image/a/content'));
  for (const hash of a.chunks) t.is(chunks.refcount(hash), 1);
  t.deepEqual(chunks.unused(), { chunks: [], bytes: 0 });
  t.deepEqual((await chunks.collectGarbage()).chunks, []);
  t.is(servedSha256(chunks, 'image/b/content'), b.sha256);

  t.true(await chunks.deleteFile('image/b/content'));
  const unused = chunks.unused();
  t.is(unused.bytes, size);
  t.deepEqual(unused.chunks.map((c) => c.sha256).sort(), [...a.chunks].sort());
  const freed = await chunks.collectGarbage();
  t.deepEqual(freed, unused);
  t.is(chunks.stats().chunks, 0);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('repeated chunks inside one file (zero runs) are stored once', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  const zeros = Buffer.alloc(1 * MiB);
  const manifest = await chunks.putFile('disk.img', Readable.from([zeros]));
  t.is(manifest.chunks.length, 16);
  t.is(new Set(manifest.chunks).size, 1);
  t.is(chunks.stats().chunks, 1);
  t.is(chunks.refcount(manifest.chunks[0]!), 1);
  t.is(servedSha256(chunks, 'disk.img'), createHash('sha256').update(zeros).digest('hex'));
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('replacing a file leaves exactly the old chunks unused; an open reader keeps them until closed', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  const old = await chunks.putFile('f', seededBytes(7, 256 * KiB));
  const reader = chunks.open('f')!;
  const replacement = await chunks.putFile('f', seededBytes(8, 320 * KiB));
  t.is(servedSha256(chunks, 'f'), replacement.sha256);
  for (const hash of old.chunks) t.is(chunks.refcount(hash), 0);
  // Pinned by the reader: not listed, not collected, still readable.
  t.deepEqual(chunks.unused().chunks, []);
  await chunks.collectGarbage();
  t.is(createHash('sha256').update(reader.read(0, 256 * KiB)).digest('hex'), old.sha256);
  reader.close();
  t.deepEqual(chunks.unused().chunks.map((c) => c.sha256).sort(), [...old.chunks].sort());
  t.is((await chunks.collectGarbage()).bytes, 256 * KiB);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('client abort mid-upload: old content intact, GC reclaims exactly the partial chunks', async (t) => {
  const { chunks } = openStore(t, tempDir(t));
  const old = await chunks.putFile('image/a/content', seededBytes(9, 4 * MiB));
  await t.throwsAsync(chunks.putFile('image/a/content', abortedInput(10, 20 * MiB + 5)), { message: 'client went away' });

  t.deepEqual(chunks.stat('image/a/content'), old);
  t.is(servedSha256(chunks, 'image/a/content'), await seededSha256(9, 4 * MiB));
  t.deepEqual(chunks.check({ verify: true }), []);
  const unused = chunks.unused();
  t.is(unused.chunks.length, 20, 'the 20 full chunks written before the abort');
  t.is(unused.bytes, 20 * MiB);
  t.deepEqual(await chunks.collectGarbage(), unused);
  t.deepEqual(chunks.unused(), { chunks: [], bytes: 0 });
  t.is(servedSha256(chunks, 'image/a/content'), old.sha256);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('GC during an upload leaves the upload\'s chunks alone', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  await chunks.putFile('garbage', seededBytes(11, 512 * KiB));
  await chunks.deleteFile('garbage');
  let gcResult: Awaited<ReturnType<ChunkStore['collectGarbage']>> | undefined;
  async function* inputWithGcHalfway(): AsyncGenerator<Buffer> {
    let produced = 0;
    for await (const piece of seededBytes(12, 2 * MiB)) {
      yield piece;
      produced += piece.length;
      // Half the upload's chunks are written and unreferenced right now.
      if (produced === 1 * MiB) gcResult = await chunks.collectGarbage();
    }
  }
  const manifest = await chunks.putFile('f', inputWithGcHalfway());
  t.is(gcResult?.bytes, 512 * KiB, 'GC took the deleted file and nothing of the upload');
  t.is(servedSha256(chunks, 'f'), await seededSha256(12, 2 * MiB));
  t.is(manifest.sha256, await seededSha256(12, 2 * MiB));
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('kill -9 mid-upload: the previous content survives byte-identical and GC reclaims the rest', async (t) => {
  const dataDir = tempDir(t);
  const id = 'image/a/content';
  const oldSize = 8 * MiB;
  let old: Manifest;
  {
    const store = new Store({ dataDir, headName: 'test' });
    old = await new ChunkStore(store).putFile(id, seededBytes(13, oldSize));
    await store.close();
  }

  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'helpers/chunk-uploader.ts'), dataDir, id, '14', String(64 * MiB)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => child.kill('SIGKILL'));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  // Kill at a pseudo-random point once a good part of the new version has been read and written.
  const killAt = (16 + Math.floor(Math.random() * 32)) * MiB;
  let consumed = 0;
  for await (const line of createInterface({ input: child.stdout })) {
    t.not(line, 'committed');
    consumed = Number(line.split(' ')[1]);
    if (consumed >= killAt) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
  t.true(consumed >= killAt, 'the uploader died before the kill');

  const { chunks } = openStore(t, dataDir);
  t.deepEqual(chunks.stat(id), old);
  t.is(servedSha256(chunks, id), await seededSha256(13, oldSize));
  t.deepEqual(chunks.check({ verify: true }), []);
  const unused = chunks.unused();
  // Writes in flight at the kill may or may not have committed: at least the ones the uploader
  // waited for before reading on (all but the last 8 MiB + 1 chunk) are there.
  t.true(unused.chunks.length >= consumed / MiB - 9, `${unused.chunks.length} partial chunks for ${consumed} bytes`);
  t.true(unused.chunks.every((c) => c.size === MiB && !old.chunks.includes(c.sha256)));
  t.deepEqual(await chunks.collectGarbage(), unused);
  t.deepEqual(chunks.unused(), { chunks: [], bytes: 0 });
  t.is(servedSha256(chunks, id), old.sha256);
  t.deepEqual(chunks.check({ verify: true }), []);
});

/** Address ranges of `file` mapped into this process (/proc/self/maps). */
function mappingsOf(file: (path: string) => boolean): { start: number; end: number }[] {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((line) => file(line.split(/\s+/)[5] ?? ''))
    .map((line) => {
      const [start, end] = line.split(' ')[0]!.split('-').map((hex) => Number(BigInt(`0x${hex}`))) as [number, number];
      return { start, end };
    });
}

const bufferAddress = (bytes: Buffer): number => (loadAddon('lmdb') as { getBufferAddress(b: Buffer): number }).getBufferAddress(bytes);

test('chunk reads are zero-copy: slices are views of LMDB\'s memory-mapped file, stable across writes and GC of other data', async (t) => {
  const dataDir = tempDir(t);
  const { store, chunks } = openStore(t, dataDir, 64 * KiB);
  const size = 256 * KiB;
  const content = await collect(seededBytes(20, size));
  const manifest = await chunks.putFile('f', seededBytes(20, size));
  const maps = mappingsOf((path) => path.startsWith(dataDir) && path.endsWith('data.mdb'));
  t.true(maps.length > 0, 'the store is memory-mapped');
  const views = manifest.chunks.map((hash) => chunks.peekChunk(hash)!);
  for (const [index, view] of views.entries()) {
    const address = bufferAddress(view);
    // Inside the file mapping, i.e. LMDB's page-cache pages: not a copy on the heap.
    t.true(maps.some((m) => address >= m.start && address + view.length <= m.end), `chunk ${index} is in the map`);
    t.true(view.equals(content.subarray(index * 64 * KiB, (index + 1) * 64 * KiB)));
  }
  // Churn the free pages: other files written, deleted and collected. The chunks of 'f' never move.
  for (let round = 0; round < 4; round++) {
    await chunks.putFile(`other${round}`, seededBytes(30 + round, 512 * KiB));
    await chunks.deleteFile(`other${round}`);
    await chunks.collectGarbage();
  }
  for (const [index, hash] of manifest.chunks.entries()) {
    const again = chunks.peekChunk(hash)!;
    t.is(bufferAddress(again), bufferAddress(views[index]!));
    t.true(again.equals(content.subarray(index * 64 * KiB, (index + 1) * 64 * KiB)), `chunk ${index} unchanged`);
    t.true(again.equals(chunks.readChunk(hash)!));
  }
  // Inside a write transaction a value may sit in a dirty page: the read is a copy, still right.
  const inTx = await store.write('test', () => Buffer.from(chunks.peekChunk(manifest.chunks[1]!)!));
  t.true(inTx.equals(content.subarray(64 * KiB, 128 * KiB)));
});

test('GC while a reader holds a range: the reader keeps its chunks (two chunks, first and last byte) until it closes', async (t) => {
  const { chunks } = openStore(t, tempDir(t), 64 * KiB);
  const size = 200 * KiB + 3;
  const content = await collect(seededBytes(21, size));
  const old = await chunks.putFile('f', seededBytes(21, size));
  const ranges = [[0, 1], [size - 1, size], [64 * KiB - 10, 64 * KiB + 10], [0, size]] as const;
  const reader = chunks.open('f')!;
  const second = chunks.open('f')!;
  second.close(); // one reader closing must not unpin the other's chunks
  const replacement = await chunks.putFile('f', seededBytes(22, 100 * KiB));
  const freed = await chunks.collectGarbage();
  t.deepEqual(freed.chunks, [], 'nothing the reader holds is collected');
  for (const [start, end] of ranges) {
    const got = Buffer.concat(Array.from(reader.slices(start, end), (s) => Buffer.from(s)));
    t.true(got.equals(content.subarray(start, end)), `old content ${start}-${end}`);
  }
  reader.close();
  t.is((await chunks.collectGarbage()).bytes, size);
  for (const hash of old.chunks) t.is(chunks.peekChunk(hash), undefined, 'a collected chunk is gone, not served from a stale view');
  t.is(servedSha256(chunks, 'f'), replacement.sha256);
  t.deepEqual(chunks.check({ verify: true }), []);
});

test('reading a chunk after the store closed throws instead of touching the unmapped file', async (t) => {
  const dataDir = tempDir(t);
  const store = new Store({ dataDir, headName: 'test' });
  const chunks = new ChunkStore(store, { chunkSize: 64 * KiB });
  const manifest = await chunks.putFile('f', seededBytes(23, 64 * KiB));
  t.is(chunks.peekChunk(manifest.chunks[0]!)?.length, 64 * KiB);
  await store.close();
  t.throws(() => chunks.peekChunk(manifest.chunks[0]!));
});
