// Authoritative DHCP leases: MAC → the address a node was ACKed and until when. Kept in their own
// internal database of the store's LMDB environment (not an object class: no change feed entry per
// renewal). Writes are lmdb-js asynchronous puts, which lmdb-js gathers into one transaction and one
// fsync per event-loop turn: a burst of ACKs shares commits, and each put resolves only once its
// commit is on disk, so the server sends an ACK only for a durable lease.
import type { Database } from 'lmdb';
import type { Store } from './store.js';

export interface Lease {
  mac: string;
  ip: string;
  nodeUid: string;
  /** Epoch seconds when the lease was granted or renewed. */
  granted: number;
  /** Epoch seconds when it runs out. */
  expires: number;
}

const LEASES_DB = '_dhcp_leases';

export class LeaseStore {
  private readonly db: Database<Lease, string>;

  constructor(store: Store) {
    // Opened here, outside any transaction (see docs/cluster.md on LMDB and aborted transactions).
    this.db = store.openDatabase<Lease, string>(LEASES_DB, { encoding: 'msgpack' });
  }

  get(mac: string): Lease | undefined {
    return this.db.get(mac);
  }

  /** Resolves once the lease is durable. */
  async put(lease: Lease): Promise<void> {
    await this.db.put(lease.mac, lease);
  }

  /** Resolves once the removal is durable; false when there was no lease. */
  async remove(mac: string): Promise<boolean> {
    return this.db.remove(mac);
  }

  list(): Lease[] {
    return Array.from(this.db.getRange().map(({ value }) => value));
  }

  count(): number {
    return this.db.getCount();
  }
}
