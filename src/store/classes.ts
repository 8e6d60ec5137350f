// Index declarations of each object class, shared by the API and offline tools (CLI, tests) so
// that every writer keeps the same indexes.
import type { IndexSpec } from './store.js';

export const adminIndexes: readonly IndexSpec[] = [
  {
    name: 'name',
    keys: (record) => record.name as string | undefined,
    conflict: (name) => `Admin with name=${name} already exists.`,
  },
];
