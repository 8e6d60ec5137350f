// `keel image upload|ls|rm` and `keel bootconfig ls|rm` with the login session (`image import` and
// `bootconfig create` are src/cli.ts's, on the same upload code: ../content.ts, ../client.ts).
import type { Command } from 'commander';
import { formatBytes, progressBar } from '../client.js';
import { importImage } from '../content.js';
import { formatTable, print } from '../output.js';
import { byName, clientCommand, eachTarget, reportOutcomes, seg, sessionFor, subcommand, type ClientOptions } from './common.js';

type Row = Record<string, unknown>;

/** Size of an attached file as the API shows it ({size, …}), human-readable; empty when there is none. */
function sizeOf(file: unknown): string {
  const size = (file as { size?: unknown } | undefined)?.size;
  return typeof size === 'number' ? formatBytes(size) : '';
}

/** An image's content is `{<format>: {size, …}}`: format and size. */
function contentOf(image: Row): [string, string] {
  const [format, file] = Object.entries((image.content as Row | undefined) ?? {})[0] ?? ['', undefined];
  return [format, sizeOf(file)];
}

function registerImage(program: Command): void {
  const image = subcommand(program, 'image', 'images of a running keel (through its API)');

  clientCommand(image.command('upload <file>').description('create an image (or, with --replace, reuse one) and upload its content with a progress bar (bytes, rate, ETA)')
    .requiredOption('--name <name>', 'name of the image')
    .option('--description <text>', 'description of the image')
    .option('--replace', 'upload into an existing image of that name, replacing its content'))
    .action(async (file: string, options: ClientOptions & { name: string; description?: string; replace?: boolean }) => {
      const client = await (await sessionFor(options)).fresh();
      const result = await importImage(client, { file, ...options }, progressBar());
      print(options.json, { ...result, name: options.name }, () => `uploaded ${options.name} ${result.uid}\n`);
    });

  clientCommand(image.command('ls').description('list images: name, format, size, description'))
    .action(async (options: ClientOptions) => {
      const images = (await (await sessionFor(options)).call('GET', '/images')) as Record<string, Row>;
      const rows = Object.values(images).sort(byName).map((i) => [i.name, ...contentOf(i), i.description]);
      print(options.json, images, () => formatTable(['name', 'format', 'size', 'description'], rows));
    });

  clientCommand(image.command('rm <images...>').description('delete images and their content (refused while a boot config uses one)'))
    .action(async (ids: string[], options: ClientOptions) => {
      const session = await sessionFor(options);
      reportOutcomes(await eachTarget(ids, async (id) => void (await session.call('DELETE', `/image/${seg(id)}`))), 'deleted', options.json);
    });
}

function registerBootConfig(program: Command): void {
  const bootconfig = subcommand(program, 'bootconfig', 'boot configs of a running keel (through its API)');

  clientCommand(bootconfig.command('ls').description('list boot configs: name, image, boot style, kernel and initramfs sizes, command line'))
    .action(async (options: ClientOptions) => {
      const configs = (await (await sessionFor(options)).call('GET', '/bootconfigs')) as Record<string, Row>;
      const rows = Object.values(configs).sort(byName).map((c) => [c.name, c.image, c.boot_style, sizeOf(c.kernel), sizeOf(c.initramfs), c.cmdline]);
      print(options.json, configs, () => formatTable(['name', 'image', 'style', 'kernel', 'initramfs', 'cmdline'], rows));
    });

  clientCommand(bootconfig.command('rm <bootconfigs...>').description('delete boot configs and their files'))
    .action(async (ids: string[], options: ClientOptions) => {
      const session = await sessionFor(options);
      reportOutcomes(await eachTarget(ids, async (id) => void (await session.call('DELETE', `/bootconfig/${seg(id)}`))), 'deleted', options.json);
    });
}

export function registerContentCommands(program: Command): void {
  registerImage(program);
  registerBootConfig(program);
}
