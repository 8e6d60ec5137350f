// Attribute-group objects (spec 001, Attribute-Group Objects): named sets of attributes nodes
// inherit in the order of their groups. A change to a group changes every member's merged
// attributes at once, because merged attributes are computed when read, never copied.
import { normaliseAttributes, referrers } from '../cluster.js';
import { attribIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';

export const attribClass: ObjectClass = {
  name: 'attrib',
  plural: 'attribs',
  label: 'attribute group',
  indexes: attribIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the group' },
    description: { type: 'string', summary: 'Free text' },
    attributes: { type: 'object', summary: 'Key-value pairs (one level; values stored as strings) the member nodes inherit' },
  },
  defaults: () => ({ attributes: {} }),
  derive(record) {
    record.attributes = normaliseAttributes(record.attributes ?? {}, 'attributes');
  },
  inUse: (record, store) => referrers(store, record.uid, `attribute group ${String(record.name)}`),
};
