#!/usr/bin/env bash
# Builds, once, a root file system that looks like a new machine of this kind: Debian 12 (bookworm, amd64)
# from debootstrap, the Debian packages that the kind's image lists, this machine's Node.js package
# (nodesource) and Go at /usr/local/go. Nothing else of this machine goes in: not its /nix, /var/tmp, Nix,
# debootstrap or any other package it installed later. Kept as a tarball keyed by the package list, this
# script, Node's and Go's versions, so later runs start from the same fresh state.
# Prints the tarball's path. Usage: fresh-root-build.sh [package-list]
set -euo pipefail
LIST=${1:-${PNX_FRESH_PACKAGES:-/work/.library/env/packages/installed-go.txt}}
CACHE=${PNX_FRESH_CACHE:-/var/cache/pulumi-nixos-ci}
MIRROR=${PNX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
say() { echo "fresh-root-build: $*" >&2; }

[ -r "$LIST" ] || { say "no package list at $LIST (lines: apt<TAB>name<TAB>version)"; exit 1; }
[ -x /usr/local/go/bin/go ] || { say "no Go at /usr/local/go"; exit 1; }
node_version=$(dpkg-query -W -f='${Version}' nodejs 2>/dev/null) || { say "no nodejs package on this machine"; exit 1; }
key=$({ cat "$LIST" "$0"; echo "$node_version"; npm -v; /usr/local/go/bin/go version; } | sha256sum | cut -c1-16)
TAR=$CACHE/root-$SUITE-$key.tar.zst
if [ -f "$TAR" ]; then echo "$TAR"; exit 0; fi

need=()
for c in debootstrap zstd; do command -v "$c" >/dev/null || need+=("$c"); done
if [ ${#need[@]} -gt 0 ]; then   # a new machine of this kind has no debootstrap: this machine needs it, not the root
  [ "$(id -u)" = 0 ] || { say "missing ${need[*]}; install them:  apt-get install -y ${need[*]}"; exit 1; }
  say "installing ${need[*]} on this machine"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$CACHE/debs/partial"
BUILD=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf --one-file-system "$BUILD"' EXIT
R=$BUILD/root
start=$(date +%s)
say "debootstrap $SUITE from $MIRROR into $R"
debootstrap --variant=minbase --cache-dir="$CACHE/debs" "$SUITE" "$R" "$MIRROR" >"$BUILD/debootstrap.log" 2>&1 \
  || { say "debootstrap failed:"; tail -20 "$BUILD/debootstrap.log" >&2; exit 1; }

# The machine's apt sources (the mirror, updates and security), no services started by postinst scripts.
rm -f "$R/etc/apt/sources.list"
cat >"$R/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$R/etc/resolv.conf"

# Go, as a new machine has it.
cp -a /usr/local/go "$R/usr/local/go"

# The kind's Debian packages, by name; those apt does not know here are counted and skipped.
# (The list names some packages with their architecture, "libc6:amd64"; apt knows them by name.)
awk -F'\t' '$1 == "apt" { sub(/:amd64$/, "", $2); if ($2 != "nodejs") print $2 }' "$LIST" | sort -u >"$R/tmp/wanted"
unshare --mount --propagation private -- bash -c '
  set -euo pipefail
  R=$1; DEBS=$2
  mount -t proc proc "$R/proc"; mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"
  mount --bind "$DEBS" "$R/var/cache/apt/archives"
  chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 bash -c "
    set -euo pipefail
    apt-get update -qq
    apt-cache pkgnames | sort -u >/tmp/known
    comm -12 /tmp/wanted /tmp/known >/tmp/install
    comm -23 /tmp/wanted /tmp/known >/tmp/skipped
    echo \"fresh-root-build: installing \$(wc -l </tmp/install) Debian packages; skipped \$(wc -l </tmp/skipped) that Debian does not have: \$(tr \"\\n\" \" \" </tmp/skipped)\" >&2
    xargs -a /tmp/install apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log >&2; exit 1; }
  "
' _ "$R" "$CACHE/debs"

# The machine's Node.js (nodesource's package, which apt cannot fetch): its files and its dpkg record,
# with the npm and corepack that the machine has now (npm may have been updated over the package's).
{ dpkg -L nodejs; find /usr/lib/node_modules/npm /usr/lib/node_modules/corepack; echo /usr/bin/npm; echo /usr/bin/npx; echo /usr/bin/corepack; } \
  | while read -r f; do { [ -L "$f" ] || { [ -e "$f" ] && [ ! -d "$f" ]; }; } && printf '%s\0' "${f#/}"; done \
  | sort -zu | tar -C / --null -T - -cf - | tar -C "$R" -xf -
dpkg -L nodejs | grep -v '^/\.$' >"$R/var/lib/dpkg/info/nodejs.list"
{ echo; dpkg-query -s nodejs; } >>"$R/var/lib/dpkg/status"

rm -f "$R/usr/sbin/policy-rc.d" "$R/etc/resolv.conf" "$R"/tmp/{wanted,known,install,skipped,apt.log}
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
say "root built in $(( $(date +%s) - start )) s ($(du -sh --one-file-system "$R" | cut -f1)); packing"
tar -C "$R" --numeric-owner --xattrs --one-file-system -cf - . | zstd -q -T0 -3 >"$TAR.tmp"
mv "$TAR.tmp" "$TAR"
# Roots of earlier package lists or scripts are not used again: keep the disk to one.
find "$CACHE" -maxdepth 1 -name 'root-*.tar.zst' ! -name "${TAR##*/}" -delete
say "root kept as $TAR ($(du -h "$TAR" | cut -f1)), $(( $(date +%s) - start )) s in all"
echo "$TAR"
