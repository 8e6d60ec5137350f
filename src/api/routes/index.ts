// Every API route, in one table.
import { Router } from '../../http/router.js';
import type { Route } from '../route.js';
import { adminRoutes } from './admins.js';
import { bootConfigRoutes } from './bootconfigs.js';
import { attribRoutes } from './attribs.js';
import { clusterRoutes } from './cluster.js';
import { consoleRoutes } from './console.js';
import { dyngroupRoutes } from './dyngroups.js';
import { gitRepoRoutes } from './gitrepos.js';
import { distroRoutes } from './distros.js';
import { unusedFileRoutes } from './files.js';
import { hostnameRoutes } from './hostnames.js';
import { imageRoutes } from './images.js';
import { kickstartRoutes } from './kickstarts.js';
import { namingPoolRoutes } from './namingpools.js';
import { networkRoutes } from './networks.js';
import { nodeRoutes } from './nodes.js';
import { powerRoutes } from './power.js';
import { repoRoutes } from './repos.js';
import { sessionRoutes } from './session.js';

export const allRoutes: readonly Route[] = [...sessionRoutes, ...adminRoutes, ...clusterRoutes,
  ...nodeRoutes, ...attribRoutes, ...namingPoolRoutes, ...networkRoutes, ...hostnameRoutes, ...dyngroupRoutes,
  ...imageRoutes, ...bootConfigRoutes, ...kickstartRoutes, ...repoRoutes, ...distroRoutes, ...unusedFileRoutes,
  ...gitRepoRoutes, ...powerRoutes, ...consoleRoutes];

export function buildApiRouter(routes: readonly Route[] = allRoutes): Router<Route> {
  return new Router(routes);
}
