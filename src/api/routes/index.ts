// Every API route, in one table.
import { Router } from '../router.js';
import type { Route } from '../route.js';
import { adminRoutes } from './admins.js';
import { attribRoutes } from './attribs.js';
import { clusterRoutes } from './cluster.js';
import { dyngroupRoutes } from './dyngroups.js';
import { hostnameRoutes } from './hostnames.js';
import { namingPoolRoutes } from './namingpools.js';
import { networkRoutes } from './networks.js';
import { nodeRoutes } from './nodes.js';
import { powerRoutes } from './power.js';
import { sessionRoutes } from './session.js';

export const allRoutes: readonly Route[] = [...sessionRoutes, ...adminRoutes, ...clusterRoutes,
  ...nodeRoutes, ...attribRoutes, ...namingPoolRoutes, ...networkRoutes, ...hostnameRoutes, ...dyngroupRoutes,
  ...powerRoutes];

export function buildRouter(routes: readonly Route[] = allRoutes): Router {
  const router = new Router();
  for (const route of routes) router.add(route);
  return router;
}
