// Image objects (spec 001, Image Objects): the file system a node boots into. The content is a
// large file in the chunk store (GET/PUT/DELETE /image/<UID>/content, /content/stat,
// /content/info); parent and distro are accepted by uid or name and stored as uids.
import { imageIndexes } from '../../store/classes.js';
import { AttachedFiles, fileInfo, fileRoutes, recordRoutes } from '../content.js';
import { notImplemented } from '../errors.js';
import { objectStore, type ObjectClass } from '../objects.js';
import type { Route } from '../route.js';
import { distroClass } from './distros.js';

export const imageClass: ObjectClass = {
  name: 'image',
  plural: 'images',
  label: 'image',
  indexes: imageIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  frozenReason: 'Cannot modify frozen image.',
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the image' },
    description: { type: 'string', summary: 'Free text' },
    parent: { type: 'string', summary: 'Image this one was derived from (UID or name; stored as UID); informational only' },
    distro: { type: 'string', summary: 'Software distribution of the image (UID or name; stored as UID)' },
    content: { type: 'object', readOnly: true, summary: 'The file system: size, mtime, chksum, fmt (upload with PUT /image/<UID>/content)' },
  },
};

const content = (ctx: Parameters<typeof objectStore>[1]) => new AttachedFiles(objectStore(imageClass, ctx), ['content']);

export const imageRoutes: Route[] = [
  ...recordRoutes(imageClass, ['content'], [{ field: 'parent', cls: imageClass }, { field: 'distro', cls: distroClass }]),
  ...fileRoutes(imageClass, 'content', 'image content'),
  {
    method: 'GET', path: '/image/:id/content/info', access: 'role.authuser',
    summary: 'Size, mtime, checksum (sha1:…), refcnt (stored files with this exact content) and detected format',
    handler: (req, ctx) => fileInfo(ctx, content(ctx).require(ctx, req.params.id!, 'content').manifest),
  },
  {
    method: 'GET', path: '/image/:id/capture', access: 'role.fulladmin', summary: 'Capture an image from a running node (not implemented)',
    handler: (req, ctx) => {
      objectStore(imageClass, ctx).resolve(req.params.id!);
      throw notImplemented('Image capture from a running node is not implemented in keel yet; build the image elsewhere and upload it with PUT /image/<UID>/content');
    },
  },
];
