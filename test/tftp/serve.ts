// A keel TFTP server in its own process, for tests inside network namespaces and for bench/tftp:
//   node --import tsx test/tftp/serve.ts [--bind 0.0.0.0] [--port 0] [--root DIR] [--store DATA_DIR] [--log-level info]
// Prints {"port":N} once listening; on SIGTERM lets running transfers end (at most 30 s), closes,
// prints {"stats":{...}} and exits.
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { TftpServer } from '../../src/net/tftp/server.js';
import { ChunkStoreSource, CompositeSource, RootDirectorySource, type TftpFileSource } from '../../src/net/tftp/sources.js';
import { ChunkStore } from '../../src/store/chunks.js';
import { Store } from '../../src/store/store.js';

const { values } = parseArgs({
  options: {
    bind: { type: 'string', default: '0.0.0.0' },
    port: { type: 'string', default: '0' },
    root: { type: 'string' },
    store: { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
  },
});

const sources: TftpFileSource[] = [];
const store = values.store === undefined ? undefined : new Store({ dataDir: values.store, headName: 'tftp-test' });
if (store) sources.push(new ChunkStoreSource(new ChunkStore(store)));
if (values.root !== undefined) sources.push(new RootDirectorySource(values.root));
// Logs go to stderr: stdout carries the JSON lines the parent reads.
const log = pino({ level: values['log-level'] }, pino.destination(2));
const server = new TftpServer({ bindAddress: values.bind, port: Number(values.port), source: new CompositeSource(sources), log });
process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);

// Transfers still running get up to 30 s to end on their own first: under loss the client may
// already have the whole file while the server still waits out its last block's retransmissions.
const drained = async () => {
  const deadline = Date.now() + 30_000;
  while (server.stats().activeTransfers > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
};

process.on('SIGTERM', () => {
  void drained().then(() => server.close()).then(async () => {
    process.stdout.write(`${JSON.stringify({ stats: server.stats() })}\n`);
    await store?.close();
    process.exit(0);
  });
});
