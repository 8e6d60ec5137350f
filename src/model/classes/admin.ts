// Admin objects (spec 001, Admin Objects): accounts that may use the API. Passwords are keel's own
// (scrypt), set with the write-only `password` field or `keel admin passwd`.
import type { Collection } from '../../store/store.js';
import { Invalid } from '../errors.js';
import { adminIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';
import { hashPassword } from '../passwords.js';
import { allows, isRole, ROLES } from '../roles.js';

const USERNAME = /^[A-Za-z_][A-Za-z0-9_.@-]{0,63}$/;

const isFullAdmin = (admin: Record<string, unknown>) => allows((admin.roles as string[] | undefined) ?? [], 'role.fulladmin');

/**
 * The generation of an admin's tokens (an internal field, never returned): every token carries the
 * generation it was issued under, and only tokens of the current one are accepted (src/api/auth.ts).
 */
export function tokenGeneration(admin: Record<string, unknown>): number {
  return (admin.token_generation as number | undefined) ?? 0;
}

/** `admin` with every token issued to it so far revoked. */
export function withTokensRevoked(admin: Record<string, unknown>): Record<string, unknown> {
  return { ...admin, token_generation: tokenGeneration(admin) + 1 };
}

/** A change after which earlier tokens must stop working: a new password, other roles, a key taken away. */
function revokesTokens(previous: Record<string, unknown>, record: Record<string, unknown>): boolean {
  if (record.password_hash !== previous.password_hash) return true;
  const roles = (admin: Record<string, unknown>) => [...((admin.roles as string[] | undefined) ?? [])].sort().join(',');
  if (roles(record) !== roles(previous)) return true;
  const keys = (record.keys as string[] | undefined) ?? [];
  return ((previous.keys as string[] | undefined) ?? []).some((key) => !keys.includes(key));
}

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
    if (password.length < 8) throw new Invalid(`Field 'password' must have at least 8 characters`);
    return { ...rest, password_hash: await hashPassword(password) };
  },
  derive(record, { previous }) {
    if (previous && revokesTokens(previous, record)) record.token_generation = tokenGeneration(previous) + 1;
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
