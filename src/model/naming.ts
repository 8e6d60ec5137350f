// Naming-pool patterns: a node's name is the pattern with its index formatted into the braces.
// Forms (Python str.format subset, as in the spec): `{}` or `{:d}` plain decimal, `{:0Nd}`
// zero-padded to N digits (N = 1..9), `{:x}` / `{:0Nx}` lower-case hexadecimal. Text around the
// braces: a letter first, then letters, digits and `-`, so every name is a valid host name label
// that looks like neither a number, a MAC nor a uid.

export interface NamePattern {
  prefix: string;
  suffix: string;
  width: number;
  radix: 10 | 16;
}

const PATTERN = /^([A-Za-z][A-Za-z0-9-]*)\{(?::(0[1-9])?([dx])?)?\}([A-Za-z0-9-]*)$/;

/** The parsed pattern, or a reason it is not one (for a 400 naming the field). */
export function parsePattern(text: string): NamePattern | string {
  const match = PATTERN.exec(text);
  if (!match) {
    return `must be letters, then {} (or {:d}, {:0Nd} with N 1-9, {:x}, {:0Nx}), then optional letters, digits or '-', e.g. n{} or gpu{:03d}`;
  }
  const [, prefix, pad, kind, suffix] = match;
  if (pad !== undefined && kind === undefined) return 'must give d or x after the width, e.g. {:03d}';
  return { prefix: prefix!, suffix: suffix!, width: pad ? Number(pad) : 0, radix: kind === 'x' ? 16 : 10 };
}

export function formatName(pattern: NamePattern, index: number): string {
  return pattern.prefix + index.toString(pattern.radix).padStart(pattern.width, '0') + pattern.suffix;
}

/** The built-in pattern of the default pool when the cluster's `naming` is not set. */
export const DEFAULT_NAMING = 'n{}';
