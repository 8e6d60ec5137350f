// Dynamic groups (spec 001, Dynamic Group Objects): a named node selector
// (src/model/selector.ts); its members are computed when asked, never stored.
// Routes only: the class itself (fields, rules) is src/model/classes/dyngroup.ts.
import { badRequest } from '../../http/errors.js';
import { dyngroupClass } from '../../model/classes/dyngroup.js';
import { selectorSubjects } from '../../model/cluster.js';
import { selectNodes } from '../../model/selector.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

export const dyngroupRoutes: Route[] = [
  ...objectRoutes(dyngroupClass),
  {
    method: 'GET', path: '/dyngroup/:id/nodes', access: 'role.authuser', summary: 'Uids of the nodes the group\'s selector matches now',
    handler: (req, ctx) => {
      const group = ctx.model.objects(dyngroupClass).resolve(req.params.id!);
      const result = selectNodes(group.selector as string, selectorSubjects(ctx.store));
      // Stored selectors parsed when written; a parser change that refuses one now is reported, not hidden.
      if (!result.ok) throw badRequest(`Stored selector no longer parses at column ${result.column}: ${result.reason}`);
      return result.uids;
    },
  },
];
