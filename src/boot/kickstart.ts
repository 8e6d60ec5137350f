// A node's values for templates: GET /bootconfig/<UID>/kickstart renders a kickstart file with
// them and the iPXE script fills the kernel command line with them — every `<variable>` that names
// one of the node's fields or merged attributes is replaced; any other `<…>` (heredocs,
// redirections, unknown names) stays as is (src/model/placeholders.ts). Each value is written in
// the language of what it goes into (`quote`): a value is data, never more script.
import { mergedAttributes } from '../model/cluster.js';
import { Invalid } from '../model/errors.js';
import { fillPlaceholders } from '../model/placeholders.js';
import { maskCredentialAttributes, maskNodeView } from '../model/power-uri.js';
import type { Store, StoredRecord } from '../store/store.js';

/**
 * What a template may use for a node: the scalar fields of its API view (uid, name, hostname, mac,
 * ip, domain, index, type…) and its merged attributes. A field wins over an attribute of the same
 * name. BMC credentials are masked (power_uri, and the attributes that fill its user or password):
 * rendered files go to the node, which may not manage power. `credentials`: Model.credentialNames().
 */
export function nodeVariables(store: Store, node: StoredRecord, fullView: Readonly<Record<string, unknown>>, credentials: ReadonlySet<string>): Record<string, string> {
  const vars = maskCredentialAttributes(mergedAttributes(store, node), credentials);
  const view = maskNodeView(fullView, credentials);
  for (const [key, value] of Object.entries(view)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') vars[key] = String(value);
  }
  if (typeof view.name === 'string') vars.hostname ??= view.name;
  return vars;
}

/** How a value is written into a template's language; throws Invalid when it cannot be. */
export type Quote = (value: string, name: string) => string;

/** `template` with each `<name>` that `vars` has replaced by its value, written by `quote`. */
export function fillNodeTemplate(template: string, vars: Readonly<Record<string, string>>, quote: Quote): string {
  return fillPlaceholders(template, (name) => (Object.hasOwn(vars, name) ? quote(vars[name]!, name) : undefined));
}

/** Whether `text` has a line break or another control character (a tab aside): no quoting carries them through a line-based format. */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** Text the shell and pykickstart's shlex read as one plain word. */
const SHELL_WORD = /^[A-Za-z0-9_.,:/@%+=-]*$/;

/**
 * A value for a kickstart. pykickstart splits command lines with shlex and %pre/%post sections are
 * shell: a plain word goes in as it is (host names, addresses, MACs, uids…), anything else in single
 * quotes, which both read as one literal word. A line break would end the command and start
 * another (more kickstart, or a line of a root script), so a value with control characters is refused.
 */
export const kickstartQuote: Quote = (value, name) => {
  if (hasControlCharacter(value)) throw new Invalid(`The value of <${name}> cannot go into a kickstart: it contains a line break or another control character`);
  return SHELL_WORD.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
};

/** `template` (a kickstart file) filled for a node, each value quoted for the shell (kickstartQuote). */
export function fillKickstart(template: string, vars: Readonly<Record<string, string>>): string {
  return fillNodeTemplate(template, vars, kickstartQuote);
}
