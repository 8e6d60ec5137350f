// The node-selector language (docs/selector.md): `h[ram_total] > 100GB and a[_boot_config] == "DefaultBoot"`.
// A dynamic group stores the selector text and its canonical form (`parsed`); every API that takes
// a list of nodes also takes a selector and resolves it with selectNodes.

import type { SelectorAst } from './selector/ast.js';
import { evaluate, type SelectorSubject } from './selector/evaluate.js';
import { format } from './selector/format.js';
import { parse } from './selector/parser.js';

export type { SelectorAst, SelectorReference, SelectorValue, ComparisonOperator, SelectorSource, SizeUnit } from './selector/ast.js';
export type { SelectorSubject } from './selector/evaluate.js';
export { MAX_SELECTOR_LENGTH, MAX_NESTING } from './selector/parser.js';
export { MAX_PATTERN_LENGTH } from './selector/pattern-guard.js';

export type SelectorError = { ok: false; reason: string; column: number };

/** Parses a selector; never throws. `parsed` is the canonical text (formatSelector of the tree). */
export function parseSelector(text: string): { ok: true; ast: SelectorAst; parsed: string } | SelectorError {
  const result = parse(text);
  return result.ok ? { ok: true, ast: result.ast, parsed: format(result.ast) } : result;
}

export function matchesSelector(ast: SelectorAst, node: SelectorSubject): boolean {
  return evaluate(ast, node);
}

/** The uids of the nodes the selector matches, in the order given; parsed once for all nodes. */
export function selectNodes<T extends SelectorSubject & { uid: string }>(
  text: string,
  nodes: Iterable<T>,
): { ok: true; uids: string[] } | SelectorError {
  const result = parse(text);
  if (!result.ok) return result;
  const uids: string[] = [];
  for (const node of nodes) if (evaluate(result.ast, node)) uids.push(node.uid);
  return { ok: true, uids };
}

export function formatSelector(ast: SelectorAst): string {
  return format(ast);
}
