// Dynamic-group objects (spec 001, Dynamic Group Objects): a stored node selector; its members are
// the nodes the selector matches when asked (docs/selector.md).
import { Invalid } from '../errors.js';
import { dyngroupIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';
import { parseSelector } from '../selector.js';

export const dyngroupClass: ObjectClass = {
  name: 'dyngroup',
  plural: 'dyngroups',
  label: 'dynamic group',
  indexes: dyngroupIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the dynamic group' },
    selector: { type: 'string', required: true, summary: 'Node selector, e.g. h[ram_total] > 100GB (docs/selector.md)' },
    description: { type: 'string', summary: 'Free text' },
    parsed: { type: 'string', readOnly: true, summary: 'The selector as keel understood it (canonical form)', source: 'keel' },
  },
  derive(record) {
    const result = parseSelector(record.selector as string);
    if (!result.ok) throw new Invalid(`Field 'selector' at column ${result.column}: ${result.reason}`);
    record.parsed = result.parsed;
  },
};
