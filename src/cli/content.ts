// `keel image import` and `keel bootconfig create`: an image or a boot config made through a
// running keel's API, its files uploaded with progress (client.ts). What they create is exactly
// what POST /images, POST /bootconfigs and the file PUTs create; a failed upload removes the object
// the command created, so running it again works.
import { statSync } from 'node:fs';
import { ApiError, type ApiClient, type Progress } from './client.js';

export interface ImageImport {
  name: string;
  file: string;
  description?: string;
  /** Upload into an existing image of that name (replacing its content) instead of refusing. */
  replace?: boolean;
}

export interface BootConfigCreate {
  name: string;
  kernel: string;
  initramfs: string;
  image?: string;
  cmdline?: string;
  bootStyle?: string;
  description?: string;
}

/** Refuse a file that cannot be read before anything is created. */
function checkFile(what: string, file: string): void {
  let isFile = false;
  try {
    isFile = statSync(file).isFile();
  } catch (err) {
    throw new Error(`${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (!isFile) throw new Error(`${what} ${file}: not a regular file`);
}

/** Uid of the object `id` names, or undefined when there is none (404). */
async function existing(api: ApiClient, path: string): Promise<string | undefined> {
  try {
    return ((await api.call('GET', path)) as { uid: string }).uid;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** Run `upload` for an object just created; on failure delete that object again, then rethrow. */
async function uploadOrUndo(api: ApiClient, objectPath: string, created: boolean, upload: () => Promise<void>): Promise<void> {
  try {
    await upload();
  } catch (err) {
    if (created) await api.call('DELETE', objectPath).catch(() => {});
    throw err;
  }
}

/** Create the image (or, with `replace`, reuse it) and upload its content. Returns its uid and what the API says of the content. */
export async function importImage(api: ApiClient, options: ImageImport, progress: Progress): Promise<{ uid: string; content: unknown }> {
  checkFile('Image file', options.file);
  const path = `/image/${encodeURIComponent(options.name)}`;
  let uid = await existing(api, path);
  if (uid !== undefined && !options.replace) throw new Error(`Image ${options.name} exists; pass --replace to upload new content into it`);
  const created = uid === undefined;
  uid ??= (await api.call('POST', '/images', { name: options.name, ...(options.description === undefined ? {} : { description: options.description }) })) as string;
  let content: unknown;
  await uploadOrUndo(api, `/image/${uid}`, created, async () => {
    content = await api.upload(`/image/${uid}/content`, options.file, progress);
  });
  return { uid, content };
}

/** Create the boot config and upload its kernel and initramfs. Returns its uid. */
export async function createBootConfig(api: ApiClient, options: BootConfigCreate, progress: () => Progress): Promise<string> {
  checkFile('Kernel', options.kernel);
  checkFile('Initramfs', options.initramfs);
  const fields: Record<string, unknown> = { name: options.name };
  if (options.image !== undefined) fields.image = options.image;
  if (options.cmdline !== undefined) fields.cmdline = options.cmdline;
  if (options.bootStyle !== undefined) fields.boot_style = options.bootStyle;
  if (options.description !== undefined) fields.description = options.description;
  const uid = (await api.call('POST', '/bootconfigs', fields)) as string;
  await uploadOrUndo(api, `/bootconfig/${uid}`, true, async () => {
    await api.upload(`/bootconfig/${uid}/kernel`, options.kernel, progress());
    await api.upload(`/bootconfig/${uid}/initramfs`, options.initramfs, progress());
  });
  return uid;
}
