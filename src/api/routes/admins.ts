// Admin objects (spec 001, Admin Objects): accounts that may use the API. Passwords are keel's own
// (scrypt), set with the write-only `password` field or `keel admin passwd`.
import { adminIndexes } from '../../store/classes.js';
import type { Collection } from '../../store/store.js';
import { badRequest } from '../errors.js';
import { objectRoutes, objectStore, type ObjectClass } from '../objects.js';
import { hashPassword } from '../passwords.js';
import { allows, isRole, ROLES } from '../rbac.js';
import type { Route } from '../route.js';
import { isPlainObject } from '../validation.js';

const USERNAME = /^[A-Za-z_][A-Za-z0-9_.@-]{0,63}$/;

const isFullAdmin = (admin: Record<string, unknown>) => allows((admin.roles as string[] | undefined) ?? [], 'role.fulladmin');

/** Roles a new admin gets when none are given (as in the spec's admin2 example). */
export const DEFAULT_ADMIN_ROLES: readonly string[] = ['role.authuser', 'role.fulladmin'];

export const adminClass: ObjectClass = {
  name: 'admin',
  plural: 'admins',
  label: 'admin',
  indexes: adminIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  fields: {
    name: { type: 'string', required: true, summary: 'Login name of the admin' },
    description: { type: 'string', summary: 'Free text, e.g. full name or department' },
    roles: { type: 'string[]', summary: `Roles: ${Object.keys(ROLES).join(', ')}; a PATCH replaces the whole list` },
    keys: { type: 'string[]', summary: 'SSH public keys' },
    gui_settings: { type: 'object', summary: 'Settings kept for the GUI' },
    password: { type: 'string', writeOnly: true, summary: 'Sets the login password (stored as an scrypt hash, never returned)' },
  },
  defaults: () => ({ roles: [...DEFAULT_ADMIN_ROLES] }),
  async prepare(fields) {
    const { password, ...rest } = fields;
    if (typeof password !== 'string') return rest;
    if (password.length < 8) throw badRequest(`Field 'password' must have at least 8 characters`);
    return { ...rest, password_hash: await hashPassword(password) };
  },
  validate(record) {
    if (!USERNAME.test(record.name as string)) return `Field 'name' must be a user name (letters, digits, _ . @ -; at most 64)`;
    const unknown = ((record.roles as string[] | undefined) ?? []).filter((role) => !isRole(role));
    if (unknown.length > 0) return `Unknown role(s): ${unknown.join(', ')}; known: ${Object.keys(ROLES).join(', ')}`;
    return undefined;
  },
  // Whoever held role.fulladmin may lose it only while another full admin remains.
  invariant: (collection: Collection, previous) =>
    isFullAdmin(previous) && !collection.list().some(isFullAdmin) ? 'This change would leave no admin with role.fulladmin' : undefined,
};

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
    handler: (req, ctx) => objectStore(adminClass, ctx).resolve(req.params.id!).gui_settings ?? {},
  },
  {
    method: 'PATCH', path: '/admin/:id/gui_settings', access: 'role.fulladmin', summary: 'Set the given GUI settings keys',
    handler: async (req, ctx) => {
      if (!isPlainObject(req.body)) throw badRequest('Request body must be a JSON object of settings');
      const patch = req.body;
      await objectStore(adminClass, ctx).modify(req.principal!.name, req.params.id!, (admin) => ({
        ...admin, gui_settings: { ...(admin.gui_settings as object | undefined), ...patch },
      }));
    },
  },
  {
    method: 'DELETE', path: '/admin/:id/gui_settings', access: 'role.fulladmin',
    summary: 'Remove the named GUI settings keys (a key or a list); without a body, all of them',
    handler: async (req, ctx) => {
      const keys = req.body === undefined ? undefined : stringList(req.body, 'a settings key');
      await objectStore(adminClass, ctx).modify(req.principal!.name, req.params.id!, (admin) => {
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
      await objectStore(adminClass, ctx).modify(req.principal!.name, req.params.id!, (admin) => {
        const keys = (admin.keys as string[] | undefined) ?? [];
        return { ...admin, keys: [...keys, ...added.filter((key) => !keys.includes(key))] };
      });
    },
  },
  {
    method: 'PUT', path: '/admin/:id/keys', access: 'role.fulladmin', summary: 'Replace the SSH keys with a key or a list',
    handler: async (req, ctx) => {
      const keys = stringList(req.body, 'an SSH key');
      await objectStore(adminClass, ctx).modify(req.principal!.name, req.params.id!, (admin) => ({ ...admin, keys }));
    },
  },
  {
    method: 'DELETE', path: '/admin/:id/keys', access: 'role.fulladmin',
    summary: 'Remove the given SSH key(s); without a body, all of them',
    handler: async (req, ctx) => {
      const removed = req.body === undefined ? undefined : stringList(req.body, 'an SSH key');
      await objectStore(adminClass, ctx).modify(req.principal!.name, req.params.id!, (admin) => ({
        ...admin, keys: removed ? ((admin.keys as string[] | undefined) ?? []).filter((key) => !removed.includes(key)) : [],
      }));
    },
  },
  {
    method: 'POST', path: '/admin/:id/newtoken', access: 'role.fulladmin',
    summary: 'Make an access token for this admin, e.g. for a tool; optional timeout in seconds',
    body: { timeout: { type: 'integer', summary: 'Lifetime of the token in seconds (default: the access token lifetime)' } },
    handler: async (req, ctx) => {
      const admin = objectStore(adminClass, ctx).resolve(req.params.id!);
      const timeout = (req.body as { timeout?: number } | undefined)?.timeout ?? ctx.config.auth.access_token_ttl;
      if (timeout < 1 || timeout > ctx.config.auth.refresh_token_ttl)
        throw badRequest(`Field 'timeout' must be between 1 and ${ctx.config.auth.refresh_token_ttl} seconds`);
      const name = admin.name as string;
      return { user: name, uid: admin.uid, token: { access_token: await ctx.tokens.issue(admin.uid, name, 'access', timeout), expires_in: timeout } };
    },
  },
];
