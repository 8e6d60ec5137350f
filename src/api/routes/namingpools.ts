// Naming-pool objects (spec 001, Naming Pool Objects): how nodes are named, numbered and
// addressed. Nodes without a pool are in the cluster's default pool (pattern from /cluster
// `naming`, default n{}).
// Routes only: the class itself (fields, rules) is src/model/classes/namingpool.ts.
import { renumberNodesIn, type PushReasons } from '../../model/allocation.js';
import { namingPoolClass } from '../../model/classes/namingpool.js';
import { effectivePool, nodes } from '../../model/cluster.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

export const namingPoolRoutes: Route[] = [
  ...objectRoutes(namingPoolClass),
  {
    method: 'GET', path: '/namingpools/info/:node', access: 'role.authuser', summary: 'The naming pool pattern and index that named NODE',
    handler: (req, ctx) => {
      const node = ctx.model.nodes.resolve(req.params.node!);
      return { index: node.index, pattern: effectivePool(ctx.store, node.naming_pool as string | undefined).patternText };
    },
  },
  {
    method: 'PUT', path: '/namingpool/:id/push', access: 'role.fulladmin',
    summary: 'Recompute the names and addresses of the pool\'s nodes from the pool as it is now (one transaction); returns every node whose name or address changed, or whose address no rule gives any more, with why',
    handler: async (req, ctx) => {
      const pool = ctx.model.objects(namingPoolClass).resolve(req.params.id!);
      const members = nodes(ctx.store).list().filter((node) => node.naming_pool === pool.uid).sort((a, b) => (a.index as number) - (b.index as number));
      const before = new Map(members.map((node) => [node.uid, node]));
      let reasons = new Map<string, PushReasons>();
      const after = await ctx.model.nodes.modifyMany(req.principal!.name, [...before.keys()], (node, tx) => {
        reasons = renumberNodesIn(tx);
        return node;
      });
      return after
        .map((node) => ({ node, was: before.get(node.uid)!, why: reasons.get(node.uid) ?? {} }))
        .filter(({ node, was, why }) => was.name !== node.name || was.ip !== node.ip || why.ip !== undefined)
        .map(({ node, was, why }) => ({ uid: node.uid, name: node.name, ip: node.ip ?? null, was: { name: was.name, ip: was.ip ?? null }, reason: why }));
    },
  },
];
