#!/usr/bin/env bash
# A second, newer Nix for the test tier that runs against it: Debian trixie's nix-bin (2.26.3), in its
# stock configuration. Unpacked with debootstrap's first stage (nothing is configured or run in it)
# into .tools/nix-2.26/root, once; the nix binary is then pointed at that root's loader and libraries
# (patchelf), so it runs as itself (/proc/self/exe stays nix, which its build hook relies on).
# Prints the folder to put first on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/.tools/nix-2.26
MIRROR=${PNX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "second-nix: $*" >&2; }
if [ ! -x "$DIR/bin/nix" ]; then
  for c in debootstrap patchelf; do
    command -v "$c" >/dev/null || { say "missing $c; install it:  apt-get install -y debootstrap patchelf"; exit 1; }
  done
  say "unpacking Debian trixie's nix-bin from $MIRROR into $DIR (about 35 s and 330 MiB, once)"
  rm -rf "$DIR"; mkdir -p "$DIR/bin"
  debootstrap --foreign --variant=minbase --include=nix-bin trixie "$DIR/root" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 \
    || { say "debootstrap failed; see $DIR/debootstrap.log"; tail -5 "$DIR/debootstrap.log" >&2; exit 1; }
  # --foreign leaves the packages' data archives to unpack: nix-bin and its libraries.
  if [ ! -x "$DIR/root/usr/bin/nix" ]; then
    for deb in "$DIR"/root/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$DIR/root"; done
  fi
  cp "$DIR/root/usr/bin/nix" "$DIR/bin/nix.tmp"
  libs=$DIR/root/usr/lib/x86_64-linux-gnu:$DIR/root/lib/x86_64-linux-gnu
  patchelf --set-interpreter "$DIR/root/lib64/ld-linux-x86-64.so.2" --force-rpath --set-rpath "$libs" "$DIR/bin/nix.tmp"
  for n in nix-store nix-env nix-instantiate nix-build nix-copy-closure nix-hash nix-collect-garbage nix-daemon nix-channel nix-shell nix-prefetch-url; do
    ln -sfn nix "$DIR/bin/$n"
  done
  mv "$DIR/bin/nix.tmp" "$DIR/bin/nix"
fi
"$DIR/bin/nix" --version | grep -q ' 2\.26\.' || { say "$DIR/bin/nix is not Nix 2.26"; exit 1; }
echo "$DIR/bin"
