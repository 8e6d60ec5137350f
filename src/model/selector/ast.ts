// The node-selector syntax tree (docs/selector.md). Plain data: it can be logged, compared and
// rebuilt from its canonical text (formatSelector), which is what a dynamic group stores as `parsed`.

/** Where a reference looks: a node's attributes (a[..]), hardware report (h[..]) or status (s[..]). */
export type SelectorSource = 'attribute' | 'hardware' | 'status';

export interface SelectorReference {
  source: SelectorSource;
  /** Exact, case-sensitive key; never empty. */
  key: string;
}

/** The size units a number may carry, in their canonical spelling (input is case-insensitive). */
export type SizeUnit = '' | 'K' | 'M' | 'G' | 'T' | 'KB' | 'MB' | 'GB' | 'TB' | 'KiB' | 'MiB' | 'GiB' | 'TiB';

export type SelectorValue =
  | { kind: 'string'; value: string }
  /** amount as written (no exponent form), unit canonical, value = amount × the unit's multiplier. */
  | { kind: 'number'; amount: number; unit: SizeUnit; value: number }
  | { kind: 'boolean'; value: boolean }
  /** A JavaScript regular expression source, searched (not anchored); `/` always escaped as `\/`. */
  | SelectorPattern;

export interface SelectorPattern {
  kind: 'regex';
  pattern: string;
  flags: '' | 'i';
}

export type ComparisonOperator = '==' | '!=' | '<' | '<=' | '>' | '>=' | '=~' | '!~';
export const ORDERING_OPERATORS: ReadonlySet<ComparisonOperator> = new Set(['<', '<=', '>', '>=']);
export const PATTERN_OPERATORS: ReadonlySet<ComparisonOperator> = new Set(['=~', '!~']);

export type SelectorAst =
  | { kind: 'or'; operands: SelectorAst[] }
  | { kind: 'and'; operands: SelectorAst[] }
  | { kind: 'not'; operand: SelectorAst }
  | { kind: 'compare'; ref: SelectorReference; op: ComparisonOperator; value: SelectorValue }
  /** A bare reference: the key is present and its value is not false-like (docs/selector.md). */
  | { kind: 'truthy'; ref: SelectorReference };
