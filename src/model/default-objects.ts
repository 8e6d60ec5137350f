// The objects a fresh keel boots nodes with (spec 001: "DefaultImage will be created at
// installation", "the existing DefaultBoot (created during installation)"): the image DefaultImage
// and the boot config DefaultBoot, made from an assets directory (images/build.sh's output) through
// the same object stores and chunk store the API writes with. Existing ones are never touched.
import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import type { StagedFile } from '../store/chunks.js';
import { bootConfigClass, DEFAULT_BOOT_STYLE } from './classes/bootconfig.js';
import { imageClass } from './classes/image.js';
import { DEFAULT_BOOT_CONFIG } from './classes/node.js';
import { Conflict } from './errors.js';
import type { Model } from './model.js';
import type { ObjectClass } from './object-store.js';

export const DEFAULT_IMAGE = 'DefaultImage';
export { DEFAULT_BOOT_CONFIG };
/** Kernel command line of DefaultBoot: messages on the screen and on the first serial port (QEMU's -serial, most BMCs' SOL). */
export const DEFAULT_CMDLINE = 'console=tty0 console=ttyS0,115200n8';

/** The files of an assets directory, by the slot they fill. */
export const ASSET_FILES = { kernel: 'vmlinuz', initramfs: 'initramfs.img', content: 'rootfs.squashfs' } as const;

/** Store setting: set once the defaults exist, so a later start does not bring back ones an admin deleted. */
const DONE_SETTING = 'default_objects';

export interface DefaultObjectsResult {
  /** Names of the objects this call created. */
  created: string[];
  /** Names of the objects that were there already (left as they are). */
  existing: string[];
}

/** The asset files missing from `dir` (empty: it has all three). */
export function missingAssets(dir: string): string[] {
  return Object.values(ASSET_FILES).filter((name) => {
    try {
      return !statSync(join(dir, name)).isFile();
    } catch {
      return true;
    }
  });
}

/**
 * Create DefaultImage (content = DIR/rootfs.squashfs) and DefaultBoot (kernel = DIR/vmlinuz,
 * initramfs = DIR/initramfs.img, image DefaultImage, rwram, DEFAULT_CMDLINE) where absent. Each
 * object and its files commit in one transaction; a file is staged (read into the chunk store)
 * only for an object that is created. Throws when an asset is missing.
 */
export async function ensureDefaultObjects(model: Model, dir: string, actor: string): Promise<DefaultObjectsResult> {
  const missing = missingAssets(dir);
  if (missing.length > 0) throw new Error(`${dir} lacks ${missing.join(', ')} (images/build.sh makes them)`);
  const result: DefaultObjectsResult = { created: [], existing: [] };
  const note = (name: string, created: boolean) => (created ? result.created : result.existing).push(name);
  note(DEFAULT_IMAGE, await createWithFiles(model, imageClass, {
    name: DEFAULT_IMAGE, description: `Default image created by keel from ${dir}`,
  }, { content: join(dir, ASSET_FILES.content) }, actor));
  note(DEFAULT_BOOT_CONFIG, await createWithFiles(model, bootConfigClass, {
    name: DEFAULT_BOOT_CONFIG, description: `Default boot config created by keel from ${dir}`,
    image: DEFAULT_IMAGE, boot_style: DEFAULT_BOOT_STYLE, cmdline: DEFAULT_CMDLINE,
  }, { kernel: join(dir, ASSET_FILES.kernel), initramfs: join(dir, ASSET_FILES.initramfs) }, actor));
  await model.store.putSetting(DONE_SETTING, { time: model.store.now(), assets_dir: dir });
  return result;
}

/**
 * At start (`keel serve`): the defaults from `dir` unless an earlier start or `keel init` made them.
 * Undefined when there is nothing to do (no directory configured, or done before); `missing` when
 * the directory lacks assets (a later start tries again).
 */
export async function defaultObjectsAtStart(model: Model, dir: string | null, actor: string): Promise<(DefaultObjectsResult & { dir: string }) | { dir: string; missing: string[] } | undefined> {
  if (dir === null || model.store.getSetting(DONE_SETTING) !== undefined) return undefined;
  const missing = missingAssets(dir);
  if (missing.length > 0) return { dir, missing };
  return { dir, ...(await ensureDefaultObjects(model, dir, actor)) };
}

/** Create the object named `fields.name` with its files unless it exists; true when created. */
async function createWithFiles(model: Model, cls: ObjectClass, fields: Record<string, unknown>, files: Record<string, string>, actor: string): Promise<boolean> {
  const objects = model.objects(cls);
  if (objects.findUid(fields.name as string) !== undefined) return false;
  const staged = new Map<string, StagedFile>();
  try {
    for (const [slot, path] of Object.entries(files)) {
      staged.set(slot, await model.chunks.stage(createReadStream(path), { mtime: statSync(path).mtimeMs / 1000 }));
    }
    await objects.create(actor, fields, (record) => {
      for (const [slot, file] of staged) model.chunks.linkInTx(model.files(cls).id(record.uid, slot), file);
    });
    return true;
  } catch (err) {
    // Created meanwhile by someone else (the API of a running keel on the same store): theirs stays.
    if (err instanceof Conflict) return false;
    throw err;
  } finally {
    for (const file of staged.values()) file.release();
  }
}
