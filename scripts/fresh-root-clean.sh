#!/usr/bin/env bash
# Removes what a fresh-root run left on this machine once its namespaces are gone: loop devices whose
# backing file is in the run, then the run's folder. (Its test hosts' veths go with their network
# namespaces; the test bed removes its bridge itself when no host uses it.) Bounded: tries for 60 s.
# Usage: fresh-root-clean.sh RUN-DIR
set -uo pipefail
RUN=$1
say() { echo "fresh-root-clean: $*" >&2; }
[ -d "$RUN" ] || exit 0
dev=$(stat -c '%Hd:%Ld' "$RUN")

# Loop devices backed by a file of the run (same device, same inode): detach them.
inodes=$(find "$RUN" -xdev -type f -size +0 -printf '%i\n' 2>/dev/null | sort -u)
ours() {
  losetup -nl -O NAME,BACK-MAJ:MIN,BACK-INO 2>/dev/null | while read -r name majmin ino; do
    [ "$majmin" = "$dev" ] && grep -qx "$ino" <<<"$inodes" && echo "$name"
  done
}
for _ in $(seq 60); do
  loops=$(ours)
  [ -z "$loops" ] && break
  for l in $loops; do losetup -d "$l" 2>/dev/null; done
  sleep 1
done
[ -n "$(ours)" ] && say "loop devices still attached to files of $RUN: $(ours | tr '\n' ' ')"

if findmnt -rn -o TARGET | grep -qF "$RUN"; then
  say "mounts remain under $RUN; leaving it:"; findmnt -rn -o TARGET | grep -F "$RUN" >&2
  exit 1
fi
rm -rf --one-file-system "$RUN"
