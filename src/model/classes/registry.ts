// Spec 004's script registries (mainscripts, subscripts, kickstarts, prebootscripts,
// postbootscripts) and its registry of public SSH keys: objects holding one text, each with keel's
// usual uid, name and last_modified* plus the sequential integer `id` spec 004's paths use
// (`/mainscripts/1`). The id is allocated in the record's own write transaction from a counter
// kept in the store's settings, so it is unique, survives kill -9 with the record, and is never
// handed out again after a delete. docs/registries.md.
import ssh2 from 'ssh2';
import type { IndexSpec, Store } from '../../store/store.js';
import type { ObjectClass } from '../object-store.js';

/** Longest text a registry object holds (a kickstart or a script; the kickstart files' limit too). */
export const MAX_REGISTRY_TEXT_BYTES = 1024 * 1024;

/** Which language a registry's text is in: how a `<placeholder>` value is written into it. */
export type ScriptLanguage = 'ipxe' | 'shell' | 'kickstart' | 'none';

/** A registry class: an ObjectClass plus what its served text is. */
export interface RegistryClass extends ObjectClass {
  language: ScriptLanguage;
}

/** The settings key of a registry's id counter: the last id handed out. */
const idCounterKey = (className: string): string => `registry_last_id.${className}`;

/** A URL id that is a registry's sequential id, in its index key form (`007` → `7`). */
export function registryIdKey(id: string): string | undefined {
  return /^[0-9]{1,15}$/.test(id) ? String(Number(id)) : undefined;
}

export function registryIndexes(label: string): IndexSpec[] {
  return [
    { name: 'name', keys: (record) => record.name as string | undefined, conflict: (name) => `${label} with name=${name} already exists.` },
    { name: 'id', keys: (record) => (typeof record.id === 'number' ? String(record.id) : undefined), conflict: (id) => `${label} with id=${id} already exists.` },
  ];
}

/**
 * The next id of `className`, written back in the caller's write transaction (the settings
 * database is part of the same LMDB environment: the counter commits or aborts with the record).
 */
export function allocateId(store: Store, className: string): number {
  const next = (store.getSetting<number>(idCounterKey(className)) ?? 0) + 1;
  store.settings.putSync(idCounterKey(className), next);
  return next;
}

function textProblem(text: unknown): string | undefined {
  if (typeof text !== 'string') return `Field 'text' must be a string`;
  if (Buffer.byteLength(text) > MAX_REGISTRY_TEXT_BYTES) return `Field 'text' must have at most ${MAX_REGISTRY_TEXT_BYTES} bytes`;
  if (text.includes('\0')) return `Field 'text' must be text (it contains NUL characters)`;
  return undefined;
}

const NAME = /^[A-Za-z_][A-Za-z0-9._-]{0,127}$/;

function registryClass(name: string, plural: string, label: string, language: ScriptLanguage, textSummary: string, extra: { validate?: (record: Record<string, unknown>) => string | undefined; fields?: ObjectClass['fields'] } = {}): RegistryClass {
  return {
    name, plural, label, language,
    indexes: registryIndexes(label[0]!.toUpperCase() + label.slice(1)),
    readAccess: 'role.authuser',
    writeAccess: 'role.fulladmin',
    // A URL id: the uid, then the sequential id (spec 004's `/mainscripts/1`), then the name.
    idIndexes: [{ index: 'id', key: registryIdKey }, { index: 'name' }],
    fields: {
      // `text` is checked by `validate`: the generic string limit (4,096) is too small for a kickstart.
      text: { type: 'any', required: true, summary: textSummary },
      name: { type: 'string', summary: `Name (letters, digits, . _ -, not starting with a digit; default ${name}-<id>)` },
      description: { type: 'string', summary: 'Free text' },
      id: { type: 'integer', readOnly: true, summary: 'Sequential number (spec 004\'s paths: /<registry>/<id>); never reused', source: 'assigned by keel' },
      ...extra.fields,
    },
    derive(record, { previous, store }) {
      // PUT replaces the record: the id stays the record's own.
      record.id = previous ? previous.id : allocateId(store, name);
      record.name ??= `${name}-${String(record.id)}`;
    },
    validate(record) {
      if (!NAME.test(record.name as string)) return `Field 'name' must be letters, digits, . _ - (starting with a letter or _), at most 128`;
      return textProblem(record.text) ?? extra.validate?.(record);
    },
  };
}

export const mainscriptClass = registryClass('mainscript', 'mainscripts', 'mainscript', 'ipxe', 'The iPXE script (a node may boot at it: _boot_config mainscript:<name>)');
export const subscriptClass = registryClass('subscript', 'subscripts', 'subscript', 'ipxe', 'The iPXE script, chained from a mainscript');
export const kickstartClass = registryClass('kickstart', 'kickstarts', 'kickstart', 'kickstart', 'The kickstart file');
export const prebootscriptClass = registryClass('prebootscript', 'prebootscripts', 'prebootscript', 'shell', 'The script run before the OS installation (a kickstart\'s %pre)');
export const postbootscriptClass = registryClass('postbootscript', 'postbootscripts', 'postbootscript', 'shell', 'The script run after the OS installation (a kickstart\'s %post)');

/**
 * Why `text` is not one OpenSSH public key line, or undefined when it is. Anything that parses as a
 * private key is refused with a reason saying so: the registry is public (GET /sshkeys/<id>).
 */
export function publicKeyProblem(text: string): string | undefined {
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    if (/PRIVATE KEY/.test(text)) return `Field 'text' is a private key (or part of one), which must never leave its owner: send the public key (ssh-keygen -y -f <key>)`;
    return `Field 'text' is not an OpenSSH public key: ${parsed.message}`;
  }
  const keys = Array.isArray(parsed) ? parsed : [parsed];
  if (keys.length !== 1) return `Field 'text' must hold one public key, not ${keys.length}`;
  if (keys[0]!.isPrivateKey()) return `Field 'text' is a private key, which must never leave its owner: send the public key (ssh-keygen -y -f <key>)`;
  return undefined;
}

export const sshKeyClass = registryClass('sshkey', 'sshkeys', 'SSH key', 'none', 'The public key, one OpenSSH line (`<type> <base64> [comment]`)', {
  fields: { artifactId: { type: 'string', summary: 'Tag of the artifacts (nodes) the key gives access to (spec 004)' } },
  validate: (record) => publicKeyProblem(record.text as string),
});

/** The script registries, in spec 004's order. */
export const SCRIPT_REGISTRIES: readonly RegistryClass[] = [mainscriptClass, subscriptClass, kickstartClass, prebootscriptClass, postbootscriptClass];

/** Every registry class, the SSH keys included. */
export const REGISTRY_CLASSES: readonly RegistryClass[] = [...SCRIPT_REGISTRIES, sshKeyClass];
