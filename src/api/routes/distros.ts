// Software distribution objects (spec 001, Software Distribution Objects): which repos hold the
// packages and the packaging scheme. Repos are accepted by uid or name and stored as uids.
// Routes only: the class itself (fields, rules) is src/model/classes/distro.ts.
import { distroClass } from '../../model/classes/distro.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

export const distroRoutes: Route[] = objectRoutes(distroClass);
