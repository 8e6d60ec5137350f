// `keel login` and `keel logout`: tokens for a head kept in the user's config directory
// (../session.ts; docs/cli.md, "Login and tokens").
import type { Command } from 'commander';
import { ApiClient } from '../client.js';
import { print } from '../output.js';
import { headBase, loginPassword, TokenFile, USER_ENV } from '../session.js';

const shown = (base: string) => base.replace(/\/api\/v1$/, '');

export function registerLoginCommands(program: Command): void {
  program.command('login').description('log in to a head and keep its tokens (password from $KEEL_PASSWORD, else stdin when not a terminal, else a prompt); makes it the default head')
    .option('--url <url>', 'head to log in to (default: $KEEL_URL, else the last login\'s head, else this host\'s keel)')
    .option('--user <name>', `admin to log in as (default: $${USER_ENV}, else admin)`)
    .option('--ca <file>', "PEM CA certificates to trust for an https:// head besides the system's (default $KEEL_CA)")
    .option('--json', 'print {url, user} as JSON')
    .action(async (options: { url?: string; user?: string; json?: boolean }) => {
      const file = new TokenFile();
      const base = headBase(options.url, file);
      const user = options.user ?? process.env[USER_ENV] ?? 'admin';
      const client = await ApiClient.login(base, user, await loginPassword(user, base));
      file.update((contents) => {
        contents.heads[base] = { user, access_token: client.token, refresh_token: client.refreshToken! };
        contents.default_url = shown(base);
      });
      print(options.json, { url: shown(base), user }, () => `logged in to ${shown(base)} as ${user} (tokens in ${file.path})\n`);
    });

  program.command('logout').description("forget a head's tokens (the default head, or --url)")
    .option('--url <url>', 'head to log out of')
    .action((options: { url?: string }) => {
      const file = new TokenFile();
      const base = headBase(options.url, file);
      let had = false;
      file.update((contents) => {
        had = contents.heads[base] !== undefined;
        delete contents.heads[base];
        if (contents.default_url === shown(base)) delete contents.default_url;
      });
      process.stdout.write(had ? `logged out of ${shown(base)}\n` : `not logged in to ${shown(base)}\n`);
    });
}
