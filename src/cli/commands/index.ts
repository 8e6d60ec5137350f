// The client commands: everything `keel` does through a running head's API with a login session
// (docs/cli.md). Registered after src/cli.ts's own commands, so `image` and `bootconfig` gain
// their subcommands beside `image import` and `bootconfig create`.
import type { Command } from 'commander';
import { registerBootCommand } from './boot.js';
import { registerCompletionCommand } from './completion.js';
import { registerConsoleCommand } from './console.js';
import { registerContentCommands } from './content.js';
import { registerExecCommand } from './exec.js';
import { registerLoginCommands } from './login.js';
import { registerNodeCommands } from './nodes.js';
import { registerPowerCommands } from './power.js';

export function registerClientCommands(program: Command): void {
  registerLoginCommands(program);
  registerNodeCommands(program);
  registerContentCommands(program);
  registerPowerCommands(program);
  registerConsoleCommand(program);
  registerBootCommand(program);
  registerExecCommand(program);
  registerCompletionCommand(program);
}
