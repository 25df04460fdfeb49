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
    # With arguments: only what they select, against the system's Nix.
    [ $# -gt 0 ] && exec "$NODE" node_modules/vitest/vitest.mjs run "$@"
    "$NODE" node_modules/vitest/vitest.mjs run
    # Again with a newer Nix in its stock configuration: the tests that evaluate, build and copy with
    # the deployer's Nix, and the e2e quickstart.
    NIX2=$(bash scripts/second-nix.sh)
    echo "run.sh: the Nix-dependent tests again, with $("$NIX2/nix" --version)" >&2
    PATH="$NIX2:$PATH" PNX_SECOND_NIX=2.26 "$NODE" node_modules/vitest/vitest.mjs run \
      tests/unit/nix tests/unit/examples.test.ts tests/unit/resources/evaluations.test.ts tests/integration/install/install-options.test.ts \
      tests/integration/rebuild/unit-and-copy.test.ts tests/integration/nix
    PATH="$NIX2:$PATH" PNX_SECOND_NIX=2.26 exec "$NODE" node_modules/vitest/vitest.mjs run tests/e2e -t "examples/quickstart" ;;
  demo) shift; exec "$NODE" node_modules/vite-node/vite-node.mjs scripts/demo.ts "$@" ;;
  # Writes BENCH.md; the engine's e2e machinery needs dist/ built and packed, as for npm test.
  bench) shift; "$NODE" node_modules/typescript/bin/tsc -p tsconfig.json; exec "$NODE" node_modules/vite-node/vite-node.mjs scripts/bench.ts "$@" ;;
  *) echo "usage: run.sh test|demo|bench" >&2; exit 2 ;;
esac
