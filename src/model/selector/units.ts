// Numbers with size units, shared by selector literals (`100GB`) and the values stored on nodes
// ("128GB", "131072", 1.5e9): both sides of a comparison are reduced to plain numbers the same way.
// K/M/G/T and KB/MB/GB/TB are decimal (powers of 1000, as SI prefixes); KiB/MiB/GiB/TiB are binary.

import type { SizeUnit } from './ast.js';

const MULTIPLIERS: ReadonlyArray<readonly [SizeUnit, number]> = [
  ['', 1],
  ['K', 1e3], ['M', 1e6], ['G', 1e9], ['T', 1e12],
  ['KB', 1e3], ['MB', 1e6], ['GB', 1e9], ['TB', 1e12],
  ['KiB', 2 ** 10], ['MiB', 2 ** 20], ['GiB', 2 ** 30], ['TiB', 2 ** 40],
];

/** Lower-cased spelling → canonical unit and multiplier (units are matched case-insensitively). */
const UNITS = new Map(MULTIPLIERS.map(([unit, multiplier]) => [unit.toLowerCase(), { unit, multiplier }]));

export const UNIT_NAMES = MULTIPLIERS.map(([unit]) => unit).filter((unit) => unit !== '').join(', ');

export function lookupUnit(spelling: string): { unit: SizeUnit; multiplier: number } | undefined {
  return UNITS.get(spelling.toLowerCase());
}

/** Decimal digits with an optional fraction and sign: the number syntax of literals and stored strings. */
export const AMOUNT = /^-?[0-9]+(?:\.[0-9]+)?/;
const STORED_NUMBER = /^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$/;

/**
 * A stored value as a number: numbers as they are, strings such as "131072", "128GB", "1.5 TiB"
 * scaled by their unit. undefined when the value is not a number in that syntax (or not finite).
 */
export function storedNumber(stored: unknown): number | undefined {
  if (typeof stored === 'number') return Number.isFinite(stored) ? stored : undefined;
  if (typeof stored !== 'string') return undefined;
  const match = STORED_NUMBER.exec(stored);
  if (match === null) return undefined;
  const unit = lookupUnit(match[2]!);
  return unit === undefined ? undefined : Number(match[1]) * unit.multiplier;
}
