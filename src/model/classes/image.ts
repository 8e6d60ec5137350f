// Image objects (spec 001, Image Objects): the file system a node boots into. The content is a
// large file in the chunk store (slot `content`); parent and distro are references.
import type { Store, StoredRecord } from '../../store/store.js';
import { imageIndexes } from '../indexes.js';
import type { ObjectClass, Reference } from '../object-store.js';

/**
 * Show a record's single-valued references by the name of the record they name, as spec 001's
 * examples do (a boot config's `"image": "DefaultImage"`, an image's `"distro": "CentOS"`); they
 * stay stored as uids, so a rename never breaks the link. One that names no record any more (it
 * cannot be deleted while referred to, so only a damaged store has one) is shown as stored.
 */
export function presentReferencesByName(references: readonly Reference[], record: StoredRecord, view: Record<string, unknown>, store: Store): void {
  for (const ref of references) {
    const uid = record[ref.field];
    if (ref.list || typeof uid !== 'string') continue;
    const target = store.collection(ref.className).get(uid);
    if (typeof target?.name === 'string') view[ref.field] = target.name;
  }
}

/**
 * `distro` and `parent` are shown by name, as the spec's example shows `"distro": "CentOS"` and a
 * boot config's `"image": "DefaultImage"`: the prose of all three says "stores this as a UID, but
 * will accept a UID or name" (docs/spec-decisions.md).
 */
const SHOWN_BY_NAME: readonly Reference[] = [{ field: 'parent', className: 'image' }, { field: 'distro', className: 'distro' }];

export const imageClass: ObjectClass = {
  name: 'image',
  plural: 'images',
  label: 'image',
  indexes: imageIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  frozenReason: 'Cannot modify frozen image.',
  references: SHOWN_BY_NAME,
  files: ['content'],
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the image' },
    description: { type: 'string', summary: 'Free text' },
    parent: { type: 'string', summary: 'Image this one was derived from (UID or name; stored as UID, shown by name; null when unset); informational only' },
    distro: { type: 'string', summary: 'Software distribution of the image (UID or name; stored as UID, shown by name)' },
    content: {
      type: 'object', readOnly: true,
      summary: 'The file system, under its detected format: {<fmt>: {size, mtime, chksum, filename, uid}}; {} before an upload (PUT /image/<UID>/content)',
    },
    exports: { type: 'object', readOnly: true, summary: 'Where the image is exported (iSCSI targets per head); keel exports none: always {}', source: 'keel' },
  },
  // An image's view shows its parent's name: a change to any image drops every image's cached view.
  viewReads: ['image', 'distro'],
  present(record, view, store) {
    presentReferencesByName(SHOWN_BY_NAME, record, view, store);
    view.parent ??= null;
    view.exports = {};
  },
};
