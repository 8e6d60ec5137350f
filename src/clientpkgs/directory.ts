// The client packages directory (spec 002, "Head Node Preparation"; docs/install.md):
// `<dir>/{rpm,deb,tar,installers}`, filled by admins copying files. Finds the package a download
// names (spec 000's rules: type and architecture aliases, exact name, then `<name>-<version>…`
// with the newest version first) and turns an RPM into a TAR on demand, cached in tar/: one
// conversion per package at a time, a second request waits for the first and reuses its result.
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { convertRpmToTar } from './convert.js';

export const PACKAGE_TYPES = ['rpm', 'deb', 'tar'] as const;
export type PackageType = (typeof PACKAGE_TYPES)[number];
export const SUBDIRECTORIES = [...PACKAGE_TYPES, 'installers'] as const;

/** Spec 000's package type names: tar, tgz and tar.gz are one type. */
const TYPE_ALIASES: Readonly<Record<string, PackageType>> = { rpm: 'rpm', deb: 'deb', tar: 'tar', tgz: 'tar', 'tar.gz': 'tar' };
/** Spec 000's architectures: the RHEL names, with the Debian names as aliases. */
const ARCH_ALIASES: Readonly<Record<string, string>> = { x86_64: 'x86_64', amd64: 'x86_64', aarch64: 'aarch64', arm64: 'aarch64' };
/** Architectures in file names that fit any machine. */
const ANY_ARCH = new Set(['noarch', 'all']);

export const DEFAULT_TYPE: PackageType = 'tar';
export const DEFAULT_ARCH = 'x86_64';
/** What the listing notes for an RPM that a TAR request converts. */
export const CONVERSION_NOTE = 'automated rpm-to-tar conversion';
const TAR_SUFFIXES = ['.tar.gz', '.tgz'];
const PARTIAL = '.partial';

/** A request the directory cannot answer as asked: bad input (400) or nothing found (404). */
export class PackageRequestError extends Error {
  override name = 'PackageRequestError';
  constructor(readonly kind: 'invalid' | 'not-found' | 'ambiguous', message: string) {
    super(message);
  }
}

export function packageType(text: string): PackageType {
  const type = TYPE_ALIASES[text.toLowerCase()];
  if (!type) throw new PackageRequestError('invalid', `Unknown package type '${text}': one of rpm, deb, tar, tgz, tar.gz`);
  return type;
}

export function packageArch(text: string): string {
  const arch = ARCH_ALIASES[text.toLowerCase()];
  if (!arch) throw new PackageRequestError('invalid', `Unknown architecture '${text}': one of x86_64, amd64, aarch64, arm64`);
  return arch;
}

const PACKAGE_NAME = /^[A-Za-z0-9+_~^][A-Za-z0-9._+~^:-]{0,254}$/;

/** What a file's name says of it: RPM and converted TARs N-V-R.A, DEBs N_V_A. */
export interface PackageFile {
  type: PackageType;
  file: string;
  /** The name without its extension. */
  stem: string;
  name: string;
  /** Version and release, for ordering; '' when the name has none. */
  version: string;
  /** Normalised (x86_64, aarch64), 'any' (noarch, all), or undefined when the name has none. */
  arch: string | undefined;
  size: number;
  mtimeMs: number;
}

function archOf(text: string): string | undefined {
  if (ANY_ARCH.has(text)) return 'any';
  return ARCH_ALIASES[text] ?? (/^(i[3-6]86|ppc64le|s390x|riscv64|armhf|armv7hl|src)$/.test(text) ? text : undefined);
}

/** Name, version and architecture from a file name (the file's stem without extension). */
export function describe(type: PackageType, stem: string): Pick<PackageFile, 'name' | 'version' | 'arch'> {
  if (type === 'deb') {
    const [name, version, arch] = stem.split('_');
    if (name && version && arch) return { name, version, arch: archOf(arch) };
    return { name: stem, version: '', arch: undefined };
  }
  // N-V-R.A (an RPM, or a TAR converted from one): the architecture after the last dot, release and version after the last two dashes.
  const dot = stem.lastIndexOf('.');
  const arch = dot > 0 ? archOf(stem.slice(dot + 1)) : undefined;
  const nvr = arch === undefined ? stem : stem.slice(0, dot);
  const parts = nvr.split('-');
  if (parts.length >= 3) return { name: parts.slice(0, -2).join('-'), version: parts.slice(-2).join('-'), arch };
  return { name: nvr, version: '', arch };
}

/**
 * rpm's version comparison (rpmvercmp): runs of digits compare as numbers, runs of letters as
 * text, digits beat letters, `~` sorts before anything (pre-releases), `^` after (snapshots).
 */
export function compareVersions(a: string, b: string): number {
  let i = 0;
  let j = 0;
  for (;;) {
    while (i < a.length && !/[A-Za-z0-9~^]/.test(a[i]!)) i++;
    while (j < b.length && !/[A-Za-z0-9~^]/.test(b[j]!)) j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = /[0-9]/.test(a[i]!);
    const run = numeric ? /^[0-9]+/ : /^[A-Za-z]+/;
    const x = run.exec(a.slice(i))?.[0] ?? '';
    const y = run.exec(b.slice(j))?.[0] ?? '';
    if (y === '') return numeric ? 1 : -1;
    i += x.length;
    j += y.length;
    // Numbers without leading zeros: the longer is the larger, else the digits compare as text (strcmp).
    const [p, q] = numeric ? [x.replace(/^0+/, ''), y.replace(/^0+/, '')] : [x, y];
    if (numeric && p.length !== q.length) return p.length > q.length ? 1 : -1;
    if (p !== q) return p > q ? 1 : -1;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

/** `<version>-<release>` (or a Debian version) ordered as rpm does: versions first, then releases. */
export function compareVersionRelease(a: string, b: string): number {
  const split = (text: string) => {
    const dash = text.lastIndexOf('-');
    return dash < 0 ? [text, ''] : [text.slice(0, dash), text.slice(dash + 1)];
  };
  const [va, ra] = split(a);
  const [vb, rb] = split(b);
  return compareVersions(va!, vb!) || compareVersions(ra!, rb!);
}

export interface Listing {
  tar: { name: string; size: number; note?: string }[];
  rpm: { name: string; size: number }[];
  deb: { name: string; size: number }[];
}

/** A package to send: the file, and its name for Content-Disposition. */
export interface FoundPackage {
  path: string;
  file: string;
  type: PackageType;
}

export interface PackageRequest {
  name: string;
  type: PackageType;
  arch: string;
}

export class ClientPackages {
  /** Conversions running, by the TAR they write: a second request for one waits for it. */
  private readonly conversions = new Map<string, Promise<void>>();
  private conversionCount = 0;

  constructor(
    readonly dir: string,
    private readonly maxExpandedBytes: number,
    private readonly log: Logger,
  ) {}

  /** Creates the directories, and removes what a conversion cut short by a crash left in tar/. */
  prepare(): void {
    for (const sub of SUBDIRECTORIES) mkdirSync(join(this.dir, sub), { recursive: true, mode: 0o755 });
    for (const name of readdirSync(join(this.dir, 'tar'))) {
      if (name.startsWith('.') && name.endsWith(PARTIAL)) rmSync(join(this.dir, 'tar', name), { force: true });
    }
  }

  /** The packages of one type directory (regular files, no hidden ones), by file name. */
  files(type: PackageType): PackageFile[] {
    const dir = join(this.dir, type);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    const out: PackageFile[] = [];
    for (const file of names.sort()) {
      if (file.startsWith('.')) continue;
      const suffix = type === 'tar' ? TAR_SUFFIXES.find((s) => file.endsWith(s)) : file.endsWith(`.${type}`) ? `.${type}` : undefined;
      if (suffix === undefined) continue;
      const info = statSync(join(dir, file), { throwIfNoEntry: false });
      if (!info?.isFile()) continue;
      const stem = file.slice(0, -suffix.length);
      out.push({ type, file, stem, ...describe(type, stem), size: info.size, mtimeMs: info.mtimeMs });
    }
    return out;
  }

  /** GET /install/client/download: every package by type; RPMs with no TAR yet also as convertible TARs. */
  list(): Listing {
    const tars = this.files('tar');
    const rpms = this.files('rpm');
    const converted = new Set(tars.map((tar) => tar.stem));
    return {
      tar: [
        ...tars.map((f) => ({ name: f.file, size: f.size })),
        ...rpms.filter((rpm) => !converted.has(rpm.stem)).map((rpm) => ({ name: `${rpm.stem}.tar.gz`, size: rpm.size, note: CONVERSION_NOTE })),
      ],
      rpm: rpms.map((f) => ({ name: f.file, size: f.size })),
      deb: this.files('deb').map((f) => ({ name: f.file, size: f.size })),
    };
  }

  /** The package `request` names, converted from an RPM when a TAR is asked for and none is there. */
  async find(request: PackageRequest): Promise<FoundPackage> {
    if (!PACKAGE_NAME.test(request.name)) throw new PackageRequestError('invalid', `Malformed package name '${request.name}'`);
    if (request.type !== 'tar') {
      const file = choose(this.files(request.type), request);
      return { path: join(this.dir, request.type, file.file), file: file.file, type: request.type };
    }
    // TARs: those in tar/ and those its RPMs would convert to, as one set of candidates.
    const rpms = this.files('rpm');
    const rpmStems = new Map(rpms.map((rpm) => [rpm.stem, rpm]));
    const tars = this.files('tar').filter((tar) => !rpmStems.has(tar.stem));
    const chosen = choose([...tars, ...rpms], request);
    if (chosen.type === 'tar') return { path: join(this.dir, 'tar', chosen.file), file: chosen.file, type: 'tar' };
    const file = `${chosen.stem}.tar.gz`;
    const path = join(this.dir, 'tar', file);
    await this.converted(join(this.dir, 'rpm', chosen.file), path);
    return { path, file, type: 'tar' };
  }

  /** Makes sure `tarPath` holds the conversion of `rpmPath`, no older than it: converts, or waits for the conversion running. */
  private async converted(rpmPath: string, tarPath: string): Promise<void> {
    for (;;) {
      const running = this.conversions.get(tarPath);
      if (running) {
        await running;
        continue;
      }
      const tar = statSync(tarPath, { throwIfNoEntry: false });
      const rpm = statSync(rpmPath, { throwIfNoEntry: false });
      if (!rpm) throw new PackageRequestError('not-found', `${rpmPath} went away`);
      if (tar && tar.mtimeMs >= rpm.mtimeMs) return;
      const temp = join(this.dir, 'tar', `.${tarPath.slice(tarPath.lastIndexOf('/') + 1)}.${process.pid}.${++this.conversionCount}${PARTIAL}`);
      const conversion = convertRpmToTar(rpmPath, tarPath, temp, { maxExpandedBytes: this.maxExpandedBytes });
      this.conversions.set(tarPath, conversion);
      const started = Date.now();
      try {
        await conversion;
        this.log.info({ rpm: rpmPath, tar: tarPath, ms: Date.now() - started }, 'converted an RPM to a TAR');
        return;
      } catch (err) {
        this.log.warn({ rpm: rpmPath, err: (err as Error).message }, 'cannot convert an RPM to a TAR');
        throw err;
      } finally {
        this.conversions.delete(tarPath);
      }
    }
  }
}

/** The file `request` names among `files` (spec 000's rules); throws PackageRequestError for none or several. */
function choose(files: readonly PackageFile[], request: PackageRequest): PackageFile {
  const exact = files.filter((f) => f.stem === request.name || f.file === request.name);
  if (exact.length > 0) return exact.find((f) => f.type === 'tar') ?? exact[0]!;
  const fits = (f: PackageFile) => f.arch === undefined || f.arch === 'any' || f.arch === request.arch;
  const prefixed = files.filter((f) => fits(f) && (f.name === request.name || f.stem.startsWith(`${request.name}-`) || f.stem.startsWith(`${request.name}_`)));
  // A package named exactly so wins over packages whose names merely start with it (keel over keel-agent).
  const named = prefixed.filter((f) => f.name === request.name);
  const candidates = named.length > 0 ? named : prefixed;
  if (candidates.length === 0) throw new PackageRequestError('not-found', `No ${request.type} package ${request.name} for ${request.arch}`);
  const names = [...new Set(candidates.map((f) => f.name))];
  if (names.length > 1) throw new PackageRequestError('ambiguous', `Package name ${request.name} is ambiguous: it matches ${candidates.map((f) => f.file).join(', ')}; name one of them`);
  // Newest first; of one version, the build for this very architecture before a noarch one.
  const ranked = [...candidates].sort((a, b) => compareVersionRelease(b.version, a.version) || Number(b.arch === request.arch) - Number(a.arch === request.arch));
  const [best, next] = ranked;
  if (next && compareVersionRelease(best!.version, next.version) === 0 && (best!.arch === request.arch) === (next.arch === request.arch))
    throw new PackageRequestError('ambiguous', `Package name ${request.name} is ambiguous: ${best!.file} and ${next.file} have the same version; name one of them`);
  return best!;
}
