import { Command } from 'commander';
import { VERSION } from './version.js';

export async function runCli(argv: string[]): Promise<void> {
  const program = new Command('keel').description('keel network boot appliance').version(VERSION, '-V, --version');
  program.command('version').description('print the version').action(() => {
    console.log(VERSION);
  });
  await program.parseAsync(argv);
}
