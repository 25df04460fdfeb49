#!/usr/bin/env bash
# Runs a command in this checkout inside a root that looks like a new machine of this kind
# (scripts/fresh-root-build.sh), so nothing left on this machine can stand in for a missing install step.
# The root is unpacked afresh for each run; the checkout is copied into it, with ../shared beside it
# (read-only). It runs in its own mount and PID namespaces (scripts/fresh-root-enter.sh), on this
# machine's network, and everything it leaves (processes, mounts, loop devices, files) goes at the end.
# Usage: fresh-root.sh COMMAND... (run in the copy of the checkout, as root). Bounded by PNX_FRESH_TIMEOUT s.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PNX_FRESH_CACHE:-/var/cache/pulumi-nixos-ci}
LIMIT=${PNX_FRESH_TIMEOUT:-5100}
say() { echo "fresh-root: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (namespaces, mounts, loop devices)"; exit 1; }
[ $# -gt 0 ] || { say "usage: fresh-root.sh COMMAND..."; exit 2; }
t0=$(date +%s)

# The kind's package list: the machine's own description where it has one, else the copy kept with the
# project (.ci/packages-go.txt, taken from that description on 2026-12-02).
LIST=${PNX_FRESH_PACKAGES:-/work/.library/env/packages/installed-go.txt}
[ -r "$LIST" ] || LIST=$ROOT/.ci/packages-go.txt
TAR=$(bash "$ROOT/scripts/fresh-root-build.sh" "$LIST")
t1=$(date +%s)
mkdir -p "$CACHE/runs"
RUN=$(mktemp -d "$CACHE/runs/run.XXXXXX")
cleanup() {
  local rc=$?
  bash "$ROOT/scripts/fresh-root-clean.sh" "$RUN" || rc=1
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

R=$RUN/root
mkdir -p "$R"
zstd -q -dc "$TAR" | tar -C "$R" --numeric-owner --xattrs -xf -
mkdir -p "$R/ci/repo"
# The checkout as a clone has it: never this machine's installs in it (a clean clone has none).
tar -C "$ROOT" --exclude=./node_modules --exclude=./.tools --exclude=./dist -cf - . | tar -C "$R/ci/repo" -xf -
t2=$(date +%s)
say "root $TAR unpacked into $R in $(( t2 - t1 )) s"

rc=0
timeout --foreground --kill-after=30 "$(( LIMIT - (t2 - t0) ))" \
  unshare --mount --pid --fork --kill-child --propagation private -- \
  bash "$ROOT/scripts/fresh-root-enter.sh" "$RUN" "$(cd "$ROOT/.." && pwd)/shared" "$@" || rc=$?
t3=$(date +%s)
[ "$rc" = 124 ] && say "stopped after the time limit ($LIMIT s in all)"
say "costs: root $(( t1 - t0 )) s to build or find, $(( t2 - t1 )) s to unpack; the command $(( t3 - t2 )) s (exit $rc)"
[ -f "$R/ci/times" ] && sed 's/^/fresh-root:   /' "$R/ci/times" >&2
exit "$rc"
