// Image objects (spec 001, Image Objects): the file system a node boots into. The content is a
// large file in the chunk store (GET/PUT/DELETE /image/<UID>/content, /content/stat,
// /content/info); parent and distro are accepted by uid or name and stored as uids.
// Routes only: the class itself (fields, rules) is src/model/classes/image.ts.
import { notImplemented } from '../../http/errors.js';
import { imageClass } from '../../model/classes/image.js';
import { fileInfo } from '../../model/files.js';
import { fileRoutes } from '../file-routes.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

export const imageRoutes: Route[] = [
  ...objectRoutes(imageClass),
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
