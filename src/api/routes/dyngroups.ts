// Dynamic groups (spec 001, Dynamic Group Objects): a named node selector
// (src/cluster/selector.ts); its members are computed when asked, never stored.
import { openClusterCollections, selectorSubjects } from '../../cluster/model.js';
import { parseSelector, selectNodes } from '../../cluster/selector.js';
import { dyngroupIndexes } from '../../store/classes.js';
import { badRequest } from '../errors.js';
import { objectRoutes, objectStore, type ObjectClass } from '../objects.js';
import type { Route } from '../route.js';

export const dyngroupClass: ObjectClass = {
  name: 'dyngroup',
  plural: 'dyngroups',
  label: 'dynamic group',
  indexes: dyngroupIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  opens: openClusterCollections,
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the dynamic group' },
    selector: { type: 'string', required: true, summary: 'Node selector, e.g. h[ram_total] > 100GB (docs/selector.md)' },
    description: { type: 'string', summary: 'Free text' },
    parsed: { type: 'string', readOnly: true, summary: 'The selector as keel understood it (canonical form)', source: 'keel' },
  },
  derive(record) {
    const result = parseSelector(record.selector as string);
    if (!result.ok) throw badRequest(`Field 'selector' at column ${result.column}: ${result.reason}`);
    record.parsed = result.parsed;
  },
};

export const dyngroupRoutes: Route[] = [
  ...objectRoutes(dyngroupClass),
  {
    method: 'GET', path: '/dyngroup/:id/nodes', access: 'role.authuser', summary: 'Uids of the nodes the group\'s selector matches now',
    handler: (req, ctx) => {
      const group = objectStore(dyngroupClass, ctx).resolve(req.params.id!);
      const result = selectNodes(group.selector as string, selectorSubjects(ctx.store));
      // Stored selectors parsed when written; a parser change that refuses one now is reported, not hidden.
      if (!result.ok) throw badRequest(`Stored selector no longer parses at column ${result.column}: ${result.reason}`);
      return result.uids;
    },
  },
];
