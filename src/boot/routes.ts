// The boot path: public, read-only URLs under /boot for booting nodes and peer heads — the
// kernel, initramfs and image content they need, by boot config or image, plus content-addressed
// chunks and file manifests for caching and deduplication. Never the API objects themselves.
// Protocol: docs/content.md. A /boot request goes from src/http to here, the model and the store,
// and back: these routes are public (a booting node holds no token) and read-only.
import { badRequest, notFound } from '../http/errors.js';
import { bufferContent, FileReply, storedContent, type ReplyContent } from '../http/file-reply.js';
import { parseRange, planFileResponse } from '../http/ranges.js';
import type { Request } from '../http/route.js';
import { Router } from '../http/router.js';
import { bootConfigClass } from '../model/classes/bootconfig.js';
import { imageClass } from '../model/classes/image.js';
import { fileId, TFTP_FILE_PREFIX } from '../model/files.js';
import type { ObjectClass } from '../model/object-store.js';
import type { Manifest } from '../store/chunks.js';
import type { BootContext, BootPathEvents, BootRoute } from './context.js';
import { ipxeScriptRoute } from './ipxe-script.js';
import { registryBootRoutes } from './registry-scripts.js';
import type { BootRouteKind, ServedReply } from './timeline.js';

export const BOOT_PREFIX = '/boot';

/** Chunks never change: any cache may keep them for good. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const SHA256 = /^[0-9a-f]{64}$/;

/** The chunk store id of a record's file, for the record `id` (uid or name) names. */
export function recordFile(cls: ObjectClass, slot: string): (ctx: BootContext, id: string) => string {
  return (ctx, id) => {
    const uid = ctx.model.objects(cls).findUid(id);
    if (uid === undefined) throw notFound(`No ${cls.label} found for ID=${id}`);
    return fileId(cls.name, uid, slot);
  };
}

function download(ctx: BootContext, id: string): FileReply {
  const reader = ctx.model.chunks.open(id);
  if (!reader) throw notFound(`No such file: ${id}`);
  return new FileReply(storedContent(reader), { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-cache' });
}

/** The manifest as nodes read it: plain JSON (no envelope), ETag = the file's sha256. */
function manifestReply(manifest: Manifest): FileReply {
  const body = {
    size: manifest.size,
    mtime: manifest.mtime,
    sha1: manifest.sha1,
    sha256: manifest.sha256,
    chunk_size: manifest.chunkSize,
    chunks: manifest.chunks,
  };
  // The manifest's own ETag must differ from the file's: derive it from the content hash.
  return new FileReply(bufferContent(Buffer.from(JSON.stringify(body)), manifest.mtime), { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' });
}

/** GET <path> (the file, a route of `kind`) and GET <path>/manifest for a file located by `locate`. */
export function bootFileRoutes(path: string, what: string, kind: BootRouteKind, locate: (ctx: BootContext, id: string) => string): BootRoute[] {
  return [
    observed(kind, {
      method: 'GET', path, access: 'public', summary: `The ${what} (Range, ETag, HEAD)`,
      handler: (req, ctx) => download(ctx, locate(ctx, req.params.id!)),
    }),
    observed('manifest', {
      method: 'GET', path: `${path}/manifest`, access: 'public', summary: `Manifest of the ${what}: size, hashes, chunk list`,
      handler: (req, ctx) => {
        const id = locate(ctx, req.params.id!);
        const manifest = ctx.model.chunks.stat(id);
        if (!manifest) throw notFound(`No such file: ${id}`);
        return manifestReply(manifest);
      },
    }, kind),
  ];
}

/** The content of the image a boot config names. */
function bootConfigImage(ctx: BootContext, id: string): string {
  const config = ctx.model.bootConfigs.resolve(id);
  if (typeof config.image !== 'string') throw notFound(`Boot config ${id} has no image`);
  return fileId(imageClass.name, config.image, 'content');
}

export const bootRoutes: BootRoute[] = [
  ...bootFileRoutes('/image/:id', 'image content', 'image', recordFile(imageClass, 'content')),
  ...bootFileRoutes('/bootconfig/:id/kernel', 'boot config\'s kernel', 'kernel', recordFile(bootConfigClass, 'kernel')),
  ...bootFileRoutes('/bootconfig/:id/initramfs', 'boot config\'s initramfs', 'initramfs', recordFile(bootConfigClass, 'initramfs')),
  ...bootFileRoutes('/bootconfig/:id/image', 'content of the boot config\'s image', 'image', bootConfigImage),
  // Boot policy (docs/boot-policy.md): per-node iPXE scripts, and iPXE binaries for UEFI HTTP boot.
  observed('script', ipxeScriptRoute),
  // Spec 004's registries: mainscripts, subscripts, kickstarts, pre/postboot scripts, public keys (docs/registries.md).
  ...registryBootRoutes,
  ...bootFileRoutes('/firmware/:id', 'iPXE binary (content-store file tftp/<name>)', 'firmware', (_ctx, name) => `${TFTP_FILE_PREFIX}${name}`),
  observed('chunk', {
    method: 'GET', path: '/chunks/:sha256', access: 'public', summary: 'One chunk by its sha256 (immutable)',
    handler: (req, ctx) => {
      const hash = req.params.sha256!;
      if (!SHA256.test(hash)) throw badRequest(`Malformed chunk id '${hash}': expected 64 lower-case hex digits`);
      const chunks = ctx.model.chunks;
      // Only chunks some file references: garbage awaiting GC is not served.
      if (chunks.refcount(hash) === 0) throw notFound(`No such chunk: ${hash}`);
      const size = chunks.peekChunk(hash)?.length;
      if (size === undefined) throw notFound(`No such chunk: ${hash}`);
      // Pinned while it is sent, and sent straight from LMDB's memory map like file pieces.
      chunks.pin([hash]);
      const content: ReplyContent = {
        size, sha256: hash, mtime: 0, stable: false,
        piece(start, end) {
          const bytes = chunks.peekChunk(hash);
          if (!bytes) throw new Error(`pinned chunk ${hash} is missing`);
          return bytes.subarray(start, end);
        },
        close: () => chunks.unpin([hash]),
      };
      return new FileReply(content, { 'Content-Type': 'application/octet-stream', 'Cache-Control': IMMUTABLE });
    },
  }),
];

/**
 * `route`, reporting each of its replies to ctx.bootPath once done (docs/boot-timeline.md): a file
 * reply when its content is closed (sent, or the client went away), with the bytes handed to the
 * connection; a refusal at once. Boot routes answer synchronously, so the wrapper stays synchronous.
 */
function observed(kind: BootRouteKind, route: BootRoute, of?: BootRouteKind): BootRoute {
  return {
    ...route,
    handler: (req, ctx) => {
      const startedAt = ctx.bootPath.now();
      let reply: unknown;
      try {
        reply = route.handler(req, ctx);
      } catch (error) {
        ctx.bootPath.served({ kind, of, from: req.remoteAddress, startedAt, endedAt: startedAt, error, bytes: 0, size: 0 });
        throw error;
      }
      return reply instanceof FileReply ? counted(reply, req, ctx.bootPath, { kind, of, from: req.remoteAddress, startedAt }) : reply;
    },
  };
}

/**
 * The status the sender (src/http/send-file.ts, through planFileResponse) answers a file reply
 * with. A plain range request (iPXE, the chunk fetcher, the 64 KiB-range hot path) only needs its
 * Range parsed; the whole plan (≈ 2.5 µs: it formats the headers) only for conditional requests.
 */
export function fileReplyStatus(content: ReplyContent, headers: Readonly<Record<string, string>>): number {
  if (headers['if-none-match'] !== undefined || headers['if-range'] !== undefined) return planFileResponse(content, headers).status;
  const range = headers.range;
  if (range === undefined) return 200;
  const parsed = parseRange(range, content.size);
  return parsed === undefined ? 200 : parsed === 'unsatisfiable' ? 416 : 206;
}

/**
 * `reply` with its content wrapped to count what is read of it for sending: the sender reads
 * each piece from the offset the connection has reached, so the furthest offset read less the
 * first is what was handed to the connection (a piece read again after backpressure is not counted
 * twice; a client that goes away mid-piece is counted to the end of that piece).
 */
function counted(reply: FileReply, req: Request, events: BootPathEvents, served: Pick<ServedReply, 'kind' | 'of' | 'from' | 'startedAt'>): FileReply {
  const content = reply.content;
  const status = fileReplyStatus(content, req.headers);
  let first = -1;
  let reached = 0;
  const wrapped: ReplyContent = {
    size: content.size,
    sha256: content.sha256,
    mtime: content.mtime,
    stable: content.stable,
    piece(start, end) {
      const bytes = content.piece(start, end);
      if (first < 0) first = start;
      if (start + bytes.length > reached) reached = start + bytes.length;
      return bytes;
    },
    close() {
      content.close();
      events.served({ ...served, endedAt: events.now(), status, bytes: first < 0 ? 0 : reached - first, size: content.size });
    },
  };
  return new FileReply(wrapped, reply.headers);
}

export function buildBootRouter(routes: readonly BootRoute[] = bootRoutes): Router<BootRoute> {
  return new Router(routes);
}
