// A cheap syntactic guard against regular expressions that can backtrack exponentially. V8's
// engine backtracks, and a selector is evaluated against every node on every dynamic-group query,
// so one bad pattern would stall the API. Rejected (the usual "star height > 1" families):
//   - a repeated group that itself contains a repetition:  (a+)+  (a*b?)*  ((ab)+c){2,}
//   - a repeated group that contains an alternation:        (a|a)*  (x|xy)+
//   - back-references (\1, \k<name>), which make matching NP-hard.
// Polynomial cases (.*.*x) remain, bounded by MAX_PATTERN_LENGTH and the length of node values.

export const MAX_PATTERN_LENGTH = 256;

export interface PatternProblem {
  /** 0-based offset in the pattern source. */
  offset: number;
  reason: string;
}

interface Group {
  offset: number;
  repeats: boolean;
  alternates: boolean;
}

/** What repeats a group: "?" after a group is at most once, so (a+)? is harmless. */
const REPEAT_START = new Set(['*', '+', '{']);
/** Any quantifier inside a group counts, "?" too: (a?){20}a{20} is a classic exponential case. */
const QUANTIFIER_START = new Set(['*', '+', '{', '?']);

/** The first construct that makes `pattern` unsafe, or undefined. Syntax errors are left to RegExp. */
export function findUnsafeConstruct(pattern: string): PatternProblem | undefined {
  const groups: Group[] = [{ offset: 0, repeats: false, alternates: false }];
  let i = 0;
  while (i < pattern.length) {
    const char = pattern[i]!;
    const current = groups[groups.length - 1]!;
    if (char === '\\') {
      const next = pattern[i + 1] ?? '';
      if ((next >= '1' && next <= '9') || (next === 'k' && pattern[i + 2] === '<')) {
        return { offset: i, reason: 'back-references are not supported' };
      }
      i += 2;
    } else if (char === '[') {
      i = endOfClass(pattern, i);
    } else if (char === '(') {
      groups.push({ offset: i, repeats: false, alternates: false });
      i += groupPrefixLength(pattern, i);
    } else if (char === ')') {
      if (groups.length === 1) return undefined; // unbalanced: RegExp reports it
      const group = groups.pop()!;
      const parent = groups[groups.length - 1]!;
      if (REPEAT_START.has(pattern[i + 1] ?? '')) {
        if (group.repeats || group.alternates) {
          return {
            offset: group.offset,
            reason: 'a repeated group containing a repetition or an alternation, like (a+)+ or (a|b)*, can take exponential time',
          };
        }
        parent.repeats = true;
      }
      parent.repeats ||= group.repeats;
      parent.alternates ||= group.alternates;
      i += 1;
    } else if (char === '|') {
      current.alternates = true;
      i += 1;
    } else {
      if (QUANTIFIER_START.has(char)) current.repeats = true;
      i += 1;
    }
  }
  return undefined;
}

/** Index just past the character class opening at `start` (or the end of the pattern). */
function endOfClass(pattern: string, start: number): number {
  let i = start + 1;
  while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
  return i + 1;
}

/** Length of "(" plus a group prefix such as "?:", "?=", "?<!" or "?<name>", so its "?" is not a quantifier. */
function groupPrefixLength(pattern: string, start: number): number {
  if (pattern[start + 1] !== '?') return 1;
  const named = /^\?<[A-Za-z_$][\w$]*>/.exec(pattern.slice(start + 1, start + 1 + MAX_PATTERN_LENGTH));
  if (named !== null) return 1 + named[0].length;
  return pattern[start + 2] === '<' ? 4 : 3;
}
