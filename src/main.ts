// Entry point of the `keel` binary: the CLI.
import { runCli } from './cli.js';
import { alreadyReported, exitCodeOf } from './cli/output.js';
import { assertNativeAddons } from './native.js';

async function main(): Promise<void> {
  assertNativeAddons(); // never run on a JS fallback of a native addon (see src/native.ts)
  await runCli(process.argv);
}

main().catch((err: unknown) => {
  if (!alreadyReported(err)) console.error(err instanceof Error ? err.message : String(err));
  process.exit(exitCodeOf(err));
});
