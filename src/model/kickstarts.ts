// Kickstart files: plain files in `<data-dir>/kickstarts/` (an admin may copy files there, or use
// the upload API), named by boot configs. The kickstart registry (spec 004's `/kickstarts`,
// classes/registry.ts) holds kickstarts too: a name is looked up there first, then here
// (docs/registries.md, "Kickstarts"). A boot config may instead name a file in a gitrepo,
// `git:<repo>/<path>[@<ref>]` (classes/gitrepo.ts; read by src/git). Rendering one for a node is
// src/boot/kickstart.ts.
import { statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseGitSource } from './classes/gitrepo.js';
import { Invalid, NotFound } from './errors.js';

export const KICKSTART_DIR = 'kickstarts';
/** Kickstarts are small text files; anything bigger is a mistake. */
export const MAX_KICKSTART_BYTES = 1024 * 1024;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export class KickstartFiles {
  readonly dir: string;

  constructor(
    dataDir: string,
    /** Whether a gitrepo of this name exists, for kickstarts named by `git:` source. */
    private readonly gitRepoExists: (name: string) => boolean = () => false,
    /** The kickstart registry's object of this name, if any: it wins over a file of the same name. */
    private readonly registered: (name: string) => { text: string; mtime: number } | undefined = () => undefined,
  ) {
    this.dir = join(resolve(dataDir), KICKSTART_DIR);
  }

  /** The path of kickstart `name`, refusing names that could leave the directory. */
  path(name: string): string {
    if (!NAME.test(name)) throw new Invalid(`Malformed kickstart name '${name}': letters, digits, . _ - (not starting with . or -), at most 128`);
    return join(this.dir, name);
  }

  async read(name: string): Promise<{ text: string; mtime: number }> {
    const registered = this.registered(name);
    if (registered) return registered;
    const path = this.path(name);
    try {
      const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
      return { text, mtime: info.mtimeMs / 1000 };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') throw new NotFound(`No kickstart file named ${name}`);
      throw err;
    }
  }

  /**
   * Whether `name` is a kickstart file (false for a malformed name). Synchronous: one stat. For a
   * `git:` source, whether its gitrepo exists: the file at a ref changes with every push, and asking
   * git is a process, so a missing path shows when the kickstart is fetched (a 404).
   */
  exists(name: string): boolean {
    const source = parseGitSource(name);
    if (source) return !('problem' in source) && this.gitRepoExists(source.repo);
    if (this.registered(name)) return true;
    try {
      return statSync(this.path(name)).isFile();
    } catch {
      return false;
    }
  }

  /** Write atomically (temp file + rename), so a reader never sees half a file. */
  async write(name: string, bytes: Buffer): Promise<void> {
    const path = this.path(name);
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const temp = `${path}.${process.pid}.tmp`;
    await writeFile(temp, bytes, { mode: 0o644 });
    await rename(temp, path);
  }

  async remove(name: string): Promise<void> {
    const path = this.path(name);
    if (!statSync(path, { throwIfNoEntry: false })?.isFile()) throw new NotFound(`No kickstart file named ${name}`);
    await rm(path);
  }

  async list(): Promise<{ name: string; size: number; mtime: number }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out = [];
    for (const name of names.filter((n) => NAME.test(n) && !n.endsWith('.tmp')).sort()) {
      const info = await stat(join(this.dir, name));
      if (info.isFile()) out.push({ name, size: info.size, mtime: info.mtimeMs / 1000 });
    }
    return out;
  }
}
