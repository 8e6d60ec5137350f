// The boot path: public, read-only URLs under /boot for booting nodes and peer heads — the
// kernel, initramfs and image content they need, by boot config or image, plus content-addressed
// chunks and file manifests for caching and deduplication. Never the API objects themselves.
// Protocol: docs/content.md. A /boot request goes from src/http to here, the model and the store,
// and back: these routes are public (a booting node holds no token) and read-only.
import { badRequest, notFound } from '../http/errors.js';
import { bufferContent, FileReply, storedContent, type ReplyContent } from '../http/file-reply.js';
import { Router } from '../http/router.js';
import { bootConfigClass } from '../model/classes/bootconfig.js';
import { imageClass } from '../model/classes/image.js';
import { fileId, TFTP_FILE_PREFIX } from '../model/files.js';
import type { ObjectClass } from '../model/object-store.js';
import type { Manifest } from '../store/chunks.js';
import type { BootContext, BootRoute } from './context.js';
import { ipxeScriptRoute } from './ipxe-script.js';

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

/** GET <path> (the file) and GET <path>/manifest for a file located by `locate`. */
export function bootFileRoutes(path: string, what: string, locate: (ctx: BootContext, id: string) => string): BootRoute[] {
  return [
    {
      method: 'GET', path, access: 'public', summary: `The ${what} (Range, ETag, HEAD)`,
      handler: (req, ctx) => download(ctx, locate(ctx, req.params.id!)),
    },
    {
      method: 'GET', path: `${path}/manifest`, access: 'public', summary: `Manifest of the ${what}: size, hashes, chunk list`,
      handler: (req, ctx) => {
        const id = locate(ctx, req.params.id!);
        const manifest = ctx.model.chunks.stat(id);
        if (!manifest) throw notFound(`No such file: ${id}`);
        return manifestReply(manifest);
      },
    },
  ];
}

/** The content of the image a boot config names. */
function bootConfigImage(ctx: BootContext, id: string): string {
  const config = ctx.model.bootConfigs.resolve(id);
  if (typeof config.image !== 'string') throw notFound(`Boot config ${id} has no image`);
  return fileId(imageClass.name, config.image, 'content');
}

export const bootRoutes: BootRoute[] = [
  ...bootFileRoutes('/image/:id', 'image content', recordFile(imageClass, 'content')),
  ...bootFileRoutes('/bootconfig/:id/kernel', 'boot config\'s kernel', recordFile(bootConfigClass, 'kernel')),
  ...bootFileRoutes('/bootconfig/:id/initramfs', 'boot config\'s initramfs', recordFile(bootConfigClass, 'initramfs')),
  ...bootFileRoutes('/bootconfig/:id/image', 'content of the boot config\'s image', bootConfigImage),
  // Boot policy (docs/boot-policy.md): per-node iPXE scripts, and iPXE binaries for UEFI HTTP boot.
  ipxeScriptRoute,
  ...bootFileRoutes('/firmware/:id', 'iPXE binary (content-store file tftp/<name>)', (_ctx, name) => `${TFTP_FILE_PREFIX}${name}`),
  {
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
  },
];

export function buildBootRouter(routes: readonly BootRoute[] = bootRoutes): Router<BootRoute> {
  return new Router(routes);
}
