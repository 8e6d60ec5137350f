// Spec 000's boot-time endpoints besides GET /kickstart/<NAME> (routes/kickstarts.ts): the ZTP
// script and the Ignition config of a node, and the Ignition binary. Public and raw (no envelope):
// what boots or installs a node holds no token. The texts are made in src/boot/boot-time-texts.ts.
import { fstatSync, openSync, readSync, closeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { ignitionConfig, RemoteConfigError, ztpScript } from '../../boot/boot-time-texts.js';
import { HttpError, notFound } from '../../http/errors.js';
import { bufferContent, FileReply, type ReplyContent } from '../../http/file-reply.js';
import type { ApiContext } from '../context.js';
import type { Route } from '../route.js';

const textReply = ({ text, mtime }: { text: string; mtime: number }, contentType: string) =>
  // Filled per node: no shared cache may keep one node's text for another.
  new FileReply(bufferContent(Buffer.from(text, 'utf8'), mtime), { 'Content-Type': contentType, 'Cache-Control': 'no-store' });

/**
 * A file on disk as reply content: read piece by piece as it is sent, never whole. Its ETag comes
 * from the file's identity (device, inode, size, mtime): a file replaced by rename gets a new one.
 */
export function diskFileContent(path: string): ReplyContent {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`No file ${path}`);
    throw err;
  }
  const info = fstatSync(fd);
  if (!info.isFile()) {
    closeSync(fd);
    throw notFound(`${path} is not a file`);
  }
  const identity = createHash('sha256').update(`${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`).digest('hex');
  return {
    size: info.size,
    sha256: identity,
    mtime: info.mtimeMs / 1000,
    stable: true,
    piece(start, end) {
      const bytes = Buffer.allocUnsafe(Math.min(end - start, 1 << 20));
      const read = readSync(fd, bytes, 0, bytes.length, start);
      if (read === 0) throw new RangeError(`${path} is shorter than it was (${start} of ${info.size} bytes)`);
      return bytes.subarray(0, read);
    },
    close: () => closeSync(fd),
  };
}

const remoteLimits = (ctx: ApiContext) => ({ timeoutSeconds: ctx.config.install.ignition_fetch_timeout, maxBytes: ctx.config.install.ignition_max_bytes });

export const bootTimeRoutes: Route[] = [
  {
    method: 'GET', path: '/ztp/script', access: 'public',
    summary: 'The ZTP script of the node at the caller\'s address (its _boot_config is ztp:<NAME>), raw, <placeholders> filled',
    handler: async (req, ctx) => textReply(await ztpScript(ctx.model, req.remoteAddress, (source) => ctx.git.readSource(source)), 'text/plain; charset=utf-8'),
  },
  {
    method: 'GET', path: '/ignition/bin', access: 'public', summary: 'The Ignition binary (install.ignition_bin)',
    handler: (_req, ctx) => {
      const path = ctx.config.install.ignition_bin;
      if (path === null) throw notFound('No Ignition binary is installed on this head: set install.ignition_bin in keel.toml');
      let content: ReplyContent;
      try {
        content = diskFileContent(path);
      } catch (err) {
        if (err instanceof HttpError && err.status === 404) throw notFound(`The Ignition binary install.ignition_bin names is missing: ${err.message}`);
        throw err;
      }
      return new FileReply(content, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-cache' });
    },
  },
  {
    method: 'GET', path: '/ignition/:id', access: 'public',
    summary: 'The Ignition config of node <UID> (its _ignition: a kickstart file, a git: path or a URL), raw, <placeholders> filled',
    handler: async (req, ctx) => {
      try {
        return textReply(await ignitionConfig(ctx.model, req.params.id!, (source) => ctx.git.readSource(source), remoteLimits(ctx)), 'application/json');
      } catch (err) {
        if (err instanceof RemoteConfigError) throw new HttpError(err.timedOut ? 504 : 502, err.message);
        throw err;
      }
    },
  },
];
