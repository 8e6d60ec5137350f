// Recursive-descent parser for the node-selector language (grammar in docs/selector.md). Errors
// carry the 1-based column (in code points) of the offending character and say what was expected;
// nothing in here throws out of parse(), whatever the input.

import {
  ORDERING_OPERATORS, PATTERN_OPERATORS,
  type ComparisonOperator, type SelectorAst, type SelectorPattern, type SelectorReference, type SelectorSource, type SelectorValue,
} from './ast.js';
import { findUnsafeConstruct, MAX_PATTERN_LENGTH } from './pattern-guard.js';
import { lookupUnit, UNIT_NAMES } from './units.js';

export const MAX_SELECTOR_LENGTH = 8192;
/** Parentheses and negations nested deeper than this are refused (the parser recurses on them). */
export const MAX_NESTING = 128;

export type ParseResult = { ok: true; ast: SelectorAst } | { ok: false; reason: string; column: number };

const SOURCES: ReadonlyMap<string, SelectorSource> = new Map([
  ['a', 'attribute'], ['attribute', 'attribute'], ['attributes', 'attribute'],
  ['h', 'hardware'], ['hardware', 'hardware'],
  ['s', 'status'], ['status', 'status'],
]);
const RESERVED_WORDS = new Set(['and', 'or', 'not', 'true', 'false']);
// Longest first, so "<=" is not read as "<" followed by "=".
const OPERATORS: readonly ComparisonOperator[] = ['==', '!=', '<=', '>=', '=~', '!~', '<', '>'];
const OPERATOR_LIST = OPERATORS.join(', ');
const ESCAPES: ReadonlyMap<string, string> = new Map([
  ['"', '"'], ["'", "'"], ['\\', '\\'], ['/', '/'], ['b', '\b'], ['f', '\f'], ['n', '\n'], ['r', '\r'], ['t', '\t'],
]);

const SPACE = /\s*/y;
const WORD = /[A-Za-z_][A-Za-z0-9_]*/y;
const BARE_KEY = /[\p{L}\p{N}_.:@/+-]+/uy;
const AMOUNT = /-?[0-9]+(?:\.[0-9]+)?/y;
const LETTERS = /[A-Za-z]*/y;
const HEX4 = /[0-9A-Fa-f]{4}/y;
/** What an error message quotes as "found": a word, or one code point. */
const TOKEN = /[A-Za-z0-9_]+|[^]/uy;

class SelectorSyntaxError extends Error {
  constructor(readonly index: number, message: string) {
    super(message);
  }
}

export function parse(text: string): ParseResult {
  if (typeof text !== 'string') return { ok: false, reason: 'a selector must be a string', column: 1 };
  try {
    if (text.length > MAX_SELECTOR_LENGTH) {
      throw new SelectorSyntaxError(MAX_SELECTOR_LENGTH, `a selector is at most ${MAX_SELECTOR_LENGTH} characters long`);
    }
    return { ok: true, ast: new Parser(text).selector() };
  } catch (error) {
    if (!(error instanceof SelectorSyntaxError)) throw error;
    return { ok: false, reason: error.message, column: columnOf(text, error.index) };
  }
}

/** 1-based column of a UTF-16 index, counted in code points. */
function columnOf(text: string, index: number): number {
  let column = 1;
  for (const _ of text.slice(0, index)) column += 1;
  return column;
}

function sticky(pattern: RegExp, text: string, at: number): string | undefined {
  pattern.lastIndex = at;
  return pattern.exec(text)?.[0];
}

class Parser {
  private pos = 0;
  private depth = 0;
  /** Whether the last term was a bare a[key]: then a comparison operator could also have followed. */
  private afterBareReference = false;

  constructor(private readonly text: string) {}

  selector(): SelectorAst {
    const ast = this.or();
    this.skipSpace();
    if (this.pos < this.text.length) {
      if (this.text[this.pos] === ')') this.fail(this.pos, 'unmatched ")"');
      this.fail(this.pos, `expected ${this.continuations()} or the end of the selector, found ${this.found()}`);
    }
    return ast;
  }

  private or(): SelectorAst {
    const operands = [this.and()];
    while (this.connective('or', '||')) operands.push(this.and());
    return operands.length === 1 ? operands[0]! : { kind: 'or', operands };
  }

  private and(): SelectorAst {
    const operands = [this.not()];
    while (this.connective('and', '&&')) operands.push(this.not());
    return operands.length === 1 ? operands[0]! : { kind: 'and', operands };
  }

  private not(): SelectorAst {
    this.skipSpace();
    const start = this.pos;
    if (this.text[start] === '!') this.pos += 1;
    else if (this.keywordAt('not')) this.pos += 3;
    else return this.primary();
    this.enter(start);
    const operand = this.not();
    this.depth -= 1;
    return { kind: 'not', operand };
  }

  private primary(): SelectorAst {
    const start = this.pos;
    if (this.text[start] !== '(') return this.condition();
    this.enter(start);
    this.pos += 1;
    const inner = this.or();
    this.skipSpace();
    if (this.text[this.pos] !== ')') {
      this.fail(this.pos, `expected ${this.continuations()} or ")" to close the "(" at column ${columnOf(this.text, start)}, found ${this.found()}`);
    }
    this.pos += 1;
    this.depth -= 1;
    this.afterBareReference = false;
    return inner;
  }

  private condition(): SelectorAst {
    const ref = this.reference();
    this.skipSpace();
    const op = OPERATORS.find((candidate) => this.text.startsWith(candidate, this.pos));
    if (op === undefined) {
      if (this.text[this.pos] === '=') this.fail(this.pos, '"=" is not an operator: use "==" to compare');
      this.afterBareReference = true;
      return { kind: 'truthy', ref };
    }
    this.afterBareReference = false;
    this.pos += op.length;
    return { kind: 'compare', ref, op, value: this.value(op) };
  }

  private reference(): SelectorReference {
    const start = this.pos;
    const word = sticky(WORD, this.text, start);
    if (word === undefined || RESERVED_WORDS.has(word.toLowerCase())) {
      this.fail(start, `expected a condition such as a[key], h[key] or s[key], "not" or "(", found ${this.found()}`);
    }
    const source = SOURCES.get(word.toLowerCase());
    if (source === undefined) {
      this.fail(start, `unknown prefix "${word}": expected a (attributes), h (hardware) or s (status) followed by [key]`);
    }
    this.pos += word.length;
    this.skipSpace();
    if (this.text[this.pos] !== '[') this.fail(this.pos, `expected "[" after "${word}", found ${this.found()}`);
    const open = this.pos;
    this.pos += 1;
    this.skipSpace();
    const key = this.key();
    this.skipSpace();
    if (this.text[this.pos] !== ']') {
      this.fail(this.pos, `expected "]" to close the "[" at column ${columnOf(this.text, open)}, found ${this.found()}`);
    }
    this.pos += 1;
    return { source, key };
  }

  private key(): string {
    const start = this.pos;
    const quote = this.text[start];
    let key: string;
    if (quote === '"' || quote === "'") {
      key = this.string();
    } else {
      const bare = sticky(BARE_KEY, this.text, start);
      if (bare === undefined) this.fail(start, `expected a key (a name, or a "quoted string") inside [ ], found ${this.found()}`);
      key = bare;
      this.pos += bare.length;
    }
    if (key === '') this.fail(start, 'a key must not be empty');
    return key;
  }

  private value(op: ComparisonOperator): SelectorValue {
    this.skipSpace();
    const start = this.pos;
    const char = this.text[start];
    let value: SelectorValue;
    if (char === '"' || char === "'") {
      value = { kind: 'string', value: this.string() };
    } else if (char === '/') {
      value = this.patternLiteral();
    } else if (char === '-' || (char !== undefined && char >= '0' && char <= '9')) {
      value = this.number();
    } else {
      const word = sticky(WORD, this.text, start)?.toLowerCase();
      if (word !== 'true' && word !== 'false') {
        this.fail(start, `expected a value after "${op}" (a "string", a number such as 100GB, true, false or a /pattern/), found ${this.found()}`);
      }
      this.pos += word.length;
      value = { kind: 'boolean', value: word === 'true' };
    }
    const written = JSON.stringify(this.text.slice(start, this.pos));
    if (PATTERN_OPERATORS.has(op)) {
      if (value.kind === 'string') return this.checkedPattern(escapeSlashes(value.value), '', start, false);
      if (value.kind !== 'regex') this.fail(start, `"${op}" needs a /pattern/ or a "quoted pattern", found ${written}`);
    } else if (value.kind === 'regex') {
      this.fail(start, `a /pattern/ needs "=~" or "!~", not "${op}"`);
    } else if (value.kind === 'boolean' && ORDERING_OPERATORS.has(op)) {
      this.fail(start, `"${op}" needs a number or a string, found ${written}`);
    }
    return value;
  }

  private number(): SelectorValue {
    const start = this.pos;
    const digits = sticky(AMOUNT, this.text, start);
    if (digits === undefined) this.fail(start + 1, `bad number: expected a digit after "-", found ${this.found(start + 1)}`);
    let end = start + digits.length;
    // A unit is either attached (100GB) or a separate word that names one (100 GB).
    let unitStart = end;
    let spelling = sticky(LETTERS, this.text, end)!;
    if (spelling === '') {
      SPACE.lastIndex = end;
      SPACE.exec(this.text);
      const word = sticky(WORD, this.text, SPACE.lastIndex);
      if (word !== undefined && lookupUnit(word) !== undefined) {
        unitStart = SPACE.lastIndex;
        spelling = word;
      }
    }
    const unit = lookupUnit(spelling);
    if (unit === undefined) this.fail(unitStart, `bad number: unknown unit "${spelling}", expected one of ${UNIT_NAMES}`);
    end = unitStart + spelling.length;
    if (/[\w.]/.test(this.text[end] ?? '')) {
      this.fail(end, `bad number: expected ${spelling === '' ? 'a digit, a unit' : 'a space, an operator'} or the end of the number, found ${this.found(end)}`);
    }
    // -0 is written and compared as 0.
    const amount = Number(digits) || 0;
    if (String(amount).includes('e')) this.fail(start, 'bad number: too many digits (write it with a unit instead)');
    this.pos = end;
    return { kind: 'number', amount, unit: unit.unit, value: amount * unit.multiplier };
  }

  /** A quoted string with JSON-style escapes (\' too); returns its value and moves past the closing quote. */
  private string(): string {
    const start = this.pos;
    const quote = this.text[start]!;
    let value = '';
    let run = start + 1;
    let i = run;
    for (;;) {
      const char = this.text[i];
      if (char === undefined) this.fail(start, `unterminated string: expected a closing ${quote}`);
      if (char === quote) {
        this.pos = i + 1;
        return value + this.text.slice(run, i);
      }
      if (char !== '\\') {
        i += 1;
        continue;
      }
      value += this.text.slice(run, i);
      const escape = this.text[i + 1];
      if (escape === undefined) this.fail(start, `unterminated string: expected a closing ${quote}`);
      if (escape === 'u') {
        const hex = sticky(HEX4, this.text, i + 2);
        if (hex === undefined) this.fail(i, 'bad escape: expected four hex digits after "\\u"');
        value += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else {
        const replacement = ESCAPES.get(escape);
        if (replacement === undefined) {
          this.fail(i, `bad escape "\\${escape}": expected one of \\" \\' \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX`);
        }
        value += replacement;
        i += 2;
      }
      run = i;
    }
  }

  /** /source/flags: the source is taken as written, up to the first "/" not preceded by "\". */
  private patternLiteral(): SelectorPattern {
    const start = this.pos;
    let i = start + 1;
    while (i < this.text.length && this.text[i] !== '/') i += this.text[i] === '\\' ? 2 : 1;
    if (i >= this.text.length) this.fail(start, 'unterminated pattern: expected a closing "/"');
    const source = this.text.slice(start + 1, i);
    const flagsStart = i + 1;
    const flags = sticky(LETTERS, this.text, flagsStart)!;
    if (flags !== '' && flags !== 'i') {
      const bad = flags[0] === 'i' ? 1 : 0;
      this.fail(flagsStart + bad, `unknown or repeated pattern flag "${flags[bad]}": only "i" (ignore case) is supported`);
    }
    this.pos = flagsStart + flags.length;
    return this.checkedPattern(source, flags as '' | 'i', start, true);
  }

  private checkedPattern(source: string, flags: '' | 'i', start: number, literal: boolean): SelectorPattern {
    // Offsets map into the text only for /literals/; a quoted pattern's escapes shift them.
    const at = (offset: number): number => (literal ? start + 1 + offset : start);
    if (source === '') this.fail(start, 'empty pattern: it would match every value');
    if (source.length > MAX_PATTERN_LENGTH) this.fail(start, `a pattern is at most ${MAX_PATTERN_LENGTH} characters long`);
    try {
      new RegExp(source, flags);
    } catch (error) {
      this.fail(start, `invalid pattern: ${(error as Error).message}`);
    }
    const problem = findUnsafeConstruct(source);
    if (problem !== undefined) this.fail(at(problem.offset), `unsafe pattern: ${problem.reason}`);
    return { kind: 'regex', pattern: source, flags };
  }

  /** What may follow the term just parsed, for messages. */
  private continuations(): string {
    return this.afterBareReference ? `a comparison operator (${OPERATOR_LIST}), "and", "or"` : '"and", "or"';
  }

  private connective(word: string, symbol: string): boolean {
    this.skipSpace();
    if (this.text.startsWith(symbol, this.pos)) this.pos += symbol.length;
    else if (this.keywordAt(word)) this.pos += word.length;
    else return false;
    return true;
  }

  private keywordAt(keyword: string): boolean {
    return sticky(WORD, this.text, this.pos)?.toLowerCase() === keyword;
  }

  private enter(at: number): void {
    this.depth += 1;
    if (this.depth > MAX_NESTING) this.fail(at, `parentheses and "not" nested more than ${MAX_NESTING} deep`);
  }

  private skipSpace(): void {
    SPACE.lastIndex = this.pos;
    SPACE.exec(this.text);
    this.pos = SPACE.lastIndex;
  }

  private found(at = this.pos): string {
    const token = sticky(TOKEN, this.text, at);
    return token === undefined ? 'the end of the selector' : JSON.stringify(token);
  }

  private fail(index: number, message: string): never {
    throw new SelectorSyntaxError(index, message);
  }
}

/** A quoted pattern's "/" written as "\/" (same meaning), so its canonical /literal/ reads back the same. */
function escapeSlashes(source: string): string {
  let out = '';
  for (let i = 0; i < source.length; i += 1) {
    const char = source[i]!;
    if (char === '\\') {
      out += source.slice(i, i + 2);
      i += 1;
    } else {
      out += char === '/' ? '\\/' : char;
    }
  }
  return out;
}
