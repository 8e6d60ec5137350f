// Cluster-wide endpoints of the foundation (spec 001, Cluster-wide Endpoints).
import { VERSION } from '../../version.js';
import type { Route } from '../route.js';

export const clusterRoutes: Route[] = [
  {
    method: 'GET', path: '/cluster/time', access: 'public', summary: 'Current time on this head',
    handler: (_req, ctx) => {
      const now = ctx.clock();
      return { time: now / 1000, iso: new Date(now).toISOString(), head: ctx.config.server.name };
    },
  },
  {
    method: 'GET', path: '/cluster/database', access: 'public', summary: 'The database behind this head',
    handler: (_req, ctx) => {
      const stats = ctx.store.stats();
      return { engine: 'lmdb', head: ctx.config.server.name, version: VERSION, last_change: stats.last_seq, objects: stats.classes };
    },
  },
];
