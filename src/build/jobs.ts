// Build jobs as records in the store (collection `build_job`): one per artifact, from its request
// to its end. A job's record is its artifact's record too (spec 004's `GET /ipxes/<id>` shows both
// the request and `progress`). Written only through `BuildJobs`, each change in one store write,
// so what a client was told survives kill -9. docs/builders.md.
import { NotFound } from '../model/errors.js';
import type { Collection, Store, StoredRecord } from '../store/store.js';

export type JobStatus = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

/** A job that has ended and will not run again. */
export const ENDED: readonly JobStatus[] = ['done', 'failed', 'cancelled'];

export interface BuildJob extends StoredRecord {
  /** The builder: `ipxe`. */
  kind: string;
  /** Sequential per kind, never reused (spec 004's `/ipxes/1`). */
  id: number;
  /** The request's fields as the builder checked them (`script`, `platform`, …). */
  params: Record<string, unknown>;
  status: JobStatus;
  /** 0–100, from the build's steps; 100 exactly when `status` is `done`. */
  progress: number;
  /** Epoch seconds. */
  created: number;
  started?: number;
  ended?: number;
  /** Why the job failed or was cancelled, or why it was queued again. */
  reason?: string;
  /** The artifact's file, once built. */
  file?: { name: string; size: number; sha256: string };
  /** The running build step's process group and its leader's start time (to end it after a crash). */
  process?: { pgid: number; start?: number };
}

const COLLECTION = 'build_job';
const counterKey = (kind: string): string => `build_last_id.${kind}`;

/** The content-store id of a job's artifact. */
export const artifactFileId = (job: Pick<BuildJob, 'kind' | 'uid'>, name: string): string => `build/${job.kind}/${job.uid}/${name}`;

export class BuildJobs {
  readonly collection: Collection;

  constructor(readonly store: Store) {
    this.collection = store.collection(COLLECTION, [
      { name: 'kind_id', keys: (record) => `${String(record.kind)}:${String(record.id)}`, conflict: (key) => `Build job ${key} already exists.` },
    ]);
  }

  /** A new queued job, its id taken from the kind's counter in the same transaction. */
  async create(actor: string, kind: string, params: Record<string, unknown>): Promise<BuildJob> {
    return this.store.write(actor, (tx) => {
      const id = (this.store.getSetting<number>(counterKey(kind)) ?? 0) + 1;
      this.store.settings.putSync(counterKey(kind), id);
      return tx.put(this.collection, { kind, id, params, status: 'queued', progress: 0, created: this.store.now() }) as BuildJob;
    });
  }

  get(uid: string): BuildJob | undefined {
    return this.collection.get(uid) as BuildJob | undefined;
  }

  /** A job of `kind` by its sequential id or its uid; NotFound otherwise. */
  find(kind: string, ref: string): BuildJob {
    const uid = /^[0-9]{1,15}$/.test(ref) ? this.collection.lookup('kind_id', `${kind}:${Number(ref)}`) : ref;
    const job = uid === undefined ? undefined : this.get(uid);
    if (!job || job.kind !== kind) throw new NotFound(`No ${kind} build with id ${ref}`);
    return job;
  }

  /** Every job of `kind`, by id. */
  list(kind?: string): BuildJob[] {
    const jobs = (this.collection.list() as BuildJob[]).filter((job) => kind === undefined || job.kind === kind);
    return jobs.sort((a, b) => a.id - b.id);
  }

  /** Change fields of a job that still exists; answers the new record, or undefined when it is gone. */
  async update(actor: string, uid: string, change: Partial<BuildJob>, also?: () => void): Promise<BuildJob | undefined> {
    return this.store.write(actor, (tx) => {
      const current = this.get(uid);
      if (!current) return undefined;
      also?.();
      const next: Record<string, unknown> = { ...current, ...change };
      // A field set to undefined is dropped, not stored as undefined.
      for (const [key, value] of Object.entries(next)) if (value === undefined) delete next[key];
      return tx.put(this.collection, next) as BuildJob;
    });
  }

  async remove(actor: string, uid: string, also?: () => void): Promise<void> {
    await this.store.write(actor, (tx) => {
      also?.();
      tx.remove(this.collection, uid);
    });
  }
}
