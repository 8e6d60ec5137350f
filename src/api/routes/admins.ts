// Admin objects (spec 001, Admin Objects): accounts that may use the API. Passwords are keel's own
// (scrypt), set with the write-only `password` field or `keel admin passwd`.
// Routes only: the class itself (fields, rules) is src/model/classes/admin.ts.
import { badRequest } from '../../http/errors.js';
import { adminClass, tokenGeneration, withTokensRevoked } from '../../model/classes/admin.js';
import { isPlainObject } from '../../model/schema.js';
import { objectRoutes } from '../object-routes.js';
import type { Route } from '../route.js';

/** A string or a list of strings from a request body. */
function stringList(body: unknown, what: string): string[] {
  const list = typeof body === 'string' ? [body] : body;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string'))
    throw badRequest(`Request body must be ${what} or a list of them`);
  return list;
}

export const adminRoutes: Route[] = [
  ...objectRoutes(adminClass),
  {
    method: 'GET', path: '/admin/:id/gui_settings', access: 'role.authuser', summary: 'The admin\'s GUI settings',
    handler: (req, ctx) => ctx.model.objects(adminClass).resolve(req.params.id!).gui_settings ?? {},
  },
  {
    method: 'PATCH', path: '/admin/:id/gui_settings', access: 'role.fulladmin', summary: 'Set the given GUI settings keys',
    handler: async (req, ctx) => {
      if (!isPlainObject(req.body)) throw badRequest('Request body must be a JSON object of settings');
      const patch = req.body;
      await ctx.model.objects(adminClass).modify(req.principal!.name, req.params.id!, (admin) => ({
        ...admin, gui_settings: { ...(admin.gui_settings as object | undefined), ...patch },
      }));
    },
  },
  {
    method: 'DELETE', path: '/admin/:id/gui_settings', access: 'role.fulladmin',
    summary: 'Remove the named GUI settings keys (a key or a list); without a body, all of them',
    handler: async (req, ctx) => {
      const keys = req.body === undefined ? undefined : stringList(req.body, 'a settings key');
      await ctx.model.objects(adminClass).modify(req.principal!.name, req.params.id!, (admin) => {
        const settings = { ...(admin.gui_settings as Record<string, unknown> | undefined) };
        for (const key of keys ?? Object.keys(settings)) delete settings[key];
        return { ...admin, gui_settings: settings };
      });
    },
  },
  {
    method: 'POST', path: '/admin/:id/keys', access: 'role.fulladmin', summary: 'Add SSH key(s): a key or a list',
    handler: async (req, ctx) => {
      const added = stringList(req.body, 'an SSH key');
      await ctx.model.objects(adminClass).modify(req.principal!.name, req.params.id!, (admin) => {
        const keys = (admin.keys as string[] | undefined) ?? [];
        return { ...admin, keys: [...keys, ...added.filter((key) => !keys.includes(key))] };
      });
    },
  },
  {
    method: 'PUT', path: '/admin/:id/keys', access: 'role.fulladmin', summary: 'Replace the SSH keys with a key or a list',
    handler: async (req, ctx) => {
      const keys = stringList(req.body, 'an SSH key');
      await ctx.model.objects(adminClass).modify(req.principal!.name, req.params.id!, (admin) => ({ ...admin, keys }));
    },
  },
  {
    method: 'DELETE', path: '/admin/:id/keys', access: 'role.fulladmin',
    summary: 'Remove the given SSH key(s); without a body, all of them',
    handler: async (req, ctx) => {
      const removed = req.body === undefined ? undefined : stringList(req.body, 'an SSH key');
      await ctx.model.objects(adminClass).modify(req.principal!.name, req.params.id!, (admin) => ({
        ...admin, keys: removed ? ((admin.keys as string[] | undefined) ?? []).filter((key) => !removed.includes(key)) : [],
      }));
    },
  },
  {
    method: 'POST', path: '/admin/:id/newtoken', access: 'role.fulladmin',
    summary: 'Make an access token for this admin, e.g. for a tool; optional timeout in seconds',
    body: { timeout: { type: 'integer', summary: 'Lifetime of the token in seconds (default: the access token lifetime)' } },
    handler: async (req, ctx) => {
      const admin = ctx.model.objects(adminClass).resolve(req.params.id!);
      const timeout = (req.body as { timeout?: number } | undefined)?.timeout ?? ctx.config.auth.access_token_ttl;
      if (timeout < 1 || timeout > ctx.config.auth.refresh_token_ttl)
        throw badRequest(`Field 'timeout' must be between 1 and ${ctx.config.auth.refresh_token_ttl} seconds`);
      const name = admin.name as string;
      return { user: name, uid: admin.uid, token: { access_token: await ctx.tokens.issue(admin.uid, name, tokenGeneration(admin), 'access', timeout), expires_in: timeout } };
    },
  },
  {
    method: 'DELETE', path: '/admin/:id/tokens', access: 'role.fulladmin',
    summary: 'Revoke every token issued to this admin so far (access and refresh); it logs in again',
    handler: async (req, ctx) => {
      await ctx.model.objects(adminClass).modify(req.principal!.name, req.params.id!, withTokensRevoked);
    },
  },
];
