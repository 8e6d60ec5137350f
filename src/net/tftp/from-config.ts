// The head's TFTP server as the config describes it: content-store files published as tftp/<path>,
// then the optional root directory, on server.bind:tftp.port.
import type { Logger } from 'pino';
import type { KeelConfig } from '../../config.js';
import type { ChunkStore } from '../../store/chunks.js';
import { TftpServer, type TftpServerOptions } from './server.js';
import { ChunkStoreSource, CompositeSource, RootDirectorySource, type TftpFileSource } from './sources.js';

export function startTftpServer(config: KeelConfig, chunks: ChunkStore, log: Logger, bootEvents?: TftpServerOptions['bootEvents'], port = config.tftp.port): TftpServer {
  const sources: TftpFileSource[] = [new ChunkStoreSource(chunks)];
  if (config.tftp.root !== null) sources.push(new RootDirectorySource(config.tftp.root));
  // dgram-native is IPv4: the IPv6 wildcard means "everywhere" for TFTP too, any other IPv6 address cannot be served.
  const bind = config.server.bind === '::' ? '0.0.0.0' : config.server.bind;
  if (bind.includes(':')) throw new Error(`TFTP needs an IPv4 server.bind (or "::" / "0.0.0.0"), got ${config.server.bind}`);
  const server = new TftpServer({
    bindAddress: bind, port, source: new CompositeSource(sources), log: log.child({ component: 'tftp' }),
    maxTransfers: config.tftp.max_transfers,
    maxTransfersPerSource: config.tftp.max_transfers_per_source,
    windowMemoryBytes: config.tftp.window_memory_bytes,
    windowMemoryPerSourceBytes: config.tftp.window_memory_per_source_bytes,
    bootEvents,
  });
  log.info({ bind, port: server.address().port, root: config.tftp.root ?? undefined }, 'TFTP listening');
  return server;
}
