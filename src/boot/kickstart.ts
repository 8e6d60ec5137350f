// Kickstart files: plain files in `<data-dir>/kickstarts/` (an admin may copy files there, or use
// the upload API), served as they are by GET /kickstart/<NAME>, and rendered for one node by
// GET /bootconfig/<UID>/kickstart: every `<variable>` that names one of the node's fields or merged
// attributes is replaced; any other `<…>` (heredocs, redirections, unknown names) stays as is.
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { badRequest, notFound } from '../api/errors.js';
import { mergedAttributes } from '../cluster/model.js';
import type { Store, StoredRecord } from '../store/store.js';

export const KICKSTART_DIR = 'kickstarts';
/** Kickstarts are small text files; anything bigger is a mistake. */
export const MAX_KICKSTART_BYTES = 1024 * 1024;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function kickstartDir(dataDir: string): string {
  return join(resolve(dataDir), KICKSTART_DIR);
}

/** The path of kickstart `name`, refusing names that could leave the directory. */
export function kickstartPath(dataDir: string, name: string): string {
  if (!NAME.test(name)) throw badRequest(`Malformed kickstart name '${name}': letters, digits, . _ - (not starting with . or -), at most 128`);
  return join(kickstartDir(dataDir), name);
}

export async function readKickstart(dataDir: string, name: string): Promise<{ text: string; mtime: number }> {
  const path = kickstartPath(dataDir, name);
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtime: info.mtimeMs / 1000 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') throw notFound(`No kickstart file named ${name}`);
    throw err;
  }
}

export async function kickstartExists(dataDir: string, name: string): Promise<boolean> {
  try {
    return (await stat(kickstartPath(dataDir, name))).isFile();
  } catch {
    return false;
  }
}

/** Write atomically (temp file + rename), so a reader never sees half a file. */
export async function writeKickstart(dataDir: string, name: string, bytes: Buffer): Promise<void> {
  const path = kickstartPath(dataDir, name);
  await mkdir(kickstartDir(dataDir), { recursive: true, mode: 0o755 });
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, bytes, { mode: 0o644 });
  await rename(temp, path);
}

export async function removeKickstart(dataDir: string, name: string): Promise<void> {
  const path = kickstartPath(dataDir, name);
  if (!(await kickstartExists(dataDir, name))) throw notFound(`No kickstart file named ${name}`);
  await rm(path);
}

export async function listKickstarts(dataDir: string): Promise<{ name: string; size: number; mtime: number }[]> {
  let names: string[];
  try {
    names = await readdir(kickstartDir(dataDir));
  } catch {
    return [];
  }
  const out = [];
  for (const name of names.filter((n) => NAME.test(n) && !n.endsWith('.tmp')).sort()) {
    const info = await stat(join(kickstartDir(dataDir), name));
    if (info.isFile()) out.push({ name, size: info.size, mtime: info.mtimeMs / 1000 });
  }
  return out;
}

/**
 * What a kickstart template may use for a node: the scalar fields of its API view (uid, name,
 * hostname, mac, ip, domain, index, type…) and its merged attributes. A field wins over an
 * attribute of the same name.
 */
export function nodeVariables(store: Store, node: StoredRecord, view: Record<string, unknown>): Record<string, string> {
  const vars: Record<string, string> = { ...mergedAttributes(store, node) };
  for (const [key, value] of Object.entries(view)) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') vars[key] = String(value);
  }
  if (typeof view.name === 'string') vars.hostname ??= view.name;
  return vars;
}

/** Replace each `<name>` whose name is in `vars`; everything else is left untouched. */
export function renderKickstart(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/<([A-Za-z_][A-Za-z0-9_.-]*)>/g, (whole, name: string) => (Object.hasOwn(vars, name) ? vars[name]! : whole));
}
