// Large files attached to object records (an image's content, a boot config's kernel and
// initramfs, a repo's ISO), kept in the chunk store under `<class>/<uid>/<slot>` (files.ts). A file
// is staged first (src/store/chunks.ts) and linked in the same transaction as a change of its
// record, so a frozen record refuses it atomically and last_modified moves.
import type { ChunkStore, FileReader, Manifest, StagedFile } from '../store/chunks.js';
import { NotFound } from './errors.js';
import { fileId } from './files.js';
import type { ObjectStore } from './object-store.js';

export class AttachedFiles {
  constructor(
    readonly objects: ObjectStore,
    private readonly chunks: ChunkStore,
  ) {}

  /** The slots of the class (`content`, `kernel`…). */
  get slots(): readonly string[] {
    return this.objects.cls.files ?? [];
  }

  id(uid: string, slot: string): string {
    return fileId(this.objects.cls.name, uid, slot);
  }

  manifest(uid: string, slot: string): Manifest | undefined {
    return this.chunks.stat(this.id(uid, slot));
  }

  /** The manifest of a record's file, or NotFound saying which is missing. */
  require(id: string, slot: string): { uid: string; manifest: Manifest } {
    const record = this.objects.resolve(id);
    const manifest = this.manifest(record.uid, slot);
    if (!manifest) throw this.missing(id, slot);
    return { uid: record.uid, manifest };
  }

  /** A reader of the file (its chunks pinned until it is closed). */
  open(id: string, slot: string): FileReader {
    const { uid } = this.require(id, slot);
    const reader = this.chunks.open(this.id(uid, slot));
    if (!reader) throw this.missing(id, slot);
    return reader;
  }

  /** Link a staged file as the record's `slot`, replacing what was there, and touch the record. */
  async attach(actor: string, id: string, slot: string, staged: StagedFile): Promise<void> {
    await this.objects.modify(actor, id, (current) => {
      this.chunks.linkInTx(this.id(current.uid, slot), staged);
      return current;
    });
  }

  /** Drop the file (its chunks lose a reference; GC reclaims them) and touch the record. */
  async detach(actor: string, id: string, slot: string): Promise<void> {
    this.require(id, slot);
    await this.objects.modify(actor, id, (current) => {
      this.chunks.unlinkInTx(this.id(current.uid, slot));
      return current;
    });
  }

  private missing(id: string, slot: string): NotFound {
    const label = this.objects.cls.label;
    return new NotFound(`${label.charAt(0).toUpperCase()}${label.slice(1)} ${id} has no ${slot}`);
  }
}
