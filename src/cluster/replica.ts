// A head's local copy of keel's shared state in etcd (docs/multihead.md, "Replica"): every key
// under the prefix with its value and the etcd revision that last changed it, in databases of the
// head's LMDB environment, and the etcd revision the copy is complete up to. Both change in one
// LMDB transaction, so after a crash the copy and its revision agree: the replicator resumes
// exactly after the last revision it applied, never skipping or re-applying half of one.
import type { Database } from 'lmdb';
import type { Store } from '../store/store.js';

export interface ReplicaValue {
  value: Buffer;
  /** etcd's mod_revision of the key. */
  revision: number;
}

/** One etcd event, as applied. */
export interface ReplicaChange {
  key: string;
  /** Absent for a delete. */
  value?: Buffer;
  revision: number;
}

const REVISION_KEY = 'revision';

export class Replica {
  private readonly entries: Database<ReplicaValue, string>;
  private readonly state: Database<number, string>;

  /** `name` tells replicas of different prefixes apart in one environment. */
  constructor(private readonly store: Store, name: string) {
    this.entries = store.openDatabase<ReplicaValue, string>(`_replica.${name}`, { encoding: 'msgpack' });
    this.state = store.openDatabase<number, string>(`_replica.${name}.state`, { encoding: 'msgpack' });
  }

  /** The etcd revision every change up to which is applied; 0 for a copy never synced. */
  get revision(): number {
    return this.state.get(REVISION_KEY) ?? 0;
  }

  get(key: string): ReplicaValue | undefined {
    return this.entries.get(key);
  }

  /** Entries whose key starts with `prefix`, in key order. */
  *range(prefix: string): Generator<[string, ReplicaValue]> {
    for (const { key, value } of this.entries.getRange({ start: prefix })) {
      if (!key.startsWith(prefix)) return;
      yield [key, value];
    }
  }

  count(): number {
    return this.entries.getCount();
  }

  /** Applies the changes of revisions up to `revision` (in order), durably, in one transaction. */
  async apply(changes: readonly ReplicaChange[], revision: number): Promise<void> {
    await this.store.write('replicator', () => {
      for (const change of changes) {
        if (change.value === undefined) this.entries.removeSync(change.key);
        else this.entries.putSync(change.key, { value: change.value, revision: change.revision });
      }
      this.state.putSync(REVISION_KEY, revision);
    });
  }

  /** Replaces the whole copy with `snapshot`, taken at `revision`, in one transaction. */
  async replace(snapshot: ReadonlyMap<string, ReplicaValue>, revision: number): Promise<void> {
    await this.store.write('replicator', () => {
      for (const key of Array.from(this.entries.getKeys())) if (!snapshot.has(key)) this.entries.removeSync(key);
      for (const [key, entry] of snapshot) this.entries.putSync(key, entry);
      this.state.putSync(REVISION_KEY, revision);
    });
  }
}
