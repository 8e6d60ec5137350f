// RPM → TAR, done by keel (spec 002, "TAR Installations"; docs/install.md): the RPM's cpio payload
// becomes a tar.gz meant to be unpacked into /opt/keel/<package-name>. Files the RPM installs under
// that directory sit at the archive's top; every other file sits under `pkg/` at its installed
// path (pkg/usr/bin/…, pkg/etc/…), and the install, uninstall, transaction and trigger scripts of
// the header are in `pkg/scripts/`. The archive is written to a temporary name beside its final
// one, flushed, and renamed into place: a reader sees a whole archive or none.
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';

type TarHeaders = Partial<Header> & Pick<Header, 'name'>;
import { readCpio, type CpioMember } from './cpio.js';
import { compressionOf, decompress } from './decompress.js';
import { PackageError, readRpm, TAG, type RpmHeader } from './rpm.js';

/** The directory under /opt that keel's TAR packages unpack into: /opt/keel/<package-name>. */
export const OPT_VENDOR = 'keel';

/** The header's scripts and the file each becomes under pkg/scripts/ (rpm's scriptlet names). */
const SCRIPTS = [
  { file: 'pretrans', script: TAG.pretrans, prog: TAG.pretransProg },
  { file: 'preinstall', script: TAG.prein, prog: TAG.preinProg },
  { file: 'postinstall', script: TAG.postin, prog: TAG.postinProg },
  { file: 'preuninstall', script: TAG.preun, prog: TAG.preunProg },
  { file: 'postuninstall', script: TAG.postun, prog: TAG.postunProg },
  { file: 'posttrans', script: TAG.posttrans, prog: TAG.posttransProg },
] as const;

// rpm's RPMSENSE_TRIGGER* flags: which event a trigger script runs on.
const TRIGGER_KINDS: readonly [flag: number, kind: string][] = [[1 << 16, 'triggerin'], [1 << 17, 'triggerun'], [1 << 18, 'triggerpostun'], [1 << 25, 'triggerprein']];

export interface PackageScript {
  /** Relative to pkg/scripts/. */
  file: string;
  text: string;
}

/** A script's text as a file: its interpreter as a `#!` line unless it has one; rpm's built-in Lua as `.lua`. */
function scriptFile(file: string, text: string, prog: string | undefined): PackageScript {
  if (prog === '<lua>') return { file: `${file}.lua`, text };
  const shebang = text.startsWith('#!') ? '' : `#!${prog ?? '/bin/sh'}\n`;
  return { file, text: shebang + text + (text.endsWith('\n') ? '' : '\n') };
}

/** Every script of the header (install, uninstall, transaction, triggers), as files of pkg/scripts/. */
export function packageScripts(header: RpmHeader): PackageScript[] {
  const scripts: PackageScript[] = [];
  for (const { file, script, prog } of SCRIPTS) {
    const text = header.string(script);
    if (text !== undefined) scripts.push(scriptFile(file, text, header.string(prog)));
  }
  // Trigger n's script is TRIGGERSCRIPTS[n]; the packages it fires on are the TRIGGERNAME entries whose TRIGGERINDEX is n.
  const texts = header.strings(TAG.triggerScripts);
  const progs = header.strings(TAG.triggerScriptProg);
  const names = header.strings(TAG.triggerName);
  const versions = header.strings(TAG.triggerVersion);
  const flags = header.numbers(TAG.triggerFlags);
  const indexes = header.numbers(TAG.triggerIndex);
  texts.forEach((text, n) => {
    const on = names.flatMap((name, i) => (indexes[i] === n ? [`${name}${versions[i] ? ` ${versions[i]}` : ''}`] : []));
    const first = names.findIndex((_, i) => indexes[i] === n);
    const kind = TRIGGER_KINDS.find(([flag]) => ((flags[first] ?? 0) & flag) !== 0)?.[1] ?? 'trigger';
    const script = scriptFile(`${kind}-${n}`, text, progs[n]);
    // Which packages fire it, as a comment after the #! line: the TAR installer never runs triggers (spec 002).
    const lines = script.text.split('\n');
    const at = lines[0]!.startsWith('#!') ? 1 : 0;
    if (!script.file.endsWith('.lua')) lines.splice(at, 0, `# rpm ${kind} on: ${on.join(', ')}`);
    scripts.push({ file: script.file, text: lines.join('\n') });
  });
  return scripts;
}

const S_IFMT = 0o170000;
const TYPES = new Map<number, Header['type']>([
  [0o100000, 'file'], [0o040000, 'directory'], [0o120000, 'symlink'],
  [0o020000, 'character-device'], [0o060000, 'block-device'], [0o010000, 'fifo'],
]);

async function collect(data: AsyncIterable<Buffer>, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of data) {
    size += piece.length;
    if (size > limit) throw new PackageError(`Corrupt RPM payload: ${what} is longer than ${limit} bytes`);
    parts.push(piece);
  }
  return Buffer.concat(parts, size);
}

/** Adds one entry to `pack`, its data streamed from `data`, and waits until it is written. */
async function addEntry(pack: Pack, header: TarHeaders, data?: AsyncIterable<Buffer> | Buffer): Promise<void> {
  let done!: Promise<void>;
  const entry = await new Promise<NodeJS.WritableStream>((resolveEntry) => {
    done = new Promise<void>((resolve, reject) => {
      resolveEntry(pack.entry(header, (err) => (err ? reject(err) : resolve())));
    });
  });
  // When the data fails midway the archive is destroyed and the entry fails too: that is the data's error, reported by the caller.
  done.catch(() => {});
  (entry as NodeJS.EventEmitter).on('error', () => {});
  if (Buffer.isBuffer(data)) entry.write(data);
  else if (data) {
    for await (const piece of data) {
      if (!entry.write(piece)) await once(entry as NodeJS.EventEmitter, 'drain');
    }
  }
  entry.end();
  await done;
}

/** Where a payload member goes in the archive, or undefined for the package directory itself and its parents. */
function archiveName(name: string, packageDir: string): string | undefined {
  if (name === packageDir || packageDir.startsWith(`${name}/`)) return undefined;
  return name.startsWith(`${packageDir}/`) ? name.slice(packageDir.length + 1) : `pkg/${name}`;
}

/** Writes the payload's members and the header's scripts into `pack`. */
async function fillArchive(pack: Pack, members: AsyncIterable<CpioMember>, header: RpmHeader): Promise<void> {
  const packageDir = `opt/${OPT_VENDOR}/${header.string(TAG.name)!}`;
  const owner = { uid: 0, gid: 0, uname: 'root', gname: 'root' };
  // newc stores a hard-linked file's data with the last of its names: the earlier ones wait here.
  const linked = new Map<number, { names: string[]; mode: number; mtime: number }>();
  for await (const member of members) {
    const name = archiveName(member.name, packageDir);
    const type = TYPES.get(member.mode & S_IFMT);
    if (name === undefined || type === undefined) continue;
    const common = { ...owner, name, mode: member.mode & 0o7777, mtime: new Date(member.mtime * 1000) };
    if (type === 'symlink') {
      const target = (await collect(member.data, 4096, `the target of symlink ${member.name}`)).toString('utf8');
      await addEntry(pack, { ...common, type, linkname: target });
    } else if (type === 'file' && member.nlink > 1 && member.size === 0) {
      const waiting = linked.get(member.ino) ?? { names: [], mode: common.mode, mtime: member.mtime };
      waiting.names.push(name);
      linked.set(member.ino, waiting);
    } else if (type === 'file') {
      await addEntry(pack, { ...common, type, size: member.size }, member.data);
      for (const other of linked.get(member.ino)?.names ?? []) await addEntry(pack, { ...common, name: other, type: 'link', linkname: name });
      linked.delete(member.ino);
    } else {
      await addEntry(pack, { ...common, type, devmajor: member.rdevmajor, devminor: member.rdevminor });
    }
  }
  // Hard-linked names whose data never came: empty files, linked to the first.
  for (const { names, mode, mtime } of linked.values()) {
    const [first, ...others] = names;
    await addEntry(pack, { ...owner, name: first!, mode, mtime: new Date(mtime * 1000), type: 'file', size: 0 }, Buffer.alloc(0));
    for (const other of others) await addEntry(pack, { ...owner, name: other, mode, mtime: new Date(mtime * 1000), type: 'link', linkname: first! });
  }
  for (const script of packageScripts(header)) {
    const bytes = Buffer.from(script.text, 'utf8');
    await addEntry(pack, { ...owner, name: `pkg/scripts/${script.file}`, mode: 0o755, mtime: new Date(0), type: 'file', size: bytes.length }, bytes);
  }
}

export interface ConvertOptions {
  /** The most the payload may expand to (install.max_expanded_bytes). */
  maxExpandedBytes: number;
}

/** Converts the RPM at `rpmPath` into the tar.gz `tarPath`, atomically; a package that cannot be converted is a PackageError and leaves nothing. */
export async function convertRpmToTar(rpmPath: string, tarPath: string, temp: string, options: ConvertOptions): Promise<void> {
  const file = await open(rpmPath, 'r');
  let layout;
  let head: Buffer;
  try {
    const { size } = await file.stat();
    layout = await readRpm(file, size);
    head = Buffer.alloc(6);
    const { bytesRead } = await file.read(head, 0, 6, layout.payloadOffset);
    if (bytesRead < 6) throw new PackageError('Truncated RPM: no payload after the header');
  } finally {
    await file.close();
  }
  const compression = compressionOf(head);
  if (compression === undefined) throw new PackageError(`Unsupported or corrupt RPM payload: unknown compression (the header says ${layout.header.string(TAG.payloadCompressor) ?? 'nothing'})`);
  const raw = createReadStream(rpmPath, { start: layout.payloadOffset });
  const payload = decompress(compression, raw, options.maxExpandedBytes);
  const pack = tarPack();
  const written = pipeline(pack, createGzip(), createWriteStream(temp, { flags: 'wx', mode: 0o644, flush: true }));
  try {
    await fillArchive(pack, readCpio(payload), layout.header);
    pack.finalize();
    await written;
    await rename(temp, tarPath);
    const dir = await open(dirname(tarPath), 'r');
    await dir.sync().finally(() => dir.close());
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => {});
    await rm(temp, { force: true });
    throw err;
  } finally {
    raw.destroy();
  }
}
