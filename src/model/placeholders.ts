// The one `<name>` placeholder engine: kernel command lines, kickstart templates and power URIs
// fill `<name>` from a node's values; a placeholder with no value (a heredoc `<<EOF`, a redirection,
// an unknown name) stays exactly as written.

const PLACEHOLDER = /<([^<>\s]+)>/g;

/** Replace each `<name>` for which `valueOf(name)` gives a value. */
export function fillPlaceholders(template: string, valueOf: (name: string) => string | undefined): string {
  return template.replace(PLACEHOLDER, (placeholder, name: string) => valueOf(name) ?? placeholder);
}

/** Whether `text` still has a `<name>` placeholder (one that had no value when it was filled). */
export function hasPlaceholders(text: string): boolean {
  return text.search(PLACEHOLDER) >= 0;
}

/** A `valueOf` reading `name` from each source in turn; scalar values only (objects have no text). */
export function fromSources(...sources: readonly Readonly<Record<string, unknown>>[]): (name: string) => string | undefined {
  return (name) => {
    for (const source of sources) {
      if (!Object.hasOwn(source, name)) continue;
      const value = source[name];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
    }
    return undefined;
  };
}
