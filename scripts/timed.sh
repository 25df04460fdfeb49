#!/usr/bin/env bash
# Runs a command and notes how long it took: "LABEL: N s (exit C)" appended to $PNX_TIMES when set.
# Usage: timed.sh LABEL COMMAND...
set -uo pipefail
label=$1; shift
start=$(date +%s)
"$@"; rc=$?
line="$label: $(( $(date +%s) - start )) s (exit $rc)"
echo "timed: $line" >&2
[ -n "${PNX_TIMES:-}" ] && echo "$line" >>"$PNX_TIMES"
exit "$rc"
