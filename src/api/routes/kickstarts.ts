// Kickstart files (spec 000, GET /kickstart/<NAME>): public raw text for installers, plus an API
// to list, upload and delete them (admins may also copy files into <data-dir>/kickstarts/).
import { badRequest, HttpError } from '../../http/errors.js';
import { FileReply, bufferContent } from '../../http/file-reply.js';
import { kickstartClass } from '../../model/classes/registry.js';
import { MAX_KICKSTART_BYTES } from '../../model/kickstarts.js';
import type { Route } from '../route.js';

export const kickstartRoutes: Route[] = [
  {
    method: 'GET', path: '/kickstart/:name', access: 'public', summary: 'A kickstart file as it is (raw text, no envelope)',
    handler: async (req, ctx) => {
      const { text, mtime } = await ctx.model.kickstarts.read(req.params.name!);
      return new FileReply(bufferContent(Buffer.from(text, 'utf8'), mtime), { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache' });
    },
  },
  {
    method: 'PUT', path: '/kickstart/:name', access: 'role.fulladmin', body: 'stream',
    summary: `Upload a kickstart file (raw request body, at most ${MAX_KICKSTART_BYTES} bytes)`,
    handler: async (req, ctx) => {
      const parts: Buffer[] = [];
      let size = 0;
      for await (const piece of req.stream!) {
        size += piece.length;
        if (size > MAX_KICKSTART_BYTES) throw new HttpError(413, `Kickstart files are limited to ${MAX_KICKSTART_BYTES} bytes`);
        parts.push(piece);
      }
      const registered = ctx.model.objects(kickstartClass).collection.lookup('name', req.params.name!);
      if (registered !== undefined) throw badRequest(`Kickstart ${req.params.name} is in the kickstart registry: replace it with PUT /kickstarts/${req.params.name} {"text": …}`);
      const bytes = Buffer.concat(parts, size);
      if (bytes.includes(0)) throw badRequest('A kickstart file must be text (it contains NUL bytes)');
      await ctx.model.kickstarts.write(req.params.name!, bytes);
      return { name: req.params.name, size };
    },
  },
  {
    method: 'DELETE', path: '/kickstart/:name', access: 'role.fulladmin', summary: 'Delete a kickstart file',
    handler: async (req, ctx) => ctx.model.kickstarts.remove(req.params.name!),
  },
  {
    method: 'GET', path: '/kickstarts', access: 'role.authuser',
    summary: 'Every kickstart, registry (spec 004: with id, uid) and files: name, size, mtime, source',
    handler: async (_req, ctx) => {
      // One list of what GET /kickstart/<NAME> serves (docs/registries.md, "Kickstarts").
      const registry = ctx.model.objects(kickstartClass).collection.list()
        .sort((a, b) => (a.id as number) - (b.id as number))
        .map((r) => ({ name: r.name, size: Buffer.byteLength(r.text as string), mtime: r.last_modified, source: 'registry', id: r.id, uid: r.uid, ...(r.description === undefined ? {} : { description: r.description }) }));
      const files = (await ctx.model.kickstarts.list()).map((file) => ({ ...file, source: 'file' }));
      return [...registry, ...files];
    },
  },
];
