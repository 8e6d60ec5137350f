// Software repository objects (spec 001, Software Repository Objects), with an optional locally
// hosted ISO kept in the chunk store: GET/PUT/DELETE /repo/<UID>/iso and /iso/stat.
// Routes only: the class itself (fields, rules) is src/model/classes/repo.ts.
import { repoClass } from '../../model/classes/repo.js';
import { fileRoutes } from '../file-routes.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

export const repoRoutes: Route[] = [...objectRoutes(repoClass), ...fileRoutes(repoClass, 'iso', 'ISO image')];
