// Large files attached to object records (an image's content, a boot config's kernel and
// initramfs, a repo's ISO), kept in the chunk store under `<class>/<uid>/<slot>`. Uploads stream
// the request body into chunks and commit the file in the same transaction as the record change
// (so a frozen record refuses it atomically and last_modified moves); downloads are FileReplies.
import { ChecksumMismatch, ChunkStore, type Manifest, type PutOptions } from '../store/chunks.js';
import type { Store } from '../store/store.js';
import { FileReply, storedContent } from '../boot/file-reply.js';
import { detectFormat } from '../boot/formats.js';
import { BodyAborted } from './body-stream.js';
import type { ApiContext } from './context.js';
import { badRequest, HttpError, notFound } from './errors.js';
import { objectRoutes, objectStore, type ObjectClass, type ObjectStore } from './objects.js';
import type { Request, Route } from './route.js';
import { isPlainObject } from './validation.js';

const chunkStores = new WeakMap<Store, ChunkStore>();

/** The one ChunkStore over a Store. */
export function chunkStoreOf(ctx: { store: Store }): ChunkStore {
  let chunks = chunkStores.get(ctx.store);
  if (!chunks) chunkStores.set(ctx.store, (chunks = new ChunkStore(ctx.store)));
  return chunks;
}

export const fileId = (className: string, uid: string, slot: string): string => `${className}/${uid}/${slot}`;

const HEX = { sha256: /^[0-9a-fA-F]{64}$/, sha1: /^[0-9a-fA-F]{40}$/ } as const;

/**
 * The client's expectations for an upload: checksums from `X-Checksum-Sha256` / `X-Checksum-Sha1`
 * headers or `?sha256=` / `?sha1=`, and the file's mtime from `?mtime=` (epoch seconds).
 */
export function uploadOptions(req: Request): PutOptions {
  const options: PutOptions = {};
  for (const algorithm of ['sha256', 'sha1'] as const) {
    const value = req.headers[`x-checksum-${algorithm}`] ?? req.query.get(algorithm) ?? undefined;
    if (value === undefined) continue;
    if (!HEX[algorithm].test(value)) throw badRequest(`Malformed ${algorithm} checksum '${value}': expected ${algorithm === 'sha256' ? 64 : 40} hex digits`);
    options[algorithm === 'sha256' ? 'expectedSha256' : 'expectedSha1'] = value;
  }
  const mtime = req.query.get('mtime');
  if (mtime !== null) {
    const value = Number(mtime);
    if (mtime.trim() === '' || !Number.isFinite(value) || value < 0) throw badRequest(`Malformed mtime '${mtime}': expected epoch seconds`);
    options.mtime = value;
  }
  return options;
}

function refuseMultipart(req: Request): void {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  if (type.startsWith('multipart/'))
    throw new HttpError(415, `Unsupported Content-Type ${type}: send the file itself as the request body (e.g. curl -T FILE or --data-binary @FILE)`);
}

/** The file's facts as the API reports them. */
export function fileStat(manifest: Manifest): { size: number; mtime: number } {
  return { size: manifest.size, mtime: manifest.mtime };
}

/** `/content/info`: stat plus checksum, how many stored files have this exact content, and the format. */
export function fileInfo(ctx: { store: Store }, manifest: Manifest): { size: number; mtime: number; chksum: string; refcnt: number; fmt: string } {
  const chunks = chunkStoreOf(ctx);
  let refcnt = 0;
  for (const id of chunks.list()) if (chunks.stat(id)?.sha256 === manifest.sha256) refcnt++;
  return { ...fileStat(manifest), chksum: `sha1:${manifest.sha1}`, refcnt, fmt: formatOf(chunks, manifest) };
}

/** Detected formats by first chunk: detection reads a chunk, and a file's first chunk never changes. */
const formatCache = new Map<string, string>();

export function formatOf(chunks: ChunkStore, manifest: Manifest): string {
  const first = manifest.chunks[0];
  if (first === undefined) return detectFormat(Buffer.alloc(0));
  let fmt = formatCache.get(first);
  if (fmt === undefined) {
    const bytes = chunks.peekChunk(first);
    fmt = detectFormat(bytes ?? Buffer.alloc(0));
    if (formatCache.size > 4096) formatCache.clear();
    formatCache.set(first, fmt);
  }
  return fmt;
}

/** A record's files, by slot name (`content`, `kernel`, `initramfs`, `iso`). */
export class AttachedFiles {
  constructor(
    readonly objects: ObjectStore,
    readonly slots: readonly string[],
  ) {}

  id(uid: string, slot: string): string {
    return fileId(this.objects.cls.name, uid, slot);
  }

  manifest(ctx: { store: Store }, uid: string, slot: string): Manifest | undefined {
    return chunkStoreOf(ctx).stat(this.id(uid, slot));
  }

  /** The manifest of a record's file, or a 404 saying which is missing. */
  require(ctx: { store: Store }, id: string, slot: string): { uid: string; manifest: Manifest } {
    const record = this.objects.resolve(id);
    const manifest = this.manifest(ctx, record.uid, slot);
    if (!manifest) throw notFound(`${capitalise(this.objects.cls.label)} ${id} has no ${slot}`);
    return { uid: record.uid, manifest };
  }

  /** GET: the file's bytes. */
  download(ctx: { store: Store }, id: string, slot: string): FileReply {
    const { uid } = this.require(ctx, id, slot);
    const reader = chunkStoreOf(ctx).open(this.id(uid, slot));
    if (!reader) throw notFound(`${capitalise(this.objects.cls.label)} ${id} has no ${slot}`);
    return new FileReply(storedContent(reader));
  }

  /** PUT: stream the body into the chunk store, then link it and touch the record in one transaction. */
  async upload(ctx: ApiContext, req: Request, id: string, slot: string): Promise<{ size: number; mtime: number; chksum: string }> {
    // Refuse what can be refused before reading a possibly huge body.
    refuseMultipart(req);
    const options = uploadOptions(req);
    const record = this.objects.resolve(id);
    this.refuseIfFrozen(record);
    const chunks = chunkStoreOf(ctx);
    let staged;
    try {
      staged = await chunks.stage(req.stream!, options);
    } catch (err) {
      if (err instanceof ChecksumMismatch) throw badRequest(`Upload rejected, nothing stored: ${err.message}`);
      if (err instanceof BodyAborted) throw badRequest(err.message);
      throw err;
    }
    try {
      await this.objects.modify(req.principal!.name, record.uid, (current) => {
        chunks.linkInTx(this.id(current.uid, slot), staged);
        return current;
      });
    } finally {
      staged.release();
    }
    const { manifest } = staged;
    return { ...fileStat(manifest), chksum: `sha1:${manifest.sha1}` };
  }

  /** DELETE: drop the file (its chunks lose a reference; GC reclaims them). */
  async remove(ctx: ApiContext, req: Request, id: string, slot: string): Promise<void> {
    const chunks = chunkStoreOf(ctx);
    this.require(ctx, id, slot);
    await this.objects.modify(req.principal!.name, id, (current) => {
      chunks.unlinkInTx(this.id(current.uid, slot));
      return current;
    });
  }

  /** Delete the record and all its files in one transaction. */
  async removeRecord(ctx: ApiContext, req: Request, id: string): Promise<void> {
    const chunks = chunkStoreOf(ctx);
    await ctx.store.write(req.principal!.name, (tx) => {
      const record = this.objects.resolve(id);
      this.refuseIfFrozen(record);
      tx.remove(this.objects.collection, record.uid);
      for (const slot of this.slots) chunks.unlinkInTx(this.id(record.uid, slot));
    });
  }

  /** What GET of the record shows about its files: slot → { size, mtime, chksum, fmt }. */
  summary(ctx: { store: Store }, uid: string): Record<string, unknown> {
    const chunks = chunkStoreOf(ctx);
    const out: Record<string, unknown> = {};
    for (const slot of this.slots) {
      const manifest = this.manifest(ctx, uid, slot);
      if (manifest) out[slot] = { ...fileStat(manifest), chksum: `sha1:${manifest.sha1}`, fmt: formatOf(chunks, manifest) };
    }
    return out;
  }

  private refuseIfFrozen(record: Record<string, unknown>): void {
    if (this.objects.cls.frozenReason && record.frozen === true) throw badRequest(this.objects.cls.frozenReason);
  }
}

const capitalise = (text: string): string => text.charAt(0).toUpperCase() + text.slice(1);

/** A field holding a reference to another class's record: accepted as uid or name, stored as uid. */
export interface Reference {
  field: string;
  cls: ObjectClass;
  /** A list of references (e.g. a distro's repos). */
  list?: boolean;
}

function resolveReferences(ctx: ApiContext, body: unknown, refs: readonly Reference[]): unknown {
  if (!isPlainObject(body)) return body;
  const out = { ...body };
  const one = (ref: Reference, value: unknown): string => {
    const uid = typeof value === 'string' ? objectStore(ref.cls, ctx).findUid(value) : undefined;
    if (uid === undefined) throw badRequest(`Field '${ref.field}': no ${ref.cls.label} found for ID=${String(value)}`);
    return uid;
  };
  for (const ref of refs) {
    const value = out[ref.field];
    if (value === undefined || value === null) continue;
    if (ref.list) {
      if (!Array.isArray(value)) throw badRequest(`Field '${ref.field}' must be a list of ${ref.cls.label} UIDs or names`);
      out[ref.field] = value.map((item) => one(ref, item));
    } else out[ref.field] = one(ref, value);
  }
  return out;
}

/**
 * The standard routes of a class whose records carry files and references: references are
 * resolved to uids on write, GET shows the files' facts, DELETE removes the files with the record.
 */
export function recordRoutes(cls: ObjectClass, slots: readonly string[], refs: readonly Reference[] = []): Route[] {
  const files = (ctx: { store: Store }) => new AttachedFiles(objectStore(cls, ctx), slots);
  return objectRoutes(cls).map((route): Route => {
    const base = route.handler.bind(route);
    if (route.method === 'POST' || route.method === 'PATCH' || route.method === 'PUT')
      return { ...route, handler: (req, ctx) => base({ ...req, body: resolveReferences(ctx, req.body, refs) }, ctx) };
    if (route.method === 'DELETE') return { ...route, handler: (req, ctx) => files(ctx).removeRecord(ctx, req, req.params.id!) };
    if (route.method === 'GET' && route.path === `/${cls.name}/:id`)
      return {
        ...route,
        handler: (req, ctx) => {
          const view = base(req, ctx) as Record<string, unknown>;
          return { ...view, ...files(ctx).summary(ctx, view.uid as string) };
        },
      };
    if (route.method === 'GET' && route.path === `/${cls.plural}`)
      return {
        ...route,
        handler: (req, ctx) => {
          const views = base(req, ctx) as Record<string, Record<string, unknown>>;
          return Object.fromEntries(Object.entries(views).map(([uid, view]) => [uid, { ...view, ...files(ctx).summary(ctx, uid) }]));
        },
      };
    return route;
  });
}

/** GET/PUT/DELETE `/<class>/:id/<slot>` and GET `…/<slot>/stat` for each slot. */
export function fileRoutes(cls: ObjectClass, slot: string, what: string): Route[] {
  const files = (ctx: { store: Store }) => new AttachedFiles(objectStore(cls, ctx), [slot]);
  const path = `/${cls.name}/:id/${slot}`;
  return [
    {
      method: 'GET', path, access: cls.readAccess, summary: `Download the ${what} (raw bytes; Range, ETag, HEAD)`,
      handler: (req, ctx) => files(ctx).download(ctx, req.params.id!, slot),
    },
    {
      method: 'PUT', path, access: cls.writeAccess, body: 'stream',
      summary: `Upload the ${what} as the raw request body; optional X-Checksum-Sha256/X-Checksum-Sha1 header or ?sha256=/?sha1=, ?mtime=`,
      handler: (req, ctx) => files(ctx).upload(ctx, req, req.params.id!, slot),
    },
    {
      method: 'DELETE', path, access: cls.writeAccess, summary: `Delete the ${what}`,
      handler: (req, ctx) => files(ctx).remove(ctx, req, req.params.id!, slot),
    },
    {
      method: 'GET', path: `${path}/stat`, access: cls.readAccess, summary: `Size and mtime of the ${what}`,
      handler: (req, ctx) => fileStat(files(ctx).require(ctx, req.params.id!, slot).manifest),
    },
  ];
}
