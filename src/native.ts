// The one place that loads native addons (NATIVE_ADDONS), always straight from the .node file:
// the packages' own loaders fall back to slow pure-JS code when their addon does not load
// (msgpackr, uWebSockets.js) and keel must fail instead.
//
// In the bundle (dist/keel.cjs and the single binary dist/keel) every import of a package's addon
// loader is redirected to loadAddon() by scripts/bundle.mjs, which reads NATIVE_ADDONS. Outside
// the single binary loadAddon() requires the .node file from node_modules; from source the
// packages' loaders run and pick that same file, so Node's module cache makes it one load. In the
// single binary (SEA, see build.sh and docs/build.md) the addons are embedded assets: on first use
// each is written to a private per-build cache directory and loaded with process.dlopen.
import { lstatSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as sea from 'node:sea';
import type * as Uws from 'uWebSockets.js';

/** What a replaced module evaluates to: the addon's exports; a function returning them (the
 * node-gyp-build convention `require('node-gyp-build')(dir)`); or a module whose named export
 * `namedExport` is the addon (an ES module wrapper that loads it with createRequire). */
export type AddonShape = 'addon' | 'loader' | { namedExport: string };

/** How the bundle reaches an addon; scripts/bundle.mjs replaces that module by loadAddon(). */
export type BundleHook =
  /** Imports of `specifier` (only from files matching `importer`, when given) are replaced. */
  | { specifier: RegExp; importer?: RegExp; provides: AddonShape }
  /** The module whose resolved path matches `file` is replaced, whoever imports it. */
  | { file: RegExp; provides: AddonShape };

export interface NativeAddon {
  /** Asset key and cache file name. */
  name: string;
  /** Absolute path of the addon's .node file in this checkout (resolved like its package does). */
  locate(): string;
  /** True if the loaded exports are the real addon (guards against a wrong or stub file). */
  isLoaded(exports: unknown): boolean;
  bundleHook: BundleHook;
}

const moduleUrl = import.meta.url;
const requireHere = createRequire(moduleUrl);
// src/native.ts and dist/keel.cjs both sit one level below the project root.
const projectRoot = fileURLToPath(new URL('..', moduleUrl));

/** Directory of the package whose entry point `specifier` resolves to (nearest package.json). */
function packageDir(specifier: string): string {
  let dir = dirname(requireHere.resolve(specifier));
  while (!fileExists(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above the entry point of ${specifier}`);
    dir = parent;
  }
  return dir;
}

/** The .node file the package's node-gyp-build (or node-gyp-build-optional-packages) loader would pick. */
function nodeGypBuildPath(specifier: string, loaderPackage = 'node-gyp-build-optional-packages'): string {
  const dir = packageDir(specifier);
  const loader = createRequire(join(dir, 'package.json'))(loaderPackage) as { path(dir: string): string };
  return loader.path(dir);
}

function hasFunction(exports: unknown, key: string): boolean {
  return typeof exports === 'object' && exports !== null && typeof (exports as Record<string, unknown>)[key] === 'function';
}

export const NATIVE_ADDONS: readonly NativeAddon[] = [
  {
    name: 'lmdb',
    locate: () => nodeGypBuildPath('lmdb'),
    isLoaded: (e) => hasFunction(e, 'Env'),
    bundleHook: { specifier: /^node-gyp-build-optional-packages$/, importer: /[\\/]node_modules[\\/]lmdb[\\/]/, provides: 'loader' },
  },
  {
    name: 'msgpackr-extract',
    locate: () => nodeGypBuildPath('msgpackr-extract'),
    isLoaded: (e) => hasFunction(e, 'extractStrings'),
    bundleHook: { specifier: /^msgpackr-extract$/, provides: 'addon' },
  },
  {
    name: 'uws',
    locate: () => join(packageDir('uWebSockets.js'), 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`),
    isLoaded: (e) => hasFunction(e, 'App'),
    bundleHook: { specifier: /^uWebSockets\.js$/, provides: 'addon' },
  },
  {
    name: 'dgram-native',
    locate: () => join(projectRoot, 'packages', 'dgram-native', 'build', 'Release', 'dgram_native.node'),
    isLoaded: (e) => hasFunction(e, 'open'),
    bundleHook: { file: /[\\/]packages[\\/]dgram-native[\\/]lib[\\/]binding\.ts$/, provides: { namedExport: 'binding' } },
  },
  {
    // Serial console lines (src/power/console-serial.ts); its package ships an N-API prebuild
    // (prebuilds/linux-x64/@serialport+bindings-cpp.glibc.node), so npm installs it without a compile.
    name: 'serialport',
    locate: () => nodeGypBuildPath('@serialport/bindings-cpp', 'node-gyp-build'),
    isLoaded: (e) => hasFunction(e, 'open') && hasFunction(e, 'Poller'),
    bundleHook: { specifier: /^node-gyp-build$/, importer: /[\\/]node_modules[\\/]@serialport[\\/]bindings-cpp[\\/]/, provides: 'loader' },
  },
];

/** Asset key of an addon inside the single binary. */
export function addonAssetKey(name: string): string {
  return `addon/${name}.node`;
}

// Set by scripts/bundle.mjs (esbuild define): a hash of the version and the embedded addon files,
// so that a new build never loads a previous build's cached copies.
declare const KEEL_BUILD_ID: string | undefined;

// Failures are remembered too: a package loader that swallowed the first failure (msgpackr does)
// and assertNativeAddons() must see the same outcome.
const loaded = new Map<string, { exports: unknown } | { error: Error }>();

function addonNamed(name: string): NativeAddon {
  const addon = NATIVE_ADDONS.find((a) => a.name === name);
  if (!addon) throw new Error(`unknown native addon ${name}`);
  return addon;
}

/** The exports of a native addon; throws (never falls back) if it cannot be loaded. */
export function loadAddon(name: string): unknown {
  let outcome = loaded.get(name);
  if (!outcome) {
    outcome = tryLoad(addonNamed(name));
    loaded.set(name, outcome);
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.exports;
}

function tryLoad(addon: NativeAddon): { exports: unknown } | { error: Error } {
  let exports: unknown;
  try {
    exports = sea.isSea() ? loadEmbedded(addon) : requireHere(addon.locate());
  } catch (err) {
    return { error: new Error(`native addon ${addon.name} failed to load: ${err instanceof Error ? err.message : String(err)}`, { cause: err }) };
  }
  if (!addon.isLoaded(exports)) return { error: new Error(`native addon ${addon.name} loaded but does not export what keel expects`) };
  return { exports };
}

/** uWebSockets.js, always the native addon (its package loader would fall back to a JS server). */
export function loadUws(): typeof Uws {
  return loadAddon('uws') as typeof Uws;
}

/**
 * Loads every addon. Called at start-up so that
 * keel never runs on a JS fallback; the build runs the built binary, so a build whose addons do not
 * load fails too. In the bundle every import of an addon goes through loadAddon() (the bundle
 * fails on any other), and loadAddon() remembers outcomes, so success here means that msgpackr,
 * lmdb and the API server got the native code too.
 */
export function assertNativeAddons(): void {
  // msgpackr does not even try its addon when this is set. (Reading msgpackr's
  // isNativeAccelerationEnabled instead would mean importing msgpackr here, and in the bundle its
  // import of msgpackr-extract leads back to this module: an import cycle.)
  if (process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED?.toLowerCase() === 'true') {
    throw new Error('MSGPACKR_NATIVE_ACCELERATION_DISABLED=true would make msgpackr fall back to JS; unset it');
  }
  for (const addon of NATIVE_ADDONS) {
    loadAddon(addon.name);
  }
}

function fileExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function loadEmbedded(addon: NativeAddon): unknown {
  const bytes = sea.getRawAsset(addonAssetKey(addon.name)) as ArrayBuffer;
  const file = join(assetCacheDir(), `${addon.name}.node`);
  if (!hasSize(file, bytes.byteLength)) writeAtomically(file, new Uint8Array(bytes));
  const module = { exports: {} as unknown };
  process.dlopen(module, file);
  return module.exports;
}

function hasSize(file: string, size: number): boolean {
  try {
    return statSync(file).size === size;
  } catch {
    return false;
  }
}

// Concurrent first runs each write their own temporary file; rename() makes the switch atomic, so
// no process ever dlopens a half-written file.
function writeAtomically(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, bytes, { mode: 0o500, flag: 'wx' });
  renameSync(tmp, file);
}

/** ~/.cache/keel/<build id> (or $XDG_CACHE_HOME/keel/<build id>), private to the running user. */
export function assetCacheDir(): string {
  if (typeof KEEL_BUILD_ID !== 'string') throw new Error('this binary was built without a build id');
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  const keelDir = join(base, 'keel');
  const dir = join(keelDir, KEEL_BUILD_ID);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  assertPrivateDir(keelDir);
  assertPrivateDir(dir);
  return dir;
}

// Whoever can write into these directories can make keel load their code.
function assertPrivateDir(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`addon cache ${dir} is not a directory (symlinks are refused)`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`addon cache ${dir} is owned by uid ${st.uid}, not by the running user (uid ${uid})`);
  if ((st.mode & 0o022) !== 0) {
    throw new Error(`addon cache ${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 700 on it`);
  }
}
