// Spec 004's registries (mainscripts, subscripts, kickstarts, prebootscripts, postbootscripts,
// sshkeys) in keel's API: POST /<registry> {"text": …} creates, GET /<registry> lists, and
// /<registry>/<id> (sequential id, uid or name) is read raw and public as spec 004's paths are
// fetched by iPXE, installers and curl, replaced (PUT), changed (PATCH) and deleted. The singular
// /<class>/<id> is keel's usual JSON view with a token. Kickstarts share their singular path with
// spec 000's kickstart files (routes/kickstarts.ts). docs/registries.md.
import { existsSync } from 'node:fs';
import { badRequest } from '../../http/errors.js';
import { registryText } from '../../boot/registry-scripts.js';
import { kickstartClass, REGISTRY_CLASSES, type RegistryClass } from '../../model/classes/registry.js';
import { isPlainObject } from '../../model/schema.js';
import { objectRoutes } from '../object-routes.js';
import type { ApiContext } from '../context.js';
import { actor, type Request, type Route } from '../route.js';

/** A kickstart registry name may not hide a kickstart file of the same name (docs/registries.md). */
function refuseKickstartFileName(req: Request, ctx: ApiContext): void {
  const name = isPlainObject(req.body) ? req.body.name : undefined;
  if (typeof name === 'string' && existsSync(ctx.model.kickstarts.path(name)))
    throw badRequest(`A kickstart file named ${name} exists in ${ctx.model.kickstarts.dir}: choose another name, or delete the file (DELETE /kickstart/${name})`);
}

function registryRoutes(cls: RegistryClass): Route[] {
  const many = `/${cls.plural}`;
  const one = `/${cls.plural}/:id`;
  const standard = objectRoutes(cls).filter((route) => !(route.method === 'POST' && route.path === many));
  // The singular routes, also under the plural path (literal, so pluralAliases leaves them alone).
  const changes = standard.filter((route) => route.path === `/${cls.name}/:id` && route.method !== 'GET').map((route) => ({ ...route, path: one }));
  // Spec 000 owns /kickstart/<NAME> (the raw file, registry or not), and GET /kickstarts lists files
  // and registry alike (routes/kickstarts.ts): the registry's kickstarts change under /kickstarts/<id>.
  const kept = cls === kickstartClass ? standard.filter((route) => route.path === `${many}/meta`) : standard;
  return [
    ...kept,
    ...changes,
    {
      method: 'POST', path: many, access: cls.writeAccess,
      summary: `Create a ${cls.label} ({"text": …}); returns it, with its uid and sequential id`,
      handler: async (req, ctx) => {
        if (cls === kickstartClass) refuseKickstartFileName(req, ctx);
        const objects = ctx.model.objects(cls);
        return objects.viewOf((await objects.create(actor(req), req.body)).uid);
      },
    },
    {
      method: 'GET', path: one, access: 'public',
      summary: `The ${cls.label}'s text, raw (no envelope), by sequential id, uid or name${cls.language === 'none' ? '' : '; <placeholders> filled for the asking node'}`,
      handler: (req, ctx) => registryText(ctx.model, cls, req.params.id!, req.remoteAddress),
    },
  ];
}

export const registryApiRoutes: Route[] = REGISTRY_CLASSES.flatMap(registryRoutes);
