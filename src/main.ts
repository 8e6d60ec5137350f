// Entry point of the `keel` binary: the CLI.
import { runCli } from './cli.js';

runCli(process.argv).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
