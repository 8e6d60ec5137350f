// Block-number rollover with real clients: 40 MiB at blksize 512 is 81,920 blocks, so the 16-bit
// block number wraps (65535 → 0) once. From the content store and from the root directory.
import test from 'ava';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pino } from 'pino';
import { TftpServer } from '../src/net/tftp/server.js';
import { ChunkStoreSource, CompositeSource, RootDirectorySource } from '../src/net/tftp/sources.js';
import { ChunkStore } from '../src/store/chunks.js';
import { Store } from '../src/store/store.js';
import { seededBytes, seededSha256 } from './helpers/seeded-bytes.js';
import { atftp, runClient, sha256, tftpHpa } from './tftp/fixture.js';

const SIZE = 40 * 1024 * 1024;
const SEED = 40;

test('40 MiB at blksize 512 wraps the block number: tftp-hpa (lock-step, store) and atftp (windowsize 16, root)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keel-tftp-rollover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = new Store({ dataDir: join(dir, 'store'), headName: 'rollover' });
  t.teardown(() => store.close());
  const chunks = new ChunkStore(store);
  await chunks.putFile('tftp/big.bin', seededBytes(SEED, SIZE));
  await pipeline(Readable.from(seededBytes(SEED, SIZE)), createWriteStream(join(dir, 'disk.bin')));
  const want = await seededSha256(SEED, SIZE);

  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const source = new CompositeSource([new ChunkStoreSource(chunks), new RootDirectorySource(dir)]);
  const server = new TftpServer({ bindAddress: '127.0.0.1', port: 0, source, log });
  t.teardown(() => server.close());
  const port = server.address().port;

  const lockStep = await runClient(t, 'tftp', tftpHpa(port, 'big.bin'));
  t.is(lockStep.exitCode, 0, lockStep.output);
  t.is(sha256(lockStep.data ?? Buffer.alloc(0)), want);
  const windowed = await runClient(t, 'atftp', atftp(port, 'disk.bin', { blksize: 512, windowsize: 16, tsize: 0 }));
  t.is(windowed.exitCode, 0, windowed.output);
  t.is(sha256(windowed.data ?? Buffer.alloc(0)), want);

  const transfers = logs.filter((l) => l.msg === 'tftp transfer');
  t.deepEqual(transfers.map((l) => [l.outcome, l.blksize, l.windowsize, l.bytes]), [
    ['complete', 512, 1, SIZE],
    ['complete', 512, 16, SIZE],
  ]);
});
