// What every client command shares: --url and --json, the session with the head, and running a
// step per target (node rm a b c) so that one failure does not hide the others' outcome.
import type { Command } from 'commander';
import { headBase, Session, TokenFile, URL_ENV } from '../session.js';

export interface ClientOptions {
  url?: string;
  json?: boolean;
}

/** Adds --url and --json to a client command. */
export function clientCommand(command: Command): Command {
  return command
    .option('--url <url>', `head to talk to (default: $${URL_ENV}, else the last keel login's head, else this host's keel)`)
    // Read by src/cli.ts's preAction hook, which trusts it for https:// heads.
    .option('--ca <file>', "PEM CA certificates to trust for an https:// head besides the system's (default $KEEL_CA)")
    .option('--json', "print the API's data as JSON instead of a table");
}

/** The session with the head the options name (docs/cli.md, "Which head"). */
export function sessionFor(options: ClientOptions): Promise<Session> {
  const file = new TokenFile();
  return Session.open(headBase(options.url, file), file);
}

/** "n2" before "n10": objects sort by name as people read them. */
export const byName = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  String(a.name ?? '').localeCompare(String(b.name ?? ''), undefined, { numeric: true });

/** A path segment from an id the user typed (a name, uid, MAC or IP). */
export const seg = encodeURIComponent;

/** The existing subcommand `name` of `parent` (image, bootconfig: made in src/cli.ts), else a new one. */
export function subcommand(parent: Command, name: string, description: string): Command {
  return parent.commands.find((c) => c.name() === name) ?? parent.command(name).description(description);
}

export interface Outcome {
  target: string;
  ok: boolean;
  reason?: string;
}

/** Runs `work` for each target in turn, collecting what happened; failed when any failed (exit code 1). */
export async function eachTarget(targets: readonly string[], work: (target: string) => Promise<void>): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const target of targets) {
    try {
      await work(target);
      outcomes.push({ target, ok: true });
    } catch (err) {
      outcomes.push({ target, ok: false, reason: (err as Error).message });
    }
  }
  return outcomes;
}

/** Prints each target's outcome (errors to stderr) and sets exit code 1 when any failed. */
export function reportOutcomes(outcomes: readonly Outcome[], verb: string, json: boolean | undefined): void {
  if (json) process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
  for (const outcome of outcomes) {
    if (outcome.ok && !json) process.stdout.write(`${verb} ${outcome.target}\n`);
    if (!outcome.ok) process.stderr.write(`${outcome.target}: ${outcome.reason}\n`);
  }
  if (outcomes.some((o) => !o.ok)) process.exitCode = 1;
}
