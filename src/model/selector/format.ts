// Canonical text of a selector, stored as a dynamic group's `parsed` field. Its shape follows the
// spec's example, "h[ram_total] > 100GB" → `(hardware["ram_total"] > 100GB)`: long source names,
// JSON-quoted keys and strings, every comparison and every and/or chain in parentheses, numbers with
// their canonical unit. It parses back to the same tree (parseSelector(formatSelector(ast)).ast ≡ ast).

import type { SelectorAst, SelectorReference, SelectorValue } from './ast.js';

export function format(ast: SelectorAst): string {
  switch (ast.kind) {
    case 'or':
    case 'and':
      return `(${ast.operands.map(format).join(` ${ast.kind} `)})`;
    case 'not':
      // Not wrapped: "not" binds tighter than and/or, and its operand is atomic or parenthesized.
      return `not ${format(ast.operand)}`;
    case 'compare':
      return `(${formatReference(ast.ref)} ${ast.op} ${formatValue(ast.value)})`;
    case 'truthy':
      return formatReference(ast.ref);
  }
}

function formatReference(ref: SelectorReference): string {
  return `${ref.source}[${JSON.stringify(ref.key)}]`;
}

function formatValue(value: SelectorValue): string {
  switch (value.kind) {
    case 'string':
      return JSON.stringify(value.value);
    case 'number':
      return `${value.amount}${value.unit}`;
    case 'boolean':
      return String(value.value);
    case 'regex':
      return `/${value.pattern}/${value.flags}`;
  }
}
