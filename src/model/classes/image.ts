// Image objects (spec 001, Image Objects): the file system a node boots into. The content is a
// large file in the chunk store (slot `content`); parent and distro are references.
import { imageIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';

export const imageClass: ObjectClass = {
  name: 'image',
  plural: 'images',
  label: 'image',
  indexes: imageIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  frozenReason: 'Cannot modify frozen image.',
  references: [{ field: 'parent', className: 'image' }, { field: 'distro', className: 'distro' }],
  files: ['content'],
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the image' },
    description: { type: 'string', summary: 'Free text' },
    parent: { type: 'string', summary: 'Image this one was derived from (UID or name; stored as UID); informational only' },
    distro: { type: 'string', summary: 'Software distribution of the image (UID or name; stored as UID)' },
    content: { type: 'object', readOnly: true, summary: 'The file system: size, mtime, chksum, fmt (upload with PUT /image/<UID>/content)' },
  },
};
