// A node's values for templates: GET /bootconfig/<UID>/kickstart renders a kickstart file with
// them and the iPXE script fills the kernel command line with them — every `<variable>` that names
// one of the node's fields or merged attributes is replaced; any other `<…>` (heredocs,
// redirections, unknown names) stays as is (src/model/placeholders.ts).
import { mergedAttributes } from '../model/cluster.js';
import { fillPlaceholders } from '../model/placeholders.js';
import type { Store, StoredRecord } from '../store/store.js';

/**
 * What a template may use for a node: the scalar fields of its API view (uid, name, hostname, mac,
 * ip, domain, index, type…) and its merged attributes. A field wins over an attribute of the same
 * name.
 */
export function nodeVariables(store: Store, node: StoredRecord, view: Readonly<Record<string, unknown>>): Record<string, string> {
  const vars: Record<string, string> = { ...mergedAttributes(store, node) };
  for (const [key, value] of Object.entries(view)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') vars[key] = String(value);
  }
  if (typeof view.name === 'string') vars.hostname ??= view.name;
  return vars;
}

/** `template` with each `<name>` that `vars` has replaced by its value. */
export function fillNodeTemplate(template: string, vars: Readonly<Record<string, string>>): string {
  return fillPlaceholders(template, (name) => (Object.hasOwn(vars, name) ? vars[name] : undefined));
}
