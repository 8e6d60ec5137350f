// Routes of the large files attached to records (src/model/attached-files.ts): GET/PUT/DELETE
// `/<class>/:id/<slot>` and GET `…/<slot>/stat`. An upload streams the request body into the
// chunk store (staged), then links it in the same transaction as the change of its record.
import { BodyAborted } from '../http/body-stream.js';
import { badRequest, HttpError } from '../http/errors.js';
import { FileReply, storedContent } from '../http/file-reply.js';
import { fileStat } from '../model/files.js';
import type { ObjectClass } from '../model/object-store.js';
import { ChecksumMismatch, type PutOptions, type StagedFile } from '../store/chunks.js';
import type { ApiContext } from './context.js';
import { actor, type Request, type Route } from './route.js';

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

/**
 * The checks of an upload that need no body (multipart, checksum and mtime syntax): run them, and
 * any of the caller's own, before the body is read, so a refusal never waits for a huge file.
 */
export function checkUpload(req: Request): PutOptions {
  refuseMultipart(req);
  return uploadOptions(req);
}

/** Stream the request body into the chunk store, staged (durable, not yet linked to any file id). */
export async function stageUpload(ctx: ApiContext, req: Request, options: PutOptions): Promise<StagedFile> {
  try {
    return await ctx.model.chunks.stage(req.stream!, options);
  } catch (err) {
    if (err instanceof ChecksumMismatch) throw badRequest(`Upload rejected, nothing stored: ${err.message}`);
    if (err instanceof BodyAborted) throw badRequest(err.message);
    throw err;
  }
}

/** PUT: stream the body into the chunk store, then link it and touch the record in one transaction. */
async function upload(ctx: ApiContext, req: Request, cls: ObjectClass, slot: string): Promise<{ size: number; mtime: number; chksum: string }> {
  const id = req.params.id!;
  // Refuse what can be refused before reading a possibly huge body.
  const options = checkUpload(req);
  const objects = ctx.model.objects(cls);
  const record = objects.resolve(id);
  objects.refuseIfFrozen(record, {});
  const staged = await stageUpload(ctx, req, options);
  try {
    await ctx.model.files(cls).attach(actor(req), record.uid, slot, staged);
  } finally {
    staged.release();
  }
  const { manifest } = staged;
  return { ...fileStat(manifest), chksum: `sha1:${manifest.sha1}` };
}

/** GET/PUT/DELETE `/<class>/:id/<slot>` and GET `…/<slot>/stat`. */
export function fileRoutes(cls: ObjectClass, slot: string, what: string): Route[] {
  const path = `/${cls.name}/:id/${slot}`;
  return [
    {
      method: 'GET', path, access: cls.readAccess, summary: `Download the ${what} (raw bytes; Range, ETag, HEAD)`,
      handler: (req, ctx) => new FileReply(storedContent(ctx.model.files(cls).open(req.params.id!, slot))),
    },
    {
      method: 'PUT', path, access: cls.writeAccess, body: 'stream',
      summary: `Upload the ${what} as the raw request body; optional X-Checksum-Sha256/X-Checksum-Sha1 header or ?sha256=/?sha1=, ?mtime=`,
      handler: (req, ctx) => upload(ctx, req, cls, slot),
    },
    {
      method: 'DELETE', path, access: cls.writeAccess, summary: `Delete the ${what}`,
      handler: (req, ctx) => ctx.model.files(cls).detach(actor(req), req.params.id!, slot),
    },
    {
      method: 'GET', path: `${path}/stat`, access: cls.readAccess, summary: `Size and mtime of the ${what}`,
      handler: (req, ctx) => fileStat(ctx.model.files(cls).require(req.params.id!, slot).manifest),
    },
  ];
}
