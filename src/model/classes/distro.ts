// Software distribution objects (spec 001, Software Distribution Objects): which repos hold the
// packages and the packaging scheme.
import { distroIndexes } from '../indexes.js';
import type { ObjectClass } from '../object-store.js';
import { clusterSettings } from '../settings.js';

export const PACKAGING = ['rpm', 'deb', 'apk'] as const;

export const distroClass: ObjectClass = {
  name: 'distro',
  plural: 'distros',
  label: 'distro',
  indexes: distroIndexes,
  readAccess: 'role.authuser',
  writeAccess: 'role.fulladmin',
  references: [{ field: 'repos', className: 'repo', list: true }],
  fields: {
    name: { type: 'string', required: true, summary: 'Name of the distribution' },
    description: { type: 'string', summary: 'Free text' },
    repos: { type: 'string[]', summary: 'Repos (UIDs or names; stored as UIDs)' },
    packaging: { type: 'string', enum: PACKAGING, summary: 'Packaging scheme; rpm when not given' },
    release: { type: 'string', summary: 'Name of the release' },
  },
  defaults: () => ({ packaging: 'rpm' }),
  inUse: (record, store) =>
    clusterSettings(store).default_distro === record.uid ? `Cannot delete distro ${String(record.name)}: still used by the cluster (default_distro)` : undefined,
};
