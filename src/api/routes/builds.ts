// Spec 004's artifact builders in keel's API: POST /ipxes queues a build (src/build/), GET shows
// its job (`status`, `progress` 0–100), the artifact is served at a stable public URL by uid, its
// log is readable, DELETE cancels a queued or running build (its processes killed) and removes an
// ended one, and PUT …/tftpfile makes the artifact a TFTP/firmware file. docs/builders.md.
import { FileReply, storedContent, textReply } from '../../http/file-reply.js';
import { existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { artifactFileId, type BuildJob, ENDED } from '../../build/jobs.js';
import { Invalid, NotFound } from '../../model/errors.js';
import { fileSummary } from '../../model/files.js';
import { isPlainObject } from '../../model/schema.js';
import type { ApiContext } from '../context.js';
import { actor, type Request, type Route } from '../route.js';
import { tftpFileId } from './tftpfiles.js';

/** What a build job looks like through the API: the request's fields, the job's and the artifact's URL. */
function view(req: Request, ctx: ApiContext, plural: string, job: BuildJob): Record<string, unknown> {
  const host = req.headers.host ?? `${ctx.config.server.name}:${ctx.config.http.port}`;
  const { params, kind: _kind, process: _process, ...record } = job;
  return {
    ...params,
    ...record,
    url: job.file ? `http://${host}/api/v1/${plural}/${job.uid}/${job.file.name}` : undefined,
    log_url: `http://${host}/api/v1/${plural}/${job.id}/log`,
  };
}

function artifactRoutes(kind: string, plural: string): Route[] {
  const find = (req: Request, ctx: ApiContext) => ctx.builds.jobs.find(kind, req.params.id!);
  return [
    {
      method: 'POST', path: `/${plural}`, access: 'role.fulladmin',
      summary: `Queue a ${kind} build (spec 004); answers the job (status queued, progress 0)`,
      handler: async (req, ctx) => view(req, ctx, plural, await ctx.builds.submit(actor(req), kind, req.body)),
    },
    {
      method: 'GET', path: `/${plural}`, access: 'role.authuser',
      summary: `Every ${kind} build by id: the request, status, progress (0–100), start and end, the artifact's url`,
      handler: (req, ctx) => ctx.builds.jobs.list(kind).map((job) => view(req, ctx, plural, job)),
    },
    {
      method: 'GET', path: `/${plural}/:id`, access: 'role.authuser',
      summary: `One ${kind} build by sequential id or uid`,
      handler: (req, ctx) => view(req, ctx, plural, find(req, ctx)),
    },
    {
      method: 'GET', path: `/${plural}/:id/log`, access: 'role.authuser',
      summary: `The build's log (text): the commands run and their output, while it runs and after`,
      handler: (req, ctx) => {
        const path = ctx.builds.logPath(find(req, ctx));
        return textReply(existsSync(path) ? readFileSync(path, 'utf8') : '');
      },
    },
    {
      method: 'GET', path: `/${plural}/:id/:file`, access: 'public',
      summary: `The built artifact (raw bytes; Range, ETag), at a stable URL by the build's uid as spec 004 serves them`,
      handler: (req, ctx) => {
        const job = ctx.builds.jobs.get(req.params.id!);
        if (!job?.file || job.kind !== kind || job.file.name !== req.params.file) throw new NotFound(`No ${kind} artifact ${req.params.id}/${req.params.file}`);
        const reader = ctx.model.chunks.open(artifactFileId(job, job.file.name));
        if (!reader) throw new NotFound(`No ${kind} artifact ${req.params.id}/${req.params.file}`);
        return new FileReply(storedContent(reader), { 'Content-Type': 'application/octet-stream' });
      },
    },
    {
      method: 'DELETE', path: `/${plural}/:id`, access: 'role.fulladmin',
      summary: `A queued or running build: cancel it (its processes are killed; the job stays, cancelled, with its log); an ended one: remove it, its artifact and its log`,
      handler: async (req, ctx) => {
        const job = find(req, ctx);
        if (ENDED.includes(job.status)) {
          await ctx.builds.remove(actor(req), job);
          return undefined;
        }
        return view(req, ctx, plural, await ctx.builds.cancel(actor(req), job));
      },
    },
    {
      method: 'PUT', path: `/${plural}/:id/tftpfile`, access: 'role.fulladmin',
      summary: `Make the built artifact the TFTP/firmware file {"name": …} (e.g. undionly.kpxe, ipxe.efi: what keel hands PXE clients)`,
      handler: async (req, ctx) => {
        const job = find(req, ctx);
        const name = isPlainObject(req.body) ? req.body.name : undefined;
        if (typeof name !== 'string') throw new Invalid(`Field 'name' (the TFTP file name, e.g. undionly.kpxe) is required`);
        const id = tftpFileId(name);
        const reader = job.file && ctx.model.chunks.open(artifactFileId(job, job.file.name));
        if (!reader) throw new Invalid(`Build ${kind} ${job.id} has no artifact (status ${job.status})`);
        let bytes: Buffer;
        try {
          bytes = Buffer.from(reader.read(0, reader.manifest.size));
        } finally {
          reader.close();
        }
        // The same bytes: the chunks are shared, only a manifest is added.
        const manifest = await ctx.model.chunks.putFile(id, Readable.from([bytes]));
        return { name, ...fileSummary(ctx.model.chunks, manifest), from: view(req, ctx, plural, job).url };
      },
    },
  ];
}

export const buildRoutes: Route[] = artifactRoutes('ipxe', 'ipxes');
