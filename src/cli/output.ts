// What the client commands print and how they end (docs/cli.md, "Output and exit codes"): human
// output as aligned, borderless tables (cli-table3), `--json` as the API's data, exit code 0 when
// all went well, 1 when something failed, 2 for a usage error.
import Table from 'cli-table3';
import { CommanderError } from 'commander';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A command line that cannot be right whatever the head says (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The exit code for an error that ended the CLI: commander's own (help, version: 0; the rest are usage errors: 2), a UsageError 2, anything else 1. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
}

/** Whether the CLI has already printed this error (commander prints its own before throwing). */
export function alreadyReported(err: unknown): boolean {
  return err instanceof CommanderError;
}

const NO_BORDER = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
};

/** A cell as printed: nothing for null/undefined, lists comma-joined, objects as JSON. */
function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map(cell).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Rows under upper-case headers, columns two spaces apart, no borders or colours (what `ps` or `kubectl get` print). */
export function formatTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const table = new Table({
    head: headers.map((h) => h.toUpperCase()),
    chars: NO_BORDER,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
    wordWrap: false,
  });
  for (const row of rows) table.push(row.map(cell));
  return `${table.toString().split('\n').map((line) => line.trimEnd()).join('\n')}\n`;
}

/** Key-value pairs of one object as a two-column table (`node show`). */
export function formatFields(fields: Record<string, unknown>): string {
  return formatTable(['field', 'value'], Object.entries(fields).map(([key, value]) => [key, value]));
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `--json`: the value as JSON; else the human form. */
export function print(json: boolean | undefined, value: unknown, human: () => string): void {
  if (json) printJson(value);
  else process.stdout.write(human());
}

/** `key=value` arguments (attrib set, node create --attr) as an object; a pair without `=` is a usage error. */
export function parsePairs(pairs: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`${JSON.stringify(pair)}: expected KEY=VALUE`);
    result[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return result;
}
