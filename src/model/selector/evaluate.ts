// Evaluation of a parsed selector against one node. Semantics (docs/selector.md):
//   - a missing key (absent, null or undefined) makes every comparison false except != and !~;
//   - x != v is exactly not (x == v), x !~ p exactly not (x =~ p);
//   - the literal's type decides the comparison: a number compares numerically (the stored value
//     read as a number with units, "128GB" → 128e9), a string compares as text (stored numbers and
//     booleans turned into their text), a boolean compares with the stored value read as a boolean;
//     a stored value that cannot be read that way is "not comparable": false, except for != (true);
//   - text comparison and keys are case-sensitive; a pattern ignores case only with the i flag.

import type { SelectorAst, SelectorPattern, SelectorReference, SelectorValue, ComparisonOperator } from './ast.js';
import { storedNumber } from './units.js';

export interface SelectorSubject {
  attributes: Record<string, string>;
  hardware: Record<string, unknown>;
  status: Record<string, unknown>;
}

const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);

/** Compiled once per pattern node; patterns in a tree from the parser are known to compile. */
const compiled = new WeakMap<SelectorPattern, RegExp>();

export function evaluate(ast: SelectorAst, node: SelectorSubject): boolean {
  switch (ast.kind) {
    case 'or':
      return ast.operands.some((operand) => evaluate(operand, node));
    case 'and':
      return ast.operands.every((operand) => evaluate(operand, node));
    case 'not':
      return !evaluate(ast.operand, node);
    case 'truthy':
      return isTruthy(lookup(node, ast.ref));
    case 'compare':
      return compare(lookup(node, ast.ref), ast.op, ast.value);
  }
}

function lookup(node: SelectorSubject, ref: SelectorReference): unknown {
  const record: Record<string, unknown> | undefined =
    ref.source === 'attribute' ? node.attributes : ref.source === 'hardware' ? node.hardware : node.status;
  // Own properties only: a[constructor] must not find Object.prototype.constructor. A node whose
  // report has not arrived yet may come without a hardware or status record.
  return record != null && Object.hasOwn(record, ref.key) ? record[ref.key] : undefined;
}

function compare(stored: unknown, op: ComparisonOperator, value: SelectorValue): boolean {
  if (op === '!=') return !compare(stored, '==', value);
  if (op === '!~') return !compare(stored, '=~', value);
  if (stored == null) return false;
  switch (value.kind) {
    case 'regex': {
      const text = storedText(stored);
      return text !== undefined && patternOf(value).test(text);
    }
    case 'boolean':
      return storedBoolean(stored) === value.value;
    case 'number': {
      const number = storedNumber(stored);
      return number !== undefined && ordered(number, op, value.value);
    }
    case 'string': {
      const text = storedText(stored);
      return text !== undefined && ordered(text, op, value.value);
    }
  }
}

function ordered<T extends number | string>(left: T, op: ComparisonOperator, right: T): boolean {
  switch (op) {
    case '==': return left === right;
    case '<': return left < right;
    case '<=': return left <= right;
    case '>': return left > right;
    case '>=': return left >= right;
    default: return false; // !=, =~ and !~ are handled by compare()
  }
}

function patternOf(value: SelectorPattern): RegExp {
  let pattern = compiled.get(value);
  if (pattern === undefined) {
    pattern = new RegExp(value.pattern, value.flags);
    compiled.set(value, pattern);
  }
  return pattern;
}

/** Strings as they are, numbers and booleans as JavaScript writes them; objects are not text. */
function storedText(stored: unknown): string | undefined {
  if (typeof stored === 'string') return stored;
  if (typeof stored === 'number' || typeof stored === 'boolean') return String(stored);
  return undefined;
}

/** true/false, 1/0, and the words true/yes/on/1 and false/no/off/0 (any case, trimmed). */
function storedBoolean(stored: unknown): boolean | undefined {
  if (typeof stored === 'boolean') return stored;
  if (typeof stored === 'number') return stored === 1 ? true : stored === 0 ? false : undefined;
  if (typeof stored !== 'string') return undefined;
  const word = stored.trim().toLowerCase();
  return TRUE_WORDS.has(word) ? true : FALSE_WORDS.has(word) ? false : undefined;
}

/** A bare reference holds when the key is present and its value is not false-like ("", false, 0, "no", ...). */
function isTruthy(stored: unknown): boolean {
  if (stored == null) return false;
  if (typeof stored === 'string' && stored.trim() === '') return false;
  if (typeof stored === 'number') return stored !== 0 && !Number.isNaN(stored);
  return storedBoolean(stored) !== false;
}
