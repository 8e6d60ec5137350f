// The hook every API request passes before its handler (src/http/dispatch.ts runs it): who the
// caller is and whether their role allows the route (auth.ts), then the body against the route's
// declared schema.
import type { Hooks } from '../http/dispatch.js';
import { validateBody } from '../model/schema.js';
import { authenticate } from './auth.js';
import type { ApiContext } from './context.js';
import { DOMAIN_ERROR_STATUSES } from './errors.js';
import type { Route } from './route.js';

export function apiHooks(log: ApiContext['log']): Hooks<ApiContext, Route> {
  return {
    async beforeHandler(route, req, ctx) {
      req.principal = await authenticate(route, req, ctx);
      // A DELETE may come without a body even where the route declares one.
      if (route.body && route.body !== 'stream' && (req.body !== undefined || route.method !== 'DELETE')) validateBody(route.body, req.body ?? {}, true);
    },
    errorStatuses: DOMAIN_ERROR_STATUSES,
    log,
  };
}
