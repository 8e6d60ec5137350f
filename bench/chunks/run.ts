// Chunk size measurement for the chunk store (docs/chunk-store.md): for each candidate chunk size,
// upload the same seeded file into a fresh store and into a plain file (the peer: what `curl -o`
// plus fsync costs on this disk), read it back HTTP-style (one slice per chunk) and TFTP-style
// (small sequential blocks), and measure storage overhead and dedup of a lightly edited copy.
//   node --import tsx bench/chunks/run.ts [--mib 256] [--sizes 64,256,1024,4096] [--tftp-mib 64]
import { createHash } from 'node:crypto';
import { open as openFile } from 'node:fs/promises';
import { mkdtempSync, rmSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Store } from '../../src/store/store.js';
import { ChunkStore } from '../../src/store/chunks.js';
import { seededBytes } from '../../test/helpers/seeded-bytes.js';

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '256' },
    sizes: { type: 'string', default: '64,256,1024,4096' },
    'tftp-mib': { type: 'string', default: '64' },
    'tftp-blksize': { type: 'string', default: '1468' },
  },
});
const MiB = 1024 * 1024;
const fileBytes = Number(values.mib) * MiB;
const tftpBytes = Math.min(fileBytes, Number(values['tftp-mib']) * MiB);
const blksize = Number(values['tftp-blksize']);
const chunkSizes = values.sizes.split(',').map((k) => Number(k) * 1024);
const EDITS = 64;
const EDIT_BYTES = 4096;

const mbps = (bytes: number, ms: number): number => bytes / MiB / (ms / 1000);
const seconds = async (fn: () => Promise<unknown> | unknown): Promise<number> => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};

/** The seeded file with EDITS scattered 4 KiB regions overwritten: an image rebuilt with small changes. */
async function* editedCopy(seed: number, size: number): AsyncGenerator<Buffer> {
  const stride = Math.floor(size / EDITS);
  let offset = 0;
  for await (const piece of seededBytes(seed, size)) {
    for (let edit = Math.ceil(offset / stride) * stride + 1234; edit < offset + piece.length; edit += stride) {
      piece.fill(0xee, edit - offset, Math.min(piece.length, edit - offset + EDIT_BYTES));
    }
    offset += piece.length;
    yield piece;
  }
}

async function plainFilePeer(dir: string, readSize: number): Promise<{ writeMs: number; readMs: number }> {
  const path = join(dir, 'plain.bin');
  const writeMs = await seconds(async () => {
    const handle = await openFile(path, 'w');
    for await (const piece of seededBytes(1, fileBytes)) await handle.write(piece);
    await handle.sync();
    await handle.close();
  });
  const buffer = Buffer.allocUnsafe(readSize);
  const readMs = await seconds(() => {
    const fd = openSync(path, 'r');
    for (let offset = 0; offset < fileBytes; offset += readSize) readSync(fd, buffer, 0, readSize, offset);
    closeSync(fd);
  });
  rmSync(path);
  return { writeMs, readMs };
}

const generatorMs = await seconds(async () => {
  for await (const piece of seededBytes(1, fileBytes)) void piece;
});
// The upload's CPU floor: sha1 + sha256 of the whole file and sha256 of each (1 MiB) chunk.
const hashingMs = await seconds(async () => {
  const whole = [createHash('sha1'), createHash('sha256')];
  for await (const piece of seededBytes(1, fileBytes, { pieceSize: MiB })) {
    for (const hash of whole) hash.update(piece);
    createHash('sha256').update(piece).digest();
  }
});
console.log(
  `file ${fileBytes / MiB} MiB; input generator alone ${mbps(fileBytes, generatorMs).toFixed(0)} MB/s, ` +
    `generator + upload hashing alone ${mbps(fileBytes, hashingMs).toFixed(0)} MB/s`,
);
console.log(
  'chunk KiB | write MB/s (plain file) ratio | HTTP read MB/s (plain) ratio | TFTP ' +
    `${blksize} B read MB/s | data.mdb / content | edited copy adds MiB (${EDITS} x 4 KiB edits)`,
);

for (const chunkSize of chunkSizes) {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-chunks-'));
  try {
    const peer = await plainFilePeer(dir, chunkSize);
    const store = new Store({ dataDir: dir, headName: 'bench' });
    const chunks = new ChunkStore(store, { chunkSize });
    const writeMs = await seconds(() => chunks.putFile('image/a/content', seededBytes(1, fileBytes)));

    const reader = chunks.open('image/a/content')!;
    let served = 0;
    const readMs = await seconds(() => {
      for (const slice of reader.slices()) served += slice.length;
    });
    if (served !== fileBytes) throw new Error(`served ${served} of ${fileBytes}`);
    const tftpMs = await seconds(() => {
      for (let offset = 0; offset < tftpBytes; offset += blksize) reader.read(offset, blksize);
    });
    reader.close();

    const dbBytes = statSync(join(store.path, 'data.mdb')).size;
    const chunksBefore = chunks.stats().chunks;
    await chunks.putFile('image/b/content', editedCopy(1, fileBytes));
    const addedMiB = ((chunks.stats().chunks - chunksBefore) * chunkSize) / MiB;
    if (chunks.check().length > 0) throw new Error(chunks.check().join('\n'));
    await store.close();

    const writeRate = mbps(fileBytes, writeMs);
    const peerWrite = mbps(fileBytes, peer.writeMs);
    const readRate = mbps(fileBytes, readMs);
    const peerRead = mbps(fileBytes, peer.readMs);
    console.log(
      [
        String(chunkSize / 1024).padStart(9),
        `${writeRate.toFixed(0)} (${peerWrite.toFixed(0)}) ${(writeRate / peerWrite).toFixed(2)}`,
        `${readRate.toFixed(0)} (${peerRead.toFixed(0)}) ${(readRate / peerRead).toFixed(2)}`,
        mbps(tftpBytes, tftpMs).toFixed(0),
        (dbBytes / fileBytes).toFixed(4),
        addedMiB.toFixed(2),
      ].join(' | '),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
