#!/usr/bin/env bash
# Entry point of the README's two commands: `npm test` and `npm run demo`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
NODE=$(cat .tools/node-path)
if [ "$(id -u)" != 0 ]; then
  echo "The test hosts are network namespaces with loop-device disks, which need root." >&2
  echo "Run this as root, e.g.  sudo npm ${1/demo/run demo}" >&2
  exit 1
fi
case ${1:-} in
  test)
    shift
    # Type-check everything, examples included (their programs run with ts-node's noCheck).
    "$NODE" node_modules/typescript/bin/tsc -p tsconfig.test.json
    exec "$NODE" node_modules/vitest/vitest.mjs run "$@" ;;
  demo) shift; exec "$NODE" node_modules/vite-node/vite-node.mjs scripts/demo.ts "$@" ;;
  *) echo "usage: run.sh test|demo" >&2; exit 2 ;;
esac
