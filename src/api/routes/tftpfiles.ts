// TFTP and firmware files: content-store files `tftp/<name>` (src/model/files.ts), served by TFTP as
// `<name>` and over HTTP as /boot/firmware/<name>. Debian's iPXE binaries are imported there at
// start (src/boot/ipxe-binaries.ts); these routes add the others — ARM64 iPXE, own builds, other
// boot loaders. Both servers open the file per request, so an upload or delete applies to the next
// transfer, without a restart.
import { badRequest } from '../../http/errors.js';
import { FileReply, storedContent } from '../../http/file-reply.js';
import { NotFound } from '../../model/errors.js';
import { fileStat, fileSummary, TFTP_FILE_PREFIX } from '../../model/files.js';
import type { Manifest } from '../../store/chunks.js';
import type { ApiContext } from '../context.js';
import { checkUpload, stageUpload } from '../file-routes.js';
import { actor, type Route } from '../route.js';

/** Longest TFTP file name: firmware asks for short names, and TFTP's own limit is a packet. */
export const MAX_TFTP_NAME_LENGTH = 128;
const NAME = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/;

/** The content-store id of TFTP file `name`, or a 400 saying what a name may be. */
export function tftpFileId(name: string): string {
  if (name.length > MAX_TFTP_NAME_LENGTH || !NAME.test(name))
    throw badRequest(`Bad TFTP file name '${name}': 1..${MAX_TFTP_NAME_LENGTH} letters, digits, '.', '_', '+' or '-', not starting with '.' (a file name, not a path)`);
  return TFTP_FILE_PREFIX + name;
}

function requireFile(ctx: ApiContext, name: string): { id: string; manifest: Manifest } {
  const id = tftpFileId(name);
  const manifest = ctx.model.chunks.stat(id);
  if (!manifest) throw new NotFound(`No TFTP file named ${name}`);
  return { id, manifest };
}

export const tftpFileRoutes: Route[] = [
  {
    method: 'GET', path: '/tftpfiles', access: 'role.authuser', summary: 'TFTP and firmware files (served by TFTP and /boot/firmware/<name>): name, size, mtime, chksum, fmt',
    handler: (_req, ctx) => {
      const chunks = ctx.model.chunks;
      return chunks.list(TFTP_FILE_PREFIX).flatMap((id) => {
        const manifest = chunks.stat(id);
        return manifest ? [{ name: id.slice(TFTP_FILE_PREFIX.length), ...fileSummary(chunks, manifest) }] : [];
      });
    },
  },
  {
    method: 'PUT', path: '/tftpfile/:name', access: 'role.fulladmin', body: 'stream',
    summary: 'Upload a TFTP/firmware file as the raw request body (replaces one of that name); optional X-Checksum-Sha256/X-Checksum-Sha1 header or ?sha256=/?sha1=, ?mtime=',
    handler: async (req, ctx) => {
      const name = req.params.name!;
      const id = tftpFileId(name);
      const staged = await stageUpload(ctx, req, checkUpload(req));
      try {
        await ctx.store.write(actor(req), () => ctx.model.chunks.linkInTx(id, staged));
      } finally {
        staged.release();
      }
      return { name, ...fileSummary(ctx.model.chunks, staged.manifest) };
    },
  },
  {
    method: 'GET', path: '/tftpfile/:name', access: 'role.authuser', summary: 'Download a TFTP/firmware file (raw bytes; Range, ETag, HEAD)',
    handler: (req, ctx) => {
      const { id } = requireFile(ctx, req.params.name!);
      const reader = ctx.model.chunks.open(id);
      if (!reader) throw new NotFound(`No TFTP file named ${req.params.name}`);
      return new FileReply(storedContent(reader), { 'Content-Type': 'application/octet-stream' });
    },
  },
  {
    method: 'GET', path: '/tftpfile/:name/stat', access: 'role.authuser', summary: 'Size and mtime of a TFTP/firmware file',
    handler: (req, ctx) => fileStat(requireFile(ctx, req.params.name!).manifest),
  },
  {
    method: 'DELETE', path: '/tftpfile/:name', access: 'role.fulladmin', summary: 'Delete a TFTP/firmware file (TFTP then serves [tftp] root\'s file of that name, if any)',
    handler: async (req, ctx) => {
      const { id } = requireFile(ctx, req.params.name!);
      await ctx.store.write(actor(req), () => ctx.model.chunks.unlinkInTx(id));
    },
  },
];
