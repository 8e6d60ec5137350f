// Stored data no file references (spec 003, /head/files/unused): chunks left by replaced or
// deleted files, aborted and rejected uploads. Listed and collected by the chunk store's GC.
import type { Route } from '../route.js';

export const unusedFileRoutes: Route[] = [
  {
    // The spec lets another head call this without a token; keel has no head-to-head trust yet,
    // so it takes a full admin.
    method: 'GET', path: '/head/files/unused', access: 'role.fulladmin', summary: 'Stored chunks no file references, with sizes and total bytes',
    handler: (_req, ctx) => {
      const { chunks, bytes } = ctx.model.chunks.unused();
      return { count: chunks.length, bytes, chunks };
    },
  },
  {
    method: 'DELETE', path: '/head/files/unused', access: 'role.fulladmin', summary: 'Delete the unreferenced chunks; returns what was freed',
    handler: async (_req, ctx) => {
      const { chunks, bytes } = await ctx.model.chunks.collectGarbage();
      return { count: chunks.length, bytes, chunks };
    },
  },
];
