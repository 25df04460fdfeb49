#!/usr/bin/env bash
# Builds the Pulumi CLI and a Node.js language host from Go modules (no binary downloads), into
# .tools/pulumi-v<version>/bin, once per version. The version is the exact @pulumi/pulumi of package.json (devDependencies);
# engine/go.mod must pin the same one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/.*"@pulumi\/pulumi": *"\([0-9.]*\)".*/\1/p' "$ROOT/package.json")
grep -q "github.com/pulumi/pulumi/pkg/v3 v$VERSION\$" "$ROOT/engine/go.mod" || {
  echo "build-engine: engine/go.mod does not pin github.com/pulumi/pulumi/pkg/v3 v$VERSION like package.json's @pulumi/pulumi; update both together" >&2
  exit 1
}
OUT=$ROOT/.tools/pulumi-v$VERSION/bin
stamp=$OUT/.built-from
want=$(cat "$ROOT/engine/go.mod" "$ROOT/engine/go.sum" "$ROOT"/engine/langhost/*.go | sha256sum | cut -d' ' -f1)
if [ -x "$OUT/pulumi" ] && [ -x "$OUT/pulumi-language-nodejs" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
command -v go >/dev/null || { echo "build-engine: the Go toolchain is needed to build the Pulumi CLI (install Go 1.25 or later and put it on PATH)" >&2; exit 1; }
mkdir -p "$OUT"
echo "build-engine: building the Pulumi CLI v$VERSION and the Node.js language host from Go modules (first build takes minutes)" >&2
start=$(date +%s)
cd "$ROOT/engine"
export GOFLAGS=-mod=mod
go build -trimpath -o "$OUT/pulumi" \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VERSION" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
go build -trimpath -o "$OUT/pulumi-language-nodejs" -ldflags "-s -w -X main.Version=$VERSION" ./langhost
# The dynamic-provider plugin is a script shipped in @pulumi/pulumi; the engine looks next to the CLI.
install -m 755 "$ROOT/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" "$OUT/"
echo "$want" > "$stamp"
echo "build-engine: done in $(( $(date +%s) - start )) s: $(du -sh "$OUT" | cut -f1) in $OUT" >&2
