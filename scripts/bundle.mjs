// `npm run build`: bundles src/main.ts into dist/keel.cjs (one CommonJS file for Node 20) and
// writes dist/sea-config.json, from which build.sh makes the single binary dist/keel.
//
// Native addons are never bundled. Every import that would load one (see NATIVE_ADDONS in
// src/native.ts: lmdb's node-gyp-build loader, msgpackr-extract, uWebSockets.js, dgram-native) is
// replaced by a call to loadAddon(), which loads the .node file from node_modules, or, in the single
// binary, from an embedded SEA asset. Any other native import fails the bundle, so no package can
// quietly fall back to JS. Needs tsx (`node --import tsx`) to read src/native.ts.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { NATIVE_ADDONS, addonAssetKey } from '../src/native.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = join(root, 'dist');
const nativeModule = join(root, 'src', 'native.ts');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

// Tests and developers run dist/keel.cjs while a build may be rewriting it: replace, never truncate.
function writeAtomically(file, contents) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, file);
}

function fail(message) {
  console.error(`bundle: ${message}`);
  process.exit(1);
}

/** The addons to embed: all of them, each of which must exist. */
function addonFiles() {
  const files = [];
  for (const addon of NATIVE_ADDONS) {
    let file;
    try {
      file = addon.locate();
    } catch (err) {
      fail(`native addon ${addon.name} not found: ${err.message}`);
    }
    if (!existsSync(file)) fail(`native addon ${addon.name} not found at ${relative(root, file)} (npm run build:native builds dgram-native)`);
    files.push({ name: addon.name, file });
  }
  return files;
}

// Keys the run-time cache directory of the extracted addons: a different version or addon file
// gets a fresh directory, so no binary ever loads another build's files.
function buildId(files) {
  const hash = createHash('sha256').update(version);
  for (const { name, file } of files) hash.update(`\0${name}\0`).update(readFileSync(file));
  return hash.digest('hex').slice(0, 16);
}

// The replacement module: CommonJS where callers require() it and expect the addon (or the loader)
// as module.exports; an ES module where the replaced file is an ES module wrapper.
function addonModule(name, provides) {
  const args = JSON.stringify(name);
  if (provides === 'loader') return `module.exports = () => require(${JSON.stringify(nativeModule)}).loadAddon(${args});`;
  if (provides === 'addon') return `module.exports = require(${JSON.stringify(nativeModule)}).loadAddon(${args});`;
  return `import { loadAddon } from ${JSON.stringify(nativeModule)};\nexport const ${provides.namedExport} = loadAddon(${args});`;
}

const nativeAddonsPlugin = {
  name: 'keel-native-addons',
  setup(build) {
    const redirected = new Map(); // addon name -> module contents, for imports resolved below
    for (const addon of NATIVE_ADDONS) {
      const hook = addon.bundleHook;
      const contents = addonModule(addon.name, hook.provides);
      if ('file' in hook) {
        build.onLoad({ filter: hook.file }, () => ({ contents, loader: 'js', resolveDir: root }));
        continue;
      }
      build.onResolve({ filter: hook.specifier }, (args) => {
        if (hook.importer && !hook.importer.test(args.importer)) return undefined;
        return { path: addon.name, namespace: 'keel-native-addon' };
      });
      redirected.set(addon.name, contents);
    }
    build.onLoad({ filter: /.*/, namespace: 'keel-native-addon' }, (args) => ({ contents: redirected.get(args.path), loader: 'js', resolveDir: root }));
    // ssh2's optional addons (its sshcrypto binding, and cpu-features, which only picks a cipher
    // order): both are required inside try/catch, and ssh2 falls back to node:crypto and its wasm
    // Poly1305 without them. Their install scripts are denied (package.json allowScripts), so
    // the bundle gets a module that throws, exactly as a plain `npm ci` would.
    build.onResolve({ filter: /^\.\/crypto\/build\/Release\/sshcrypto\.node$|^cpu-features$/ }, (args) =>
      /[\\/]node_modules[\\/]ssh2[\\/]/.test(args.importer) ? { path: args.path, namespace: 'keel-absent-optional-addon' } : undefined);
    // ws's (the CLI's console WebSocket) optional addons, likewise required inside try/catch: ws
    // masks and validates frames in JavaScript without them.
    build.onResolve({ filter: /^bufferutil$|^utf-8-validate$/ }, (args) =>
      /[\\/]node_modules[\\/]ws[\\/]/.test(args.importer) ? { path: args.path, namespace: 'keel-absent-optional-addon' } : undefined);
    build.onLoad({ filter: /.*/, namespace: 'keel-absent-optional-addon' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(`${args.path} is not bundled (optional)`)});`, loader: 'js',
    }));
    // Anything else that looks like a native addon or its loader is an addon missing from the list.
    build.onResolve({ filter: /\.node$|^node-gyp-build|^bindings$|^prebuild-install$/ }, (args) => ({
      errors: [{ text: `native addon import "${args.path}" from ${relative(root, args.importer)} is not in NATIVE_ADDONS (src/native.ts)` }],
    }));
  },
};

// ordered-binary (lmdb-js's key codec) builds its string reader with a direct eval that closes
// over its module's `position`; bundling renames that variable (position → position4), so the eval'd
// reader advanced another module's variable and every key decode with a string looped forever
// (seen: the binary died with "invalid size error" on its first getRange). Its Bun branch builds the
// same reader with new Function and passes the position explicitly: use that branch everywhere.
const ORDERED_BINARY_PATCHES = [
  ["typeof process !== 'undefined' && process.isBun ?", 'true ?'],
  ['eval(makeStringBuilder())', 'undefined'],
];
const orderedBinaryPlugin = {
  name: 'keel-ordered-binary-without-eval',
  setup(build) {
    build.onLoad({ filter: /[\\/]ordered-binary[\\/](index\.js|dist[\\/]index\.cjs)$/ }, (args) => {
      let source = readFileSync(args.path, 'utf8');
      for (const [from, to] of ORDERED_BINARY_PATCHES) {
        if (!source.includes(from)) return { errors: [{ text: `${relative(root, args.path)} changed: "${from}" is gone; re-check the bundling of its string reader` }] };
        source = source.replace(from, to);
      }
      return { contents: source, loader: 'js' };
    });
  },
};

const files = addonFiles();
const id = buildId(files);
const outfile = join(dist, 'keel.cjs');
mkdirSync(dist, { recursive: true });

const bundled = await build({
  entryPoints: [join(root, 'src', 'main.ts')],
  outfile,
  write: false,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  // ESM packages (lmdb, msgpackr) and src/native.ts use import.meta.url, which CommonJS lacks.
  banner: { js: '#!/usr/bin/env node\nvar __keelImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
  define: {
    'import.meta.url': '__keelImportMetaUrl',
    KEEL_VERSION: JSON.stringify(version),
    KEEL_BUILD_ID: JSON.stringify(id),
  },
  plugins: [nativeAddonsPlugin, orderedBinaryPlugin],
}).catch(() => process.exit(1)); // esbuild has already printed the errors
// A direct eval sees the bundle's renamed variables, not the ones its module meant (see above).
const directEval = /(?<![\w$.])eval\(/.exec(bundled.outputFiles[0].text);
if (directEval) fail(`the bundle contains a direct eval (${JSON.stringify(bundled.outputFiles[0].text.slice(directEval.index - 80, directEval.index + 40))}): a bundled module would see renamed variables`);
writeAtomically(outfile, bundled.outputFiles[0].contents);

const seaConfig = {
  main: outfile,
  output: join(dist, 'keel.blob'),
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  assets: Object.fromEntries(files.map(({ name, file }) => [addonAssetKey(name), file])),
};
writeAtomically(join(dist, 'sea-config.json'), `${JSON.stringify(seaConfig, null, 2)}\n`);

// The bundle refuses to start when an addon does not load natively (assertNativeAddons), so running
// it proves that every addon is reachable from dist/keel.cjs.
const printed = execFileSync(process.execPath, [outfile, 'version'], { encoding: 'utf8' }).trim();
if (printed !== version) fail(`dist/keel.cjs version printed "${printed}", expected "${version}"`);
console.log(`bundle: dist/keel.cjs ${version} (build ${id}), addons: ${files.map((f) => f.name).join(', ')}`);
