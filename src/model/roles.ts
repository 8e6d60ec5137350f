// The role set. Roles nest: fulladmin can do what poweradmin can, poweradmin what authuser can.
// A route names the least role it needs; `role.fulladmin` is required for every write unless a
// route says otherwise.
export const ROLES = {
  /** Read everything; change nothing. */
  'role.authuser': 'read every object and status',
  /** authuser + power actions and consoles. */
  'role.poweradmin': 'read everything, control power and boot devices, use consoles',
  /** Everything. */
  'role.fulladmin': 'everything',
} as const;

export type Role = keyof typeof ROLES;

const RANK: Record<Role, number> = { 'role.authuser': 1, 'role.poweradmin': 2, 'role.fulladmin': 3 };

export function isRole(name: string): name is Role {
  return Object.hasOwn(RANK, name);
}

/** Whether an admin holding `held` may use a route that needs `needed`. */
export function allows(held: readonly string[], needed: Role): boolean {
  return held.some((role) => isRole(role) && RANK[role] >= RANK[needed]);
}
