// Shared setup for the TFTP server tests: a root directory with the files the conformance tests
// fetch (plus symlinks in and out of it), a content store with files published as tftp/<path>, and
// an in-process TftpServer on 127.0.0.1 whose log lines the test can read.
import type { ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { pino } from 'pino';
import { TftpServer, type TftpServerOptions } from '../../src/net/tftp/server.js';
import { ChunkStoreSource, CompositeSource, RootDirectorySource } from '../../src/net/tftp/sources.js';
import { ChunkStore } from '../../src/store/chunks.js';
import { Store } from '../../src/store/store.js';
import { seededBuffer } from '../helpers/seeded-bytes.js';

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export interface Fixture {
  dir: string;
  root: string;
  /** Content of each served file by request name. */
  files: Map<string, Buffer>;
  chunks: ChunkStore;
  store: Store;
  close(): Promise<void>;
}

/** Root-directory files and content-store files, by the name a client asks for. */
export async function createFixture(): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-tftp-'));
  const root = join(dir, 'root');
  const outside = join(dir, 'outside');
  mkdirSync(join(root, 'sub', 'dir'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), 'not for TFTP clients\n');
  const files = new Map<string, Buffer>();
  const put = (name: string, data: Buffer) => {
    writeFileSync(join(root, name), data);
    files.set(name, data);
  };
  put('f.bin', await seededBuffer(1, 1_500_000));
  put('small.bin', await seededBuffer(2, 20_000));
  put('exact.bin', await seededBuffer(3, 1468 * 64)); // n·blksize at 1468: ends with an empty block
  put('empty.bin', Buffer.alloc(0));
  put('text.txt', Buffer.from('line one\nline two\r\nbare CR\rtabs\tand NUL\0 end\n'));
  put('sub/dir/nested.cfg', Buffer.from('set timeout=5\n'));
  symlinkSync('f.bin', join(root, 'inside-link'));
  files.set('inside-link', files.get('f.bin')!);
  symlinkSync(join(outside, 'secret'), join(root, 'escape-link'));
  symlinkSync(outside, join(root, 'escape-dir'));

  const store = new Store({ dataDir: join(dir, 'store'), headName: 'tftp-test' });
  const chunks = new ChunkStore(store, { chunkSize: 64 * 1024 });
  const publish = async (name: string, data: Buffer) => {
    await chunks.putFile(`tftp/${name}`, Readable.from([data]));
    files.set(name, data);
  };
  // Chunks of 64 KiB so that blocks of every size straddle chunk boundaries.
  await publish('ipxe.efi', await seededBuffer(4, 1_000_003));
  await publish('grub/grub.cfg', Buffer.from('menuentry "keel" {}\n'));
  return {
    dir,
    root,
    files,
    chunks,
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestServer {
  server: TftpServer;
  port: number;
  /** Parsed log lines. */
  logs: Record<string, unknown>[];
}

export function startServer(t: ExecutionContext, fixture: Fixture, options: Partial<TftpServerOptions> = {}): TestServer {
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const source = new CompositeSource([new ChunkStoreSource(fixture.chunks), new RootDirectorySource(fixture.root)]);
  const server = new TftpServer({ bindAddress: '127.0.0.1', port: 0, source, log, ...options });
  t.teardown(() => server.close());
  return { server, port: server.address().port, logs };
}

export interface ClientRun {
  exitCode: number;
  output: string;
  /** The downloaded file, if the client wrote one. */
  data: Buffer | undefined;
}

/** Runs a real client command in a fresh directory; `out` is the local file name it writes. */
export async function runClient(t: ExecutionContext, command: string, args: string[], out = 'out'): Promise<ClientRun> {
  const cwd = mkdtempSync(join(tmpdir(), 'keel-tftp-client-'));
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }));
  const result = await execa(command, args, { cwd, reject: false, timeout: 60_000, all: true, stdin: 'ignore' });
  let data: Buffer | undefined;
  try {
    data = readFileSync(join(cwd, out));
  } catch {
    data = undefined;
  }
  return { exitCode: result.exitCode ?? -1, output: result.all ?? '', data };
}

export const curl = (port: number, name: string, blksize?: number) =>
  ['-sS', '--path-as-is', ...(blksize === undefined ? [] : ['--tftp-blksize', String(blksize)]), '-o', 'out', `tftp://127.0.0.1:${port}/${name}`];

export const atftp = (port: number, name: string, options: Record<string, number>) => [
  '-g', '-r', name, '-l', 'out',
  ...Object.entries(options).flatMap(([key, value]) => ['--option', `${key} ${value}`]),
  '127.0.0.1', String(port),
];

/** tftp-hpa's client: plain RFC 1350, no options. */
export const tftpHpa = (port: number, name: string, mode: 'binary' | 'ascii' = 'binary') => ['-m', mode, '127.0.0.1', String(port), '-c', 'get', name, 'out'];
