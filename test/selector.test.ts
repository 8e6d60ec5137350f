import test from 'ava';
import { seededRandom } from './helpers/prng.js';
import {
  formatSelector, matchesSelector, MAX_NESTING, MAX_PATTERN_LENGTH, MAX_SELECTOR_LENGTH, parseSelector, selectNodes,
  type ComparisonOperator, type SelectorAst, type SelectorReference, type SelectorSubject, type SelectorValue, type SizeUnit,
} from '../src/model/selector.js';

// --- helpers -------------------------------------------------------------------------------------

function ast(text: string): SelectorAst {
  const result = parseSelector(text);
  if (!result.ok) throw new Error(`expected ${JSON.stringify(text)} to parse: ${result.reason}`);
  return result.ast;
}

function node(parts: Partial<SelectorSubject> = {}): SelectorSubject {
  return { attributes: parts.attributes ?? {}, hardware: parts.hardware ?? {}, status: parts.status ?? {} };
}

function matches(text: string, subject: SelectorSubject): boolean {
  return matchesSelector(ast(text), subject);
}


// --- the spec's examples -------------------------------------------------------------------------

test('spec BigMemory example: parsed is exactly the spec text', (t) => {
  const result = parseSelector('h[ram_total] > 100GB');
  t.true(result.ok);
  if (!result.ok) return;
  t.is(result.parsed, '(hardware["ram_total"] > 100GB)');
  // As the API returns it inside JSON, the same escaped form as the spec page.
  t.is(JSON.stringify({ parsed: result.parsed }), '{"parsed":"(hardware[\\"ram_total\\"] > 100GB)"}');
});

test('spec BigMemory example selects the nodes with more than 100 GB of RAM, whatever the stored form', (t) => {
  const nodes = [
    { uid: 'big-number', ...node({ hardware: { ram_total: 137_438_953_472 } }) },
    { uid: 'big-string', ...node({ hardware: { ram_total: '128GiB' } }) },
    { uid: 'small-number', ...node({ hardware: { ram_total: 68_719_476_736 } }) },
    { uid: 'exactly-100GB', ...node({ hardware: { ram_total: '100000000000' } }) },
    { uid: 'no-report', ...node() },
  ];
  t.deepEqual(selectNodes('h[ram_total] > 100GB', nodes), { ok: true, uids: ['big-number', 'big-string'] });
});

test('spec _boot_config example and the plain byte count example', (t) => {
  const defaultBoot = node({ attributes: { _boot_config: 'DefaultBoot' }, hardware: { ram_total: 100_001 } });
  const otherBoot = node({ attributes: { _boot_config: 'GPUBoot' }, hardware: { ram_total: 99_999 } });
  t.true(matches('a[_boot_config]=="DefaultBoot"', defaultBoot));
  t.false(matches('a[_boot_config]=="DefaultBoot"', otherBoot));
  t.true(matches('h[ram_total] > 100000', defaultBoot));
  t.false(matches('h[ram_total] > 100000', otherBoot));
  t.is(formatSelector(ast('a[_boot_config]=="DefaultBoot"')), '(attribute["_boot_config"] == "DefaultBoot")');
});

// --- operators and literals ----------------------------------------------------------------------

test('every comparison operator against numbers', (t) => {
  const subject = node({ hardware: { cpus: 48 } });
  const cases: Array<[string, boolean]> = [
    ['h[cpus] == 48', true], ['h[cpus] == 47', false],
    ['h[cpus] != 48', false], ['h[cpus] != 47', true],
    ['h[cpus] < 49', true], ['h[cpus] < 48', false],
    ['h[cpus] <= 48', true], ['h[cpus] <= 47', false],
    ['h[cpus] > 47', true], ['h[cpus] > 48', false],
    ['h[cpus] >= 48', true], ['h[cpus] >= 49', false],
    ['h[cpus] > -1', true], ['h[cpus] < 48.5', true], ['h[cpus] == 48.0', true],
  ];
  for (const [text, expected] of cases) t.is(matches(text, subject), expected, text);
});

test('every comparison operator against strings: exact, case-sensitive, code-unit order', (t) => {
  const subject = node({ attributes: { rack: 'r07' } });
  const cases: Array<[string, boolean]> = [
    ['a[rack] == "r07"', true], ['a[rack] == "R07"', false], ['a[rack] == "r0"', false],
    ['a[rack] != "r07"', false], ['a[rack] != "R07"', true],
    ['a[rack] < "r08"', true], ['a[rack] < "r07"', false],
    ['a[rack] <= "r07"', true], ['a[rack] > "r06"', true], ['a[rack] > "r1"', false],
    ['a[rack] >= "r07"', true], ['a[rack] >= "s"', false],
    ["a[rack] == 'r07'", true],
  ];
  for (const [text, expected] of cases) t.is(matches(text, subject), expected, text);
});

test('regex operators: search (not anchored), i flag, quoted pattern, !~', (t) => {
  const subject = node({ attributes: { name: 'gpu-n017' }, status: { state: 'Up' } });
  const cases: Array<[string, boolean]> = [
    ['a[name] =~ /n0[0-9]+/', true],
    ['a[name] =~ /^n0/', false],
    ['a[name] =~ "^gpu-"', true],
    ["a[name] =~ 'N017$'", false],
    ['a[name] =~ /N017$/i', true],
    ['s[state] =~ /^up$/', false],
    ['s[state] =~ /^UP$/i', true],
    ['a[name] !~ /^gpu/', false],
    ['a[name] !~ /^cpu/', true],
    ['a[path] =~ /x/', false],
    ['a[path] !~ /x/', true],
  ];
  for (const [text, expected] of cases) t.is(matches(text, subject), expected, text);
});

test('a "/" in a quoted pattern and an escaped \\/ in a /literal/ mean the same thing', (t) => {
  const subject = node({ attributes: { image: 'repo/base' } });
  t.true(matches('a[image] =~ "o/b"', subject));
  t.true(matches('a[image] =~ /o\\/b/', subject));
  t.deepEqual(ast('a[image] =~ "o/b"'), ast('a[image] =~ /o\\/b/'));
  t.is(formatSelector(ast('a[image] =~ "o/b"')), '(attribute["image"] =~ /o\\/b/)');
});

test('string literals: both quotes and JSON escapes', (t) => {
  const subject = node({ attributes: { note: 'say "hi"\n\tit\'s \\ é /' } });
  t.true(matches('a[note] == "say \\"hi\\"\\n\\tit\'s \\\\ \\u00e9 \\/"', subject));
  t.true(matches("a[note] == 'say \"hi\"\\n\\tit\\'s \\\\ é /'", subject));
});

test('boolean literals compare with the stored value read as a boolean', (t) => {
  const cases: Array<[unknown, boolean | undefined]> = [
    [true, true], [false, false], [1, true], [0, false], ['yes', true], ['On', true], ['TRUE', true], ['1', true],
    ['no', false], ['off', false], ['False', false], ['0', false], ['maybe', undefined], [2, undefined], [{}, undefined],
  ];
  for (const [stored, reading] of cases) {
    const subject = node({ hardware: { flag: stored } });
    t.is(matches('h[flag] == true', subject), reading === true, `${JSON.stringify(stored)} == true`);
    t.is(matches('h[flag] == FALSE', subject), reading === false, `${JSON.stringify(stored)} == false`);
    t.is(matches('h[flag] != true', subject), reading !== true, `${JSON.stringify(stored)} != true`);
  }
});

test('bare reference: present and not false-like', (t) => {
  const cases: Array<[unknown, boolean]> = [
    ['nvidia', true], ['yes', true], ['true', true], ['1', true], [1, true], [2, true], [true, true], [{ model: 'x' }, true],
    ['', false], ['  ', false], ['no', false], ['false', false], ['0', false], ['off', false], [0, false], [false, false],
    [null, false], [Number.NaN, false],
  ];
  for (const [stored, expected] of cases) {
    t.is(matches('h[gpu]', node({ hardware: { gpu: stored } })), expected, JSON.stringify(stored));
    t.is(matches('not h[gpu]', node({ hardware: { gpu: stored } })), !expected, `not ${JSON.stringify(stored)}`);
  }
  t.false(matches('h[gpu]', node()));
});

test('a missing key: every comparison is false except != and !~', (t) => {
  const empty = node();
  for (const op of ['==', '<', '<=', '>', '>=']) {
    t.false(matches(`a[x] ${op} 5`, empty), `${op} number`);
    t.false(matches(`a[x] ${op} "5"`, empty), `${op} string`);
  }
  t.false(matches('a[x] == true', empty));
  t.false(matches('a[x] == false', empty));
  t.false(matches('a[x] =~ /./', empty));
  t.true(matches('a[x] != 5', empty));
  t.true(matches('a[x] != "5"', empty));
  t.true(matches('a[x] != false', empty));
  t.true(matches('a[x] !~ /./', empty));
  // null is missing too; inherited properties are not keys of the node.
  t.true(matches('h[x] != 1', node({ hardware: { x: null } })));
  t.false(matches('a[constructor]', empty));
  t.false(matches('a[toString] =~ /function/', empty));
  t.false(matches('a[__proto__] != 1 and a[hasOwnProperty]', empty));
});

test('a node without hardware or status records matches like one with empty records', (t) => {
  const bare = { attributes: {} } as unknown as SelectorSubject;
  t.false(matches('h[ram_total] > 1', bare));
  t.true(matches('s[state] != "up"', bare));
});

test('string vs number: the literal decides; stored text with units is read as a number', (t) => {
  const cases: Array<[unknown, string, boolean]> = [
    ['131072', 'h[v] == 131072', true],
    ['128GB', 'h[v] == 128000000000', true],
    ['128GB', 'h[v] == "128GB"', true],
    ['128GB', 'h[v] == "128G"', false],
    ['1.5 TiB', 'h[v] > 1.5TB', true],
    [' 42 ', 'h[v] == 42', true],
    [48, 'h[v] == "48"', true],
    [48, 'h[v] < "5"', true], // text comparison: "48" < "5"
    [48, 'h[v] < 5', false],
    ['abc', 'h[v] > 5', false],
    ['abc', 'h[v] < 5', false],
    ['abc', 'h[v] != 5', true],
    ['12 apples', 'h[v] == 12', false],
    ['1e3', 'h[v] == 1000', false],
    [true, 'h[v] == 1', false],
    [true, 'h[v] == "true"', true],
    [[1, 2], 'h[v] == 1', false],
    [[1, 2], 'h[v] != "1,2"', true],
  ];
  for (const [stored, text, expected] of cases) t.is(matches(text, node({ hardware: { v: stored } })), expected, `${JSON.stringify(stored)}: ${text}`);
});

test('units: K/M/G/T and KB..TB are decimal, KiB..TiB binary, any case, attached or after a space', (t) => {
  const equalities: Array<[string, number]> = [
    ['1K', 1e3], ['1M', 1e6], ['1G', 1e9], ['1T', 1e12],
    ['1KB', 1e3], ['1MB', 1e6], ['1GB', 1e9], ['1TB', 1e12],
    ['1KiB', 1024], ['1MiB', 1024 ** 2], ['1GiB', 1024 ** 3], ['1TiB', 1024 ** 4],
    ['1.5k', 1500], ['2gib', 2 * 1024 ** 3], ['100 GB', 1e11], ['-2K', -2000], ['0.5MiB', 524288],
  ];
  for (const [literal, bytes] of equalities) {
    t.true(matches(`h[v] == ${literal}`, node({ hardware: { v: bytes } })), `${literal} == ${bytes}`);
    t.true(matches(`h[v] == ${literal}`, node({ hardware: { v: literal } })), `stored "${literal}"`);
  }
  // The two families differ: 128 GiB of RAM is more than 128 GB, and less than 128 GiB + 1.
  const ram = node({ hardware: { ram_total: '128GiB' } });
  t.true(matches('h[ram_total] > 128GB', ram));
  t.false(matches('h[ram_total] > 128GiB', ram));
  t.true(matches('h[ram_total] == 131072MiB', ram));
  t.is(formatSelector(ast('h[v] > 1.50gib')), '(hardware["v"] > 1.5GiB)');
  t.is(formatSelector(ast('h[v] > 100 gb')), '(hardware["v"] > 100GB)');
});

// --- syntax: aliases, precedence, parentheses ----------------------------------------------------

test('aliases parse to the same tree: &&/and, ||/or, !/not, long prefixes, quoted keys, keyword case', (t) => {
  const canonical = ast('a[x] == 1 and not h[y] or s[z] =~ /q/');
  for (const text of [
    'a[x]==1 && !h[y] || s[z]=~/q/',
    'attribute[x] == 1 AND NOT hardware[y] OR status[z] =~ "q"',
    'attributes["x"] == 1 And Not hardware[\'y\'] Or STATUS [ z ] =~ /q/',
    '  A[ x ]  ==  1\n\tand not H[y]\nor S[z] =~ /q/  ',
    '(a[x] == 1) and (not (h[y])) or ((s[z] =~ /q/))',
  ]) t.deepEqual(ast(text), canonical, text);
});

test('precedence: not binds tighter than and, and tighter than or; chains are left to right', (t) => {
  const x: SelectorAst = { kind: 'truthy', ref: { source: 'attribute', key: 'x' } };
  const y: SelectorAst = { kind: 'truthy', ref: { source: 'attribute', key: 'y' } };
  const z: SelectorAst = { kind: 'truthy', ref: { source: 'attribute', key: 'z' } };
  t.deepEqual(ast('a[x] or a[y] and a[z]'), { kind: 'or', operands: [x, { kind: 'and', operands: [y, z] }] });
  t.deepEqual(ast('a[x] and a[y] or a[z]'), { kind: 'or', operands: [{ kind: 'and', operands: [x, y] }, z] });
  t.deepEqual(ast('not a[x] and a[y]'), { kind: 'and', operands: [{ kind: 'not', operand: x }, y] });
  t.deepEqual(ast('not (a[x] and a[y])'), { kind: 'not', operand: { kind: 'and', operands: [x, y] } });
  t.deepEqual(ast('(a[x] or a[y]) and a[z]'), { kind: 'and', operands: [{ kind: 'or', operands: [x, y] }, z] });
  t.deepEqual(ast('a[x] and a[y] and a[z]'), { kind: 'and', operands: [x, y, z] });
  t.deepEqual(ast('!!a[x]'), { kind: 'not', operand: { kind: 'not', operand: x } });
  // A comparison binds tighter than not: not a[x] == "1" is not (a[x] == "1").
  t.deepEqual(ast('not a[x] == "1"'), { kind: 'not', operand: ast('a[x] == "1"') });
});

test('evaluation follows the precedence on every combination of three flags', (t) => {
  const forms: Array<[string, (x: boolean, y: boolean, z: boolean) => boolean]> = [
    ['a[x] or a[y] and a[z]', (x, y, z) => x || (y && z)],
    ['a[x] and a[y] or a[z]', (x, y, z) => (x && y) || z],
    ['not a[x] and a[y] or not a[z]', (x, y, z) => (!x && y) || !z],
    ['not (a[x] or a[y]) and a[z]', (x, y, z) => !(x || y) && z],
    ['a[x] and (a[y] or a[z])', (x, y, z) => x && (y || z)],
    ['!a[x] || !(a[y] && a[z])', (x, y, z) => !x || !(y && z)],
  ];
  for (const [text, expected] of forms) {
    for (let bits = 0; bits < 8; bits += 1) {
      const [x, y, z] = [Boolean(bits & 1), Boolean(bits & 2), Boolean(bits & 4)];
      const subject = node({ attributes: { x: x ? 'yes' : 'no', y: y ? 'yes' : 'no', z: z ? 'yes' : 'no' } });
      t.is(matches(text, subject), expected(x, y, z), `${text} with x=${x} y=${y} z=${z}`);
    }
  }
});

test('parsed form: long prefixes, JSON keys, parenthesized comparisons and chains, bare not', (t) => {
  t.is(
    formatSelector(ast("a[x] == 1 and not h['a b'] or s[z] =~ '^up' && a[n] != TRUE")),
    '(((attribute["x"] == 1) and not hardware["a b"]) or ((status["z"] =~ /^up/) and (attribute["n"] != true)))',
  );
  t.is(formatSelector(ast('not (a[x] or a[y])')), 'not (attribute["x"] or attribute["y"])');
  t.is(formatSelector(ast('a[k] == \'it\\\'s\'')), '(attribute["k"] == "it\'s")');
});

// --- round trip ----------------------------------------------------------------------------------

const UNITS: SizeUnit[] = ['', 'K', 'M', 'G', 'T', 'KB', 'MB', 'GB', 'TB', 'KiB', 'MiB', 'GiB', 'TiB'];
const MULTIPLIER: Record<SizeUnit, number> = {
  '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12,
  KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40,
};
const KEYS = ['ram_total', '_boot_config', 'cpu.model', 'a-b', 'x:y@z/w+1', 'with space', 'q"uote', "it's", ']', '[', 'é', '\\', '\n', 'and', 'not', '0'];
const TEXTS = ['', 'DefaultBoot', 'a "quoted" word', "it's", 'back\\slash', 'tab\there', 'nl\n', 'é∂😀', '\ud800', '/', '\u0001', 'and or not'];
// Patterns in canonical form: every "/" escaped.
const PATTERNS = ['^n[0-9]+$', 'gpu', 'a\\/b', '[\\/]x', '\\d{2,3}', '(?:ab)c', 'x|y', '^\\s*$', 'é', '\\\\'];
const OPERATORS: ComparisonOperator[] = ['==', '!=', '<', '<=', '>', '>='];

function randomTree(next: () => number, depth: number): SelectorAst {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const ref = (): SelectorReference => ({ source: pick(['attribute', 'hardware', 'status'] as const), key: pick(KEYS) });
  const roll = next();
  if (depth > 0 && roll < 0.45) {
    const operands = Array.from({ length: 2 + Math.floor(next() * 3) }, () => randomTree(next, depth - 1));
    return { kind: roll < 0.22 ? 'and' : 'or', operands };
  }
  if (depth > 0 && roll < 0.55) return { kind: 'not', operand: randomTree(next, depth - 1) };
  if (roll < 0.65) return { kind: 'truthy', ref: ref() };
  const valueRoll = next();
  let value: SelectorValue;
  let op: ComparisonOperator;
  if (valueRoll < 0.2) {
    value = { kind: 'regex', pattern: pick(PATTERNS), flags: pick(['', 'i'] as const) };
    op = pick(['=~', '!~'] as const);
  } else if (valueRoll < 0.3) {
    value = { kind: 'boolean', value: next() < 0.5 };
    op = pick(['==', '!='] as const);
  } else if (valueRoll < 0.6) {
    value = { kind: 'string', value: pick(TEXTS) };
    op = pick(OPERATORS);
  } else {
    const whole = Math.floor(next() * 100_000) * (next() < 0.2 ? -1 : 1);
    const amount = (next() < 0.5 ? whole : whole + Math.floor(next() * 1000) / 1000) || 0;
    const unit = pick(UNITS);
    value = { kind: 'number', amount, unit, value: amount * MULTIPLIER[unit] };
    op = pick(OPERATORS);
  }
  return { kind: 'compare', ref: ref(), op, value };
}

test('round trip: parse(format(ast)) is ast for 3000 seeded random trees', (t) => {
  const next = seededRandom(0x5e1ec7);
  for (let i = 0; i < 3000; i += 1) {
    const tree = randomTree(next, 4);
    const text = formatSelector(tree);
    const result = parseSelector(text);
    if (!result.ok) {
      t.fail(`${text}: ${result.reason}`);
      return;
    }
    t.deepEqual(result.ast, tree, text);
    t.is(result.parsed, text);
  }
});

/** Writes a tree the way a person might: aliases, spacing, either quote, optional parentheses. */
function randomSpelling(tree: SelectorAst, next: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const space = (): string => pick(['', ' ', '  ', '\t', '\n']);
  const word = (): string => pick([' ', '  ', '\n']);
  const quote = (text: string): string => {
    const mark = pick(['"', "'"]);
    let out = mark;
    for (const char of text) {
      if (char === mark || char === '\\') out += `\\${char}`;
      else if (char < ' ' || next() < 0.05) out += [...char].map((unit) => unit.split('').map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')).join('');
      else out += char;
    }
    return out + mark;
  };
  const prefixes = { attribute: ['a', 'A', 'attribute', 'attributes'], hardware: ['h', 'H', 'hardware'], status: ['s', 'status', 'Status'] };
  const reference = (ref: SelectorReference): string => {
    const key = /^[\w.:@/+-]+$/.test(ref.key) && next() < 0.6 ? ref.key : quote(ref.key);
    return `${pick(prefixes[ref.source])}${space()}[${space()}${key}${space()}]`;
  };
  const value = (v: SelectorValue): string => {
    switch (v.kind) {
      case 'string': return quote(v.value);
      case 'boolean': return pick(v.value ? ['true', 'TRUE', 'True'] : ['false', 'FALSE']);
      case 'regex': return v.flags === '' && next() < 0.4 ? quote(v.pattern) : `/${v.pattern}/${v.flags}`;
      case 'number': {
        const digits = String(v.amount).replace(/^(-?)/, `$1${pick(['', '0', '00'])}`);
        const unit = next() < 0.5 ? v.unit.toLowerCase() : v.unit;
        return `${digits}${v.unit !== '' && next() < 0.3 ? ' ' : ''}${unit}`;
      }
    }
  };
  const wrap = (text: string, needed: boolean): string => (needed || next() < 0.15 ? `(${space()}${text}${space()})` : text);
  switch (tree.kind) {
    case 'truthy':
      return wrap(reference(tree.ref), false);
    case 'compare':
      return wrap(`${reference(tree.ref)}${space()}${tree.op}${space()}${value(tree.value)}`, false);
    case 'not': {
      const operand = randomSpelling(tree.operand, next);
      const needsParens = tree.operand.kind === 'and' || tree.operand.kind === 'or';
      return wrap(`${pick(['!', 'not ', 'NOT ', `not${word()}`])}${needsParens ? `(${operand})` : operand}`, false);
    }
    case 'and':
    case 'or': {
      const parts = tree.operands.map((operand) => {
        const text = randomSpelling(operand, next);
        // The parser flattens a chain of one connective and puts "and" under "or": only these need parentheses.
        const needsParens = operand.kind === tree.kind || (tree.kind === 'and' && operand.kind === 'or');
        return needsParens ? `(${text})` : text;
      });
      const joiners = tree.kind === 'and' ? ['&&', `${word()}and${word()}`, `${word()}AND${word()}`] : ['||', `${word()}or${word()}`, `${word()}Or${word()}`];
      return wrap(parts.map((part, i) => (i === 0 ? part : `${space()}${pick(joiners)}${space()}${part}`)).join(''), false);
    }
  }
}

test('round trip from text: 3000 random spellings parse to the tree they were written from', (t) => {
  const next = seededRandom(0xbadc0de);
  for (let i = 0; i < 3000; i += 1) {
    const tree = randomTree(next, 4);
    const text = randomSpelling(tree, next);
    const result = parseSelector(text);
    if (!result.ok) {
      t.fail(`${JSON.stringify(text)}: ${result.reason}`);
      return;
    }
    t.deepEqual(result.ast, tree, text);
  }
});

// --- errors --------------------------------------------------------------------------------------

test('errors point at the column and say what was expected', (t) => {
  const cases: Array<[string, number, RegExp]> = [
    ['(h[x] > 1', 10, /expected .*"\)" to close the "\(" at column 1, found the end/],
    ['((a[x]) or (a[y]) and', 22, /expected a condition/],
    ['a[x] and (a[y] or a[z]', 23, /"\)" to close the "\(" at column 10/],
    ['a[x])', 5, /unmatched "\)"/],
    ['x[foo] == 1', 1, /unknown prefix "x": expected a \(attributes\), h \(hardware\) or s \(status\)/],
    ['a[x] and node[y]', 10, /unknown prefix "node"/],
    ['h[x] >', 7, /expected a value after ">"/],
    ['h[x] > and a[y]', 8, /expected a value after ">".*found "and"/],
    ['a[x] == 1 and', 14, /expected a condition such as a\[key\]/],
    ['and a[x]', 1, /expected a condition.*found "and"/],
    ['not', 4, /expected a condition/],
    ['', 1, /expected a condition.*found the end of the selector/],
    ['   ', 4, /expected a condition/],
    ['h[x] > 10XB', 10, /bad number: unknown unit "XB", expected one of K, M, G, T, KB, MB, GB, TB, KiB, MiB, GiB, TiB/],
    ['h[x] > 1.2.3', 11, /bad number/],
    ['h[x] > 1.', 9, /bad number: expected a digit/],
    ['h[x] > -', 9, /bad number: expected a digit after "-"/],
    ['h[x] > 12_000', 10, /bad number/],
    ['h[x] > 1e3', 9, /bad number: unknown unit "e"/],
    ['h[x] > 123456789012345678901234', 8, /bad number: too many digits/],
    ['a[x] == "abc', 9, /unterminated string: expected a closing "/],
    ["a[x] == 'abc\\'", 9, /unterminated string: expected a closing '/],
    ['a[x] == "a\\qb"', 11, /bad escape "\\q"/],
    ['a[x] == "\\u12"', 10, /four hex digits/],
    ['a[x] == 1 foo', 11, /expected "and", "or" or the end of the selector, found "foo"/],
    ['a[x] foo', 6, /expected a comparison operator \(==, !=, <=, >=, =~, !~, <, >\), "and", "or" or the end/],
    ['a[x] = 1', 6, /"=" is not an operator: use "=="/],
    ['a[x] & a[y]', 6, /found "&"/],
    ['a[x', 4, /expected "\]" to close the "\[" at column 2/],
    ['a x]', 3, /expected "\[" after "a"/],
    ['a[] == 1', 3, /expected a key/],
    ['a[""] == 1', 3, /a key must not be empty/],
    ['a[x] < true', 8, /"<" needs a number or a string, found "true"/],
    ['a[x] =~ 5', 9, /"=~" needs a \/pattern\/ or a "quoted pattern", found "5"/],
    ['a[x] == /y/', 9, /a \/pattern\/ needs "=~" or "!~", not "=="/],
    ['a[x] =~ /abc', 9, /unterminated pattern/],
    ['a[x] =~ /x/g', 12, /pattern flag "g": only "i"/],
    ['a[x] =~ /x/ii', 13, /pattern flag "i"/],
    ['a[x] =~ //', 9, /expected a value|empty pattern/],
    ['a[x] =~ ""', 9, /empty pattern/],
    ['a[x] =~ /(/', 9, /invalid pattern: .*Unterminated group/],
    ['a[x] =~ /(a+)+$/', 10, /unsafe pattern: a repeated group/],
    ['a[x] =~ /^(x|xy)*z/', 11, /unsafe pattern/],
    ['a[x] =~ /(a)\\1/', 13, /back-references are not supported/],
    ['a[x] =~ "(a*)*"', 9, /unsafe pattern/],
    ['a[é] == 1 😀 x', 11, /found "😀"/],
    ['😀 == 1', 1, /expected a condition.*found "😀"/],
  ];
  for (const [text, column, reason] of cases) {
    const result = parseSelector(text);
    t.false(result.ok, text);
    if (result.ok) continue;
    t.is(result.column, column, `${text}: ${result.reason}`);
    t.regex(result.reason, reason, text);
  }
});

test('patterns that are safe are accepted; the length of a pattern is bounded', (t) => {
  for (const pattern of ['^n[0-9]+$', '(ab)+c', '(?:x|y)z', '(a+)?b', '[(+)]*', '\\(a+\\)+', 'a{2,3}b+', '(?<rack>r[0-9]{2})-n', '(?=a)b']) {
    const result = parseSelector(`a[x] =~ /${pattern}/`);
    t.true(result.ok, `${pattern}: ${result.ok ? '' : result.reason}`);
  }
  t.true(parseSelector(`a[x] =~ /${'a'.repeat(MAX_PATTERN_LENGTH)}/`).ok);
  const long = parseSelector(`a[x] =~ /${'a'.repeat(MAX_PATTERN_LENGTH + 1)}/`);
  t.false(long.ok);
  if (!long.ok) t.regex(long.reason, /at most 256 characters/);
});

test('nesting and length limits give errors, not stack overflows', (t) => {
  const deep = `${'('.repeat(4000)}a[x]${')'.repeat(4000)}`;
  t.like(parseSelector(deep), { ok: false, column: MAX_NESTING + 1 });
  const nots = parseSelector(`${'!'.repeat(5000)}a[x]`);
  t.like(nots, { ok: false, column: MAX_NESTING + 1 });
  t.true(parseSelector(`${'('.repeat(MAX_NESTING)}a[x]${')'.repeat(MAX_NESTING)}`).ok);
  const long = parseSelector(`a[x] == "${'y'.repeat(MAX_SELECTOR_LENGTH)}"`);
  t.like(long, { ok: false, column: MAX_SELECTOR_LENGTH + 1 });
  // Long flat chains are fine: and/or are loops, not recursion.
  const chain = Array.from({ length: 300 }, (_, i) => `a[k${i}] == ${i}`).join(' or ');
  t.true(parseSelector(chain).ok);
  t.like(parseSelector(42 as unknown as string), { ok: false, column: 1 });
});

test('selectNodes: an invalid selector gives the parse error; matching keeps the input order', (t) => {
  const nodes = [3, 1, 2].map((n) => ({ uid: `n${n}`, ...node({ attributes: { rank: String(n) } }) }));
  t.deepEqual(selectNodes('a[rank] >= 2', nodes), { ok: true, uids: ['n3', 'n2'] });
  t.deepEqual(selectNodes('a[rank] > 9', nodes), { ok: true, uids: [] });
  t.like(selectNodes('a[rank] >', nodes), { ok: false, column: 10 });
});

// --- fuzz ----------------------------------------------------------------------------------------

function checkOutcome(text: string): string | undefined {
  let result;
  try {
    result = parseSelector(text);
  } catch (error) {
    return `threw ${String(error)}`;
  }
  if (result.ok) {
    const again = parseSelector(result.parsed);
    if (!again.ok) return `parsed form ${result.parsed} does not parse: ${again.reason}`;
    if (JSON.stringify(again.ast) !== JSON.stringify(result.ast)) return `parsed form ${result.parsed} gives another tree`;
    // Evaluation must not throw either.
    matchesSelector(result.ast, node({ attributes: { x: '1' }, hardware: { x: 2, y: 'z' }, status: { x: true } }));
    return undefined;
  }
  const columns = [...text].length + 1;
  if (!Number.isInteger(result.column) || result.column < 1 || result.column > columns) return `column ${result.column} outside 1..${columns}`;
  if (result.reason.length === 0) return 'empty reason';
  return undefined;
}

test('fuzz: 20000 random strings never throw; errors have a column inside the text', (t) => {
  const next = seededRandom(0xf00d);
  const alphabet = ['a', 'h', 's', 'x', '[', ']', '(', ')', '"', "'", '\\', '/', '=', '!', '<', '>', '~', '&', '|', ' ', '1', '0', '.', '-',
    'G', 'i', 'B', 'K', 'and', 'or', 'not', 'true', '*', '+', '?', '{', '}', 'é', '😀', '\ud800', '\n', 'u', 'e'];
  for (let i = 0; i < 20_000; i += 1) {
    let text = '';
    const length = Math.floor(next() * 30);
    for (let j = 0; j < length; j += 1) text += alphabet[Math.floor(next() * alphabet.length)];
    const problem = checkOutcome(text);
    if (problem !== undefined) {
      t.fail(`${JSON.stringify(text)}: ${problem}`);
      return;
    }
  }
  t.pass();
});

test('fuzz: 20000 mutations of valid selectors never throw', (t) => {
  const next = seededRandom(0xc0ffee);
  for (let i = 0; i < 20_000; i += 1) {
    const chars = [...randomSpelling(randomTree(next, 3), next)];
    for (let edits = 1 + Math.floor(next() * 3); edits > 0; edits -= 1) {
      const at = Math.floor(next() * (chars.length + 1));
      const roll = next();
      const filler = '()[]"\'/\\=!<>~ &|-.0aGiBnot'[Math.floor(next() * 26)]!;
      if (roll < 0.4) chars.splice(at, 1);
      else if (roll < 0.8) chars.splice(at, 0, filler);
      else chars.splice(at, 1, filler);
    }
    const text = chars.join('');
    const problem = checkOutcome(text);
    if (problem !== undefined) {
      t.fail(`${JSON.stringify(text)}: ${problem}`);
      return;
    }
  }
  t.pass();
});
