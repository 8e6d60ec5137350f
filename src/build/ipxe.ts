// Spec 004's /ipxes builder: iPXE compiled with the request's script embedded
// (`make <platform>/<driver>.<extension> EMBED=<script>`). The source is build.ipxe_source (a
// tarball, unpacked once into <work_dir>/ipxe/tree, or an unpacked tree); iPXE keeps one object
// directory per platform inside the tree (src/bin-x86_64-efi, src/bin-x86_64-pcbios, src/bin), so
// after the first build of a platform a new script only recompiles embedded.o and relinks. One
// build at a time uses a tree: the whole step runs under flock(1) on <work_dir>/ipxe/lock, which
// also holds off another keel (or a build a crashed keel left running) sharing the directory.
// docs/builders.md.
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { Invalid } from '../model/errors.js';
import { isPlainObject } from '../model/schema.js';
import type { Builder, BuildRun } from './queue.js';

/** Longest embedded script: it is linked into the binary, and chains to the real (mainscript) logic. */
export const MAX_IPXE_SCRIPT_BYTES = 64 * 1024;

/**
 * The platforms keel builds and the extensions each can link. `bin` is iPXE's i386 BIOS platform
 * (spec 004 builds `bin/ipxe.lkrn` from it); `bin-x86_64-pcbios` the x86-64 BIOS one.
 */
export const IPXE_TARGETS: Readonly<Record<string, readonly string[]>> = {
  'bin-x86_64-efi': ['efi'],
  'bin-i386-efi': ['efi'],
  'bin-x86_64-pcbios': ['kpxe', 'kkpxe', 'pxe', 'lkrn'],
  bin: ['kpxe', 'kkpxe', 'pxe', 'lkrn'],
};

/** iPXE's driver names (`ipxe` = all drivers, `undionly`, `snponly`, `intel`, `virtio-net`, …). */
const DRIVER = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * Lines a cold build of a platform prints before linking ([DEPS] and [BUILD], measured on this
 * source): the progress of a cold build is the share of them seen. A warm build prints few and
 * reaches the link steps at once.
 */
const COLD_BUILD_STEPS: Readonly<Record<string, number>> = {
  'bin-x86_64-efi': 2911,
  'bin-i386-efi': 2900,
  'bin-x86_64-pcbios': 2933,
  bin: 2933,
};

/** Progress milestones of the build step's output. */
const SOURCE_READY = 5;
const COMPILED = 85;
const LINKED = 90;
const FINISHED = 95;

/** The programs a build runs, and the Debian package of each (what a failed job names). */
const TOOLS: readonly (readonly [program: string, pkg: string])[] = [
  ['flock', 'util-linux'], ['tar', 'tar'], ['xz', 'xz-utils'], ['make', 'make'], ['gcc', 'gcc'],
  ['ld', 'binutils'], ['objcopy', 'binutils'], ['ar', 'binutils'], ['perl', 'perl'],
];

export interface IpxeBuilderOptions {
  /** build.ipxe_source: a tarball or a tree; null: unset. */
  source: string | null;
  /** build.work_dir (its `ipxe/` folder is this builder's). */
  workDir: string;
  /** The build's environment (PATH finds the toolchain); default: keel's. */
  env?: NodeJS.ProcessEnv;
}

export interface IpxeParams extends Record<string, unknown> {
  script: string;
  platform: string;
  driver: string;
  extension: string;
}

export class IpxeBuilder implements Builder {
  readonly kind = 'ipxe';
  private readonly dir: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(private readonly options: IpxeBuilderOptions) {
    this.dir = join(resolve(options.workDir), 'ipxe');
    this.env = options.env ?? process.env;
  }

  params(body: unknown): IpxeParams {
    if (!isPlainObject(body)) throw new Invalid('Expected a JSON object {"script", "platform", "driver", "extension"}');
    const unknown = Object.keys(body).filter((key) => !['script', 'platform', 'driver', 'extension'].includes(key));
    if (unknown.length > 0) throw new Invalid(`Unknown field '${unknown[0]}': an iPXE build takes script, platform, driver and extension`);
    const { script, platform, driver, extension } = body;
    if (typeof script !== 'string' || !/^#!(ipxe|gpxe)\s/.test(script)) throw new Invalid(`Field 'script' must be an iPXE script starting with '#!ipxe' and a line break`);
    if (Buffer.byteLength(script) > MAX_IPXE_SCRIPT_BYTES) throw new Invalid(`Field 'script' must have at most ${MAX_IPXE_SCRIPT_BYTES} bytes`);
    if (script.includes('\0')) throw new Invalid(`Field 'script' must be text (it contains NUL characters)`);
    if (typeof platform !== 'string' || !(platform in IPXE_TARGETS)) throw new Invalid(`Field 'platform' must be one of ${Object.keys(IPXE_TARGETS).join(', ')}`);
    if (typeof driver !== 'string' || !DRIVER.test(driver)) throw new Invalid(`Field 'driver' must be an iPXE driver name (ipxe, undionly, snponly, intel, …): lower-case letters, digits, '-', '_'`);
    const extensions = IPXE_TARGETS[platform]!;
    if (typeof extension !== 'string' || !extensions.includes(extension)) throw new Invalid(`Field 'extension' must be one of ${extensions.join(', ')} for platform ${platform}`);
    return { script, platform, driver, extension };
  }

  fileName(params: Record<string, unknown>): string {
    return `${String(params.driver)}.${String(params.extension)}`;
  }

  async build(run: BuildRun): Promise<string> {
    const { script, platform, driver, extension } = run.job.params as IpxeParams;
    this.checkToolchain();
    const source = this.checkSource();
    mkdirSync(join(this.dir, 'embed'), { recursive: true });
    mkdirSync(join(this.dir, 'out'), { recursive: true });
    const embed = join(this.dir, 'embed', `${run.job.uid}.ipxe`);
    const output = join(this.dir, 'out', `${run.job.uid}.${extension}`);
    writeFileSync(embed, script);
    const target = `${platform}/${driver}.${extension}`;
    const expected = COLD_BUILD_STEPS[platform]!;
    let units = 0;
    let percent = 0;
    const rise = (to: number) => {
      percent = Math.max(percent, to);
      run.progress(percent);
    };
    try {
      run.log(`waiting for ${join(this.dir, 'lock')} (one build per source tree at a time)`);
      await run.exec('flock', [join(this.dir, 'lock'), 'sh', '-euc', BUILD_SCRIPT, 'ipxe-build',
        source.tarball ?? '', source.sha256 ?? '', source.tree, target, embed, output, String(availableParallelism())], {
        cwd: this.dir,
        env: this.env,
        onLine: (line) => {
          if (line === 'keel: source ready') rise(SOURCE_READY);
          else if (/^\s*\[(DEPS|BUILD)\]/.test(line)) rise(SOURCE_READY + ((COMPILED - SOURCE_READY) * Math.min(++units, expected)) / expected);
          else if (/^\s*\[(AR|LD)\]/.test(line)) rise(COMPILED);
          else if (/^\s*\[(BIN|ZBIN|ZINFO)\]/.test(line)) rise(LINKED);
          else if (/^\s*\[FINISH\]/.test(line)) rise(FINISHED);
        },
      });
      return output;
    } finally {
      rmSync(embed, { force: true });
    }
  }

  /** Throws naming the first program (and its Debian package) the build's PATH lacks, and liblzma's headers. */
  private checkToolchain(): void {
    const path = (this.env.PATH ?? '').split(delimiter).filter(Boolean);
    for (const [program, pkg] of TOOLS) {
      const found = path.some((dir) => {
        try {
          accessSync(join(dir, program), constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
      if (!found) throw new Error(`The iPXE toolchain is incomplete: ${program} is not on the build's PATH (${path.join(delimiter) || 'empty'}); install the Debian package ${pkg}`);
    }
  }

  /** Where the source is, or throws naming build.ipxe_source and what is wrong with it. */
  private checkSource(): { tree: string; tarball?: string; sha256?: string } {
    const configured = this.options.source;
    if (configured === null) throw new Error('No iPXE source: build.ipxe_source is unset (the iPXE source tarball or tree; docs/builders.md)');
    const path = resolve(configured);
    if (!existsSync(path)) throw new Error(`No iPXE source: build.ipxe_source ${path} does not exist (docs/builders.md says where to get it)`);
    if (statSync(path).isDirectory()) {
      if (!existsSync(join(path, 'src', 'Makefile'))) throw new Error(`build.ipxe_source ${path} is not an iPXE source tree (no src/Makefile)`);
      return { tree: path };
    }
    // The tree is unpacked again when the tarball's content changes, not when it is merely touched.
    const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
    return { tree: join(this.dir, 'tree'), tarball: path, sha256 };
  }
}

/**
 * The build step, run under the tree's lock: unpack the tarball when the tree is missing or from
 * another tarball (into a fresh directory, renamed into place, so an interrupted unpack leaves no
 * half tree), then make the target and copy it out before the lock is released.
 * Arguments: tarball (empty for a tree), its sha256, tree, target, embed file, output, jobs.
 */
const BUILD_SCRIPT = `
tarball=$1 sha256=$2 tree=$3 target=$4 embed=$5 output=$6 jobs=$7
if [ -n "$tarball" ] && [ "$(cat "$tree/.keel-source" 2>/dev/null)" != "$sha256" ]; then
  echo "keel: unpacking $tarball into $tree"
  rm -rf "$tree.new" "$tree"
  mkdir -p "$tree.new"
  tar -xf "$tarball" -C "$tree.new"
  if [ ! -f "$tree.new/src/Makefile" ]; then echo "keel: $tarball holds no src/Makefile: not an iPXE source tarball" >&2; exit 1; fi
  printf %s "$sha256" > "$tree.new/.keel-source"
  mv "$tree.new" "$tree"
fi
echo "keel: source ready"
cd "$tree/src"
# iPXE touches a shared header (config/named.h, include/assert.h, include/ipxe/profile.h,
# include/compiler.h) when a platform's bin-*/.<option>.list is first written, which makes every
# other platform's objects stale: written here beforehand, as make writes them (no named
# configuration, assertions, profiling or function recording) and no newer than their headers,
# the first build of a platform leaves the others' objects alone.
bin=\${target%%/*}
mkdir -p "$bin"
for pair in config:config/named.h assert:include/assert.h profile:include/ipxe/profile.h fnrec:include/compiler.h; do
  list="$bin/.\${pair%%:*}.list"
  if [ ! -f "$list" ]; then echo > "$list"; touch -r "\${pair#*:}" "$list"; fi
done
make -j"$jobs" "$target" EMBED="$embed"
cp "$target" "$output"
`;
