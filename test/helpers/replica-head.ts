// What a head of a multi-head keel keeps of the shared state (docs/multihead.md): an LMDB store in
// a data directory, the replica of keel's etcd keys in it and the replicator feeding it, for the
// cluster tests and bench/etcd. The caller closes it (a test at teardown); `close` is idempotent.
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { Replica } from '../../src/cluster/replica.js';
import { Replicator } from '../../src/cluster/replicator.js';
import { Store } from '../../src/store/store.js';

export interface ReplicaHead {
  store: Store;
  replica: Replica;
  replicator: Replicator;
  close(): Promise<void>;
}

/** A head's replica of `prefix` on `dataDir` (kept across a close and a new open), fed through `client`; not started. */
export function openReplicaHead(client: Etcd3, dataDir: string, prefix: string): ReplicaHead {
  const store = new Store({ dataDir, headName: 'test' });
  const replica = new Replica(store, 'keel');
  const replicator = new Replicator({ client, replica, prefix, log: pino({ level: 'silent' }) });
  let closed = false;
  return {
    store,
    replica,
    replicator,
    close: async () => {
      if (closed) return;
      closed = true;
      await replicator.close();
      await store.close();
    },
  };
}
