// The `keel` command line: serve, version, offline admin accounts and defaults (init), uploads to a
// running keel (image import, bootconfig create; src/cli/) and the appliance layout (install).
import { Command, Option } from 'commander';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { isSea } from 'node:sea';
import { DEBIAN_IPXE_DIR } from './boot/ipxe-binaries.js';
import { apiBase, CA_ENV, PASSWORD_ENV, progressBar, trustCaFile } from './cli/client.js';
import { registerClientCommands } from './cli/commands/index.js';
import { createBootConfig, importImage, type BootConfigCreate } from './cli/content.js';
import { initStore } from './cli/init.js';
import { storedOrLogin } from './cli/session.js';
import { BINARY_PATH, enableInstructions, install } from './cli/install.js';
import { CONFIG_FLAGS, loadConfig, type ConfigOverrides, type KeelConfig } from './config.js';
import { createLogger, RecentLog } from './log.js';
import { DEFAULT_ADMIN_ROLES, withTokensRevoked } from './model/classes/admin.js';
import { BOOT_STYLES, DEFAULT_BOOT_STYLE } from './model/classes/bootconfig.js';
import { Model } from './model/model.js';
import type { ObjectStore } from './model/object-store.js';
import { startHead } from './serve.js';
import { Store } from './store/store.js';
import { VERSION } from './version.js';

interface ConfigOptions {
  config?: string;
  [flag: string]: string | undefined;
}

/** Commander's camel-cased option name of a flag like `--http-port <port>`. */
function optionName(flag: string): string {
  return flag.replace(/^--/, '').split(' ')[0]!.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function addConfigOptions(command: Command): Command {
  command.option('-c, --config <file>', 'config file (TOML); see docs/config.md');
  for (const { flag, description } of CONFIG_FLAGS) {
    const option = new Option(flag, description);
    // A repeatable flag (--dhcp-interface eth0 --dhcp-interface eth1) collects a comma list.
    if (flag.startsWith('--dhcp-interface')) option.argParser((value: string, previous?: string) => (previous ? `${previous},${value}` : value));
    command.addOption(option);
  }
  return command;
}

function configFrom(options: ConfigOptions): KeelConfig {
  const overrides: Record<string, Record<string, string>> = {};
  for (const { section, key, flag } of CONFIG_FLAGS) {
    const value = options[optionName(flag)];
    if (value !== undefined) (overrides[section] ??= {})[key] = value;
  }
  return loadConfig({ file: options.config, overrides: overrides as ConfigOverrides });
}

/** Admin records of the configured data directory, through the same rules as the API. */
async function withAdmins<R>(options: ConfigOptions, fn: (admins: ObjectStore) => Promise<R>): Promise<R> {
  const config = configFrom(options);
  const dataDir = resolve(config.server.data_dir);
  const store = new Store({ dataDir, headName: config.server.name });
  try {
    return await fn(new Model(store, { dataDir }).admins);
  } finally {
    await store.close();
  }
}

async function readPassword(given: string | undefined): Promise<{ password: string; generated: boolean }> {
  if (given !== undefined) return { password: given, generated: false };
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const password = Buffer.concat(chunks).toString('utf8').split('\n')[0]!;
    if (password) return { password, generated: false };
  }
  return { password: randomBytes(12).toString('base64url'), generated: true };
}

export async function runCli(argv: string[]): Promise<void> {
  const program = new Command('keel')
    .description('keel: network boot appliance (DHCP, TFTP, HTTP boot, power, REST API) in one binary')
    .version(VERSION, '-V, --version')
    // Every command that talks to a head (it has --url) trusts --ca's or $KEEL_CA's certificates for https://.
    .hook('preAction', (_program, command) => {
      const file = (command.opts() as { ca?: string }).ca ?? process.env[CA_ENV];
      if (file && command.options.some((option) => option.long === '--url')) trustCaFile(file);
    })
    // Usage errors are thrown, not exited on, so that main.ts ends with the documented code (2; docs/cli.md).
    .exitOverride();

  program.command('version').description('print the version').action(() => console.log(VERSION));

  addConfigOptions(program.command('serve').description('run the boot servers and the API')).action(async (options: ConfigOptions) => {
    const config = configFrom(options);
    const recentLog = new RecentLog();
    const log = createLogger(config.log, recentLog);
    const starting = startHead({ config, log, recentLog, adminPassword: process.env.KEEL_ADMIN_PASSWORD, ipxeImportDir: DEBIAN_IPXE_DIR });
    // Handlers first: a signal during start-up (the API already answers while TFTP, DHCP and the
    // iPXE import come up) waits for the start to finish and then stops cleanly.
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      starting.then((head) => head.close()).then(() => process.exit(0), (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    const head = await starting;
    const where = `http://${config.server.bind === '0.0.0.0' ? '127.0.0.1' : config.server.bind}:${head.httpPort}/api/v1`;
    if (head.initialPassword) log.info(`log in at ${where}/login as "admin"; password in ${head.initialPassword}`);
  });

  const admin = program.command('admin').description('manage admin accounts directly in the store (works while keel is stopped)');
  const actor = process.env.USER ?? 'keel-cli';

  addConfigOptions(admin.command('list').description('list admins')).action((options: ConfigOptions) =>
    withAdmins(options, async (admins) => {
      for (const record of admins.collection.list()) console.log(`${record.uid}  ${String(record.name)}  ${((record.roles as string[]) ?? []).join(',')}`);
    }),
  );

  addConfigOptions(
    admin.command('create <name>').description('create an admin; password from --password, stdin, or generated and printed')
      .option('--password <password>', 'password (visible to ps; prefer stdin)')
      .option('--roles <roles>', 'comma-separated roles', DEFAULT_ADMIN_ROLES.join(',')),
  ).action((name: string, options: ConfigOptions & { password?: string; roles: string }) =>
    withAdmins(options, async (admins) => {
      const { password, generated } = await readPassword(options.password);
      const roles = options.roles.split(',').map((r) => r.trim()).filter(Boolean);
      console.log((await admins.create(actor, { name, roles, password })).uid);
      if (generated) console.error(`password: ${password}`);
    }),
  );

  addConfigOptions(
    admin.command('passwd <name>').description("set an admin's password; from --password, stdin, or generated and printed")
      .option('--password <password>', 'password (visible to ps; prefer stdin)'),
  ).action((name: string, options: ConfigOptions & { password?: string }) =>
    withAdmins(options, async (admins) => {
      const { password, generated } = await readPassword(options.password);
      await admins.update(actor, name, { password }, false);
      if (generated) console.error(`password: ${password}`);
    }),
  );

  addConfigOptions(admin.command('rm <name>').description('delete an admin')).action((name: string, options: ConfigOptions) =>
    withAdmins(options, (admins) => admins.remove(actor, name)),
  );

  addConfigOptions(
    admin.command('revoke-tokens <name>').description("revoke every token issued to an admin so far (also while keel runs: it reads the admin on each request)"),
  ).action((name: string, options: ConfigOptions) =>
    withAdmins(options, async (admins) => {
      await admins.modify(actor, name, withTokensRevoked);
    }),
  );

  addConfigOptions(
    program.command('init').description('create the default image and boot config (DefaultImage, DefaultBoot) in the store from an assets directory, unless they exist (run while keel is stopped)')
      .requiredOption('--assets <dir>', 'directory with vmlinuz, initramfs.img and rootfs.squashfs (images/build.sh)'),
  ).action(async (options: ConfigOptions & { assets: string }) => {
    const { created, existing } = await initStore(configFrom(options), options.assets, actor);
    for (const name of created) console.log(`created ${name}`);
    for (const name of existing) console.log(`kept ${name} (exists)`);
  });

  const apiOptions = (command: Command) => addConfigOptions(command)
    .option('--url <url>', "keel's API (default: this host's keel, http://localhost:<http.port>)")
    .option('--ca <file>', `PEM CA certificates to trust for an https:// URL besides the system's (the head's GET /cluster/cabundle); default $${CA_ENV}`)
    .option('--user <name>', `admin to log in as; password from $${PASSWORD_ENV} or stdin`, 'admin');
  // The stored `keel login` tokens of that head when there are some, else a login with the password.
  const session = async (options: ConfigOptions & { url?: string; user: string }) =>
    storedOrLogin(apiBase(configFrom(options), options.url), options.user);

  apiOptions(
    program.command('image').description('images of a running keel (through its API)')
      .command('import <file>').description('create an image and upload its content (e.g. a squashfs) with a progress bar')
      .requiredOption('--name <name>', 'name of the image')
      .option('--description <text>', 'description of the image')
      .option('--replace', 'upload into an existing image of that name, replacing its content'),
  ).action(async (file: string, options: ConfigOptions & { url?: string; user: string; name: string; description?: string; replace?: boolean }) => {
    const { uid, content } = await importImage(await session(options), { file, ...options }, progressBar());
    console.log(JSON.stringify({ uid, name: options.name, content }));
  });

  apiOptions(
    program.command('bootconfig').description('boot configs of a running keel (through its API)')
      .command('create').description('create a boot config and upload its kernel and initramfs with a progress bar')
      .requiredOption('--name <name>', 'name of the boot config')
      .requiredOption('--kernel <file>', 'kernel to upload')
      .requiredOption('--initramfs <file>', 'initramfs to upload')
      .option('--image <name>', 'image it boots into (uid or name)')
      .option('--cmdline <text>', 'kernel command line')
      .option('--boot-style <style>', `one of ${BOOT_STYLES.join(', ')} (default ${DEFAULT_BOOT_STYLE})`)
      .option('--description <text>', 'description of the boot config'),
  ).action(async (options: ConfigOptions & { url?: string; user: string } & BootConfigCreate) => {
    console.log(await createBootConfig(await session(options), options, () => progressBar()));
  });

  program.command('install').description('lay keel out as a systemd service under a root directory: binary, unit, keel.toml, data directory')
    .requiredOption('--root <dir>', 'root to install under (/ for this machine)')
    .option('--binary <file>', `keel binary to install as ${BINARY_PATH} (default: this one, when it is the single binary)`)
    .action((options: { root: string; binary?: string }) => {
      const result = install({ root: resolve(options.root), binary: options.binary, runningBinary: isSea() ? process.execPath : undefined });
      for (const path of result.written) console.log(`installed ${path}`);
      for (const path of result.kept) console.log(`kept ${path} (exists)`);
      if (result.noBinary) console.log(`no binary: ${result.noBinary}`);
      console.log(enableInstructions(resolve(options.root)));
    });

  registerClientCommands(program);
  await program.parseAsync(argv);
}
