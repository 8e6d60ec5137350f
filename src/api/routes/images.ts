// Image objects (spec 001, Image Objects): the file system a node boots into. The content is a
// large file in the chunk store (GET/PUT/DELETE /image/<UID>/content, /content/stat,
// /content/info); parent and distro are accepted by uid or name and stored as uids.
// Routes only: the class itself (fields, rules) is src/model/classes/image.ts.
import { notImplemented } from '../../http/errors.js';
import { imageClass } from '../../model/classes/image.js';
import { fileId, fileInfo } from '../../model/files.js';
import { fileRoutes } from '../file-routes.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

/** What the record's view carries about its content (src/model/files.ts, fileSummary). */
interface ContentSummary {
  size: number;
  mtime: number;
  chksum: string;
  fmt: string;
}

/**
 * An image's view with `content` as spec 001's example has it: under the name of its format,
 * `{"<fmt>": {size, mtime, chksum, filename, uid}}` (`{}` before an upload). keel's format names
 * are the detected ones (docs/content.md: `squashfs` where ClusterWare says `cwsquash`);
 * `filename` is the content-store file id and `uid` the first 32 hex digits of the content's
 * SHA-256 (keel stores content by hash, so images with the same content show the same uid).
 */
function withContentByFormat(view: Readonly<Record<string, unknown>>, sha256: string | undefined): Record<string, unknown> {
  const summary = view.content as ContentSummary | undefined;
  if (summary === undefined || sha256 === undefined) return { ...view, content: {} };
  const { fmt, ...facts } = summary;
  return { ...view, content: { [fmt]: { ...facts, filename: fileId(imageClass.name, view.uid as string, 'content'), uid: sha256.slice(0, 32) } } };
}

/** GET /images and GET /image/<id> with the content shaped as the spec shows it. */
function withContentShape(route: Route): Route {
  if (route.method !== 'GET' || (route.path !== '/images' && route.path !== '/image/:id')) return route;
  return {
    ...route,
    handler: async (req, ctx) => {
      const files = ctx.model.files(imageClass);
      const shape = (view: Readonly<Record<string, unknown>>) => withContentByFormat(view, files.manifest(view.uid as string, 'content')?.sha256);
      const data = (await route.handler(req, ctx)) as Readonly<Record<string, unknown>>;
      if (route.path === '/image/:id') return shape(data);
      return Object.fromEntries(Object.entries(data).map(([uid, view]) => [uid, shape(view as Readonly<Record<string, unknown>>)]));
    },
  };
}

export const imageRoutes: Route[] = [
  ...objectRoutes(imageClass).map(withContentShape),
  ...fileRoutes(imageClass, 'content', 'image content'),
  {
    method: 'GET', path: '/image/:id/content/info', access: 'role.authuser',
    summary: 'Size, mtime, checksum (sha1:…), refcnt (stored files with this exact content) and detected format',
    handler: (req, ctx) => fileInfo(ctx.model.chunks, ctx.model.files(imageClass).require(req.params.id!, 'content').manifest),
  },
  {
    method: 'GET', path: '/image/:id/capture', access: 'role.fulladmin', summary: 'Capture an image from a running node (not implemented)',
    handler: (req, ctx) => {
      ctx.model.objects(imageClass).resolve(req.params.id!);
      throw notImplemented('Image capture from a running node is not implemented in keel yet; build the image elsewhere and upload it with PUT /image/<UID>/content');
    },
  },
];
