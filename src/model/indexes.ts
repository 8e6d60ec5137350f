// Index declarations of each object class, shared by every writer of the store (the object
// classes, the cluster rules, offline tools) so that all of them keep the same indexes.
import type { IndexSpec } from '../store/store.js';

export const adminIndexes: readonly IndexSpec[] = [
  {
    name: 'name',
    keys: (record) => record.name as string | undefined,
    conflict: (name) => `Admin with name=${name} already exists.`,
  },
];

const byName = (label: string): IndexSpec => ({
  name: 'name',
  keys: (record) => record.name as string | undefined,
  conflict: (name) => `${label} with name=${name} already exists.`,
});

/**
 * Nodes: by name, MAC (stored normalised `aa:bb:cc:dd:ee:ff`), IP, and `<pool>#<index>` — the
 * slot of the node in its naming pool (`default` for the cluster's default pool), so two nodes
 * can never hold the same index of one pool.
 */
export const nodeIndexes: readonly IndexSpec[] = [
  byName('Node'),
  { name: 'mac', keys: (record) => record.mac as string | undefined, conflict: (mac) => `Node with MAC=${mac} already exists.` },
  { name: 'ip', keys: (record) => record.ip as string | undefined, conflict: (ip) => `Node with IP=${ip} already exists.` },
  {
    name: 'slot',
    keys: (record) => (typeof record.index === 'number' ? nodeSlot(record.naming_pool as string | undefined, record.index) : undefined),
    conflict: (slot) => `Node with index ${slot.slice(slot.indexOf('#') + 1)} already exists in naming pool ${slot.slice(0, slot.indexOf('#'))}.`,
  },
];

/** Key of a node's place in a naming pool (no pool: the cluster's default pool). */
export function nodeSlot(pool: string | undefined, index: number): string {
  return `${pool ?? 'default'}#${index}`;
}

export const attribIndexes: readonly IndexSpec[] = [byName('Attribute group')];
export const namingPoolIndexes: readonly IndexSpec[] = [byName('Naming pool')];
export const networkIndexes: readonly IndexSpec[] = [byName('Network')];
export const hostnameIndexes: readonly IndexSpec[] = [byName('Hostname')];
export const dyngroupIndexes: readonly IndexSpec[] = [byName('Dynamic group')];
export const imageIndexes: readonly IndexSpec[] = [byName('Image')];
export const bootConfigIndexes: readonly IndexSpec[] = [byName('Boot config')];
export const repoIndexes: readonly IndexSpec[] = [byName('Repo')];
export const distroIndexes: readonly IndexSpec[] = [byName('Distro')];
export const gitRepoIndexes: readonly IndexSpec[] = [byName('Gitrepo')];
