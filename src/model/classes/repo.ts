// Software repository objects (spec 001, Software Repository Objects), with an optional locally
// hosted ISO kept in the chunk store (slot `iso`).
import { repoIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';

export const repoClass: ObjectClass = {
  name: 'repo',
  plural: 'repos',
  label: 'repo',
  indexes: repoIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  files: ['iso'],
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the repo' },
    description: { type: 'string', summary: 'Free text' },
    full_name: { type: 'string', summary: 'A text string identifying the repo' },
    urls: { type: 'string[]', summary: 'URLs of the repo' },
    mirrors: { type: 'string[]', summary: 'Mirror URLs of the repo' },
    disable: { type: 'any', summary: 'True/false flags for the URLs (a list, or one flag for all)' },
    keys: { type: 'string[]', summary: 'Signing keys for the URLs' },
    check: { type: 'any', summary: 'Whether clients check signatures (kept as given)' },
    rhel_entitlement: { type: 'string', summary: 'Red Hat license entitlement key' },
    iso: { type: 'object', readOnly: true, summary: 'The locally hosted ISO: size, mtime, chksum, fmt (upload with PUT /repo/<UID>/iso)' },
  },
  validate(record) {
    const disable = record.disable;
    if (disable !== undefined && typeof disable !== 'boolean' && !(Array.isArray(disable) && disable.every((d) => typeof d === 'boolean')))
      return `Field 'disable' must be true/false or a list of them`;
    return undefined;
  },
};
