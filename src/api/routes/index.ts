// Every API route, in one table.
import { Router } from '../router.js';
import type { Route } from '../route.js';
import { adminRoutes } from './admins.js';
import { clusterRoutes } from './cluster.js';
import { sessionRoutes } from './session.js';

export const allRoutes: readonly Route[] = [...sessionRoutes, ...adminRoutes, ...clusterRoutes];

export function buildRouter(routes: readonly Route[] = allRoutes): Router {
  const router = new Router();
  for (const route of routes) router.add(route);
  return router;
}
