// Every API route, in one table.
import { Router } from '../../http/router.js';
import { OBJECT_CLASSES } from '../../model/model.js';
import type { Route } from '../route.js';
import { adminRoutes } from './admins.js';
import { bootConfigRoutes } from './bootconfigs.js';
import { buildRoutes } from './builds.js';
import { attribRoutes } from './attribs.js';
import { clusterRoutes } from './cluster.js';
import { bootTimeRoutes } from './boot-time.js';
import { clientPackageRoutes } from './clientpkgs.js';
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
import { registryApiRoutes } from './registries.js';
import { execRoutes } from './exec.js';
import { localnodeRoutes } from './localnodes.js';
import { sshKeyRoutes } from './ssh.js';
import { repoRoutes } from './repos.js';
import { sessionRoutes } from './session.js';
import { tftpFileRoutes } from './tftpfiles.js';

const routes: readonly Route[] = [...sessionRoutes, ...adminRoutes, ...clusterRoutes,
  ...nodeRoutes, ...attribRoutes, ...namingPoolRoutes, ...networkRoutes, ...hostnameRoutes, ...dyngroupRoutes,
  ...imageRoutes, ...bootConfigRoutes, ...kickstartRoutes, ...repoRoutes, ...distroRoutes, ...unusedFileRoutes,
  ...tftpFileRoutes, ...gitRepoRoutes, ...powerRoutes, ...consoleRoutes, ...registryApiRoutes, ...sshKeyRoutes, ...execRoutes, ...localnodeRoutes,
  ...bootTimeRoutes, ...clientPackageRoutes, ...buildRoutes];

/** Singular → plural path segment of every class (and of the `/host` alias of hostnames). */
const PLURALS = new Map<string, string>([...OBJECT_CLASSES.map((cls) => [cls.name, cls.plural] as const), ['host', 'hosts']]);

/**
 * Spec 001's prose writes some per-object paths with the plural (`PATCH /attribs/<UID>/attributes`)
 * where its lists and examples use the singular (`/attrib/<UID>/attributes`): every `/<one>/:id…`
 * route is also served as `/<many>/:id…`, same access, same handler (docs/spec-decisions.md). A
 * literal plural route (`/nodes/meta`, `/nodes/power_state`) still wins over an object of that name.
 */
export function pluralAliases(table: readonly Route[]): Route[] {
  // A route's shape, its parameters' names aside: `/kickstarts/:id` takes the place of an alias `/kickstarts/:name`.
  const shape = (method: string, path: string) => `${method} ${path.replace(/:[^/]+/g, ':')}`;
  const taken = new Set(table.map((route) => shape(route.method, route.path)));
  const aliases: Route[] = [];
  for (const route of table) {
    const [, one, id] = route.path.split('/');
    const many = PLURALS.get(one!);
    if (many === undefined || !id?.startsWith(':')) continue;
    const path = `/${many}${route.path.slice(one!.length + 1)}`;
    if (!taken.has(shape(route.method, path))) aliases.push({ ...route, path, summary: `${route.summary} (alias of ${route.path})` });
  }
  return aliases;
}

export const allRoutes: readonly Route[] = [...routes, ...pluralAliases(routes)];

export function buildApiRouter(routes: readonly Route[] = allRoutes): Router<Route> {
  return new Router(routes);
}
