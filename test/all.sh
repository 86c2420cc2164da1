#!/usr/bin/env bash
# `npm test [filter…]`: every test file (or the ones whose path contains a filter) on the machine's
# Node, then again on Node 24 LTS, the production runtime. Type-check and lint first: they are
# cheaper than any test and fail for the same reasons on both.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/ensure-system-packages.sh
npm run --silent check
echo "test: Node $(node --version)"
tsx test/run.ts "$@"
if [ "$(node --version | cut -d. -f1)" != "v24" ]; then
  node24_bin="$(bash test/node24.sh)"
  echo "test: Node $("$node24_bin/node" --version)"
  PATH="$node24_bin:$PATH" tsx test/run.ts "$@"
fi
