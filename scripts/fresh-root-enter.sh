#!/usr/bin/env bash
# The first process of a fresh root's mount and PID namespaces (started by scripts/fresh-root.sh): mounts
# what a booted machine has (/proc of this PID namespace, /sys, /dev with its loop devices, a new /dev/pts,
# an empty /run and /dev/shm), the shared folder read-only beside the checkout, and this machine's Go-module
# and npm download caches as the lower layers of overlays whose upper layers are in the run (so installs
# still run inside the root and never write this machine's caches). Then makes the root / (pivot_root) and
# runs the command in /ci/repo with a clean environment (the CA variables of this one kept). When it exits, the kernel ends every process left
# in the namespace and drops its mounts.
# Usage: fresh-root-enter.sh RUN-DIR SHARED-DIR COMMAND...
set -euo pipefail
RUN=$1 SHARED=$2
shift 2
R=$RUN/root
[ "$$" = 1 ] || { echo "fresh-root-enter: must be the first process of a new PID namespace" >&2; exit 1; }

mount --make-rprivate /
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --bind /dev "$R/dev"   # the device nodes (loop devices appear as made); not the machine's /dev/pts or /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
mount --bind "$R/dev/pts/ptmx" "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
chmod 1777 "$R/tmp"
cp /etc/resolv.conf "$R/etc/resolv.conf"
# The network's trust, as the network's names: this machine's CA bundle (it may hold the CA of a proxy on
# the way to the registries), also under /usr/local/share so that an update-ca-certificates keeps it.
cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
mkdir -p "$R/usr/local/share/ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$R/usr/local/share/ca-certificates/machine-trust.crt"
passenv=()
for v in SSL_CERT_FILE SSL_CERT_DIR NODE_EXTRA_CA_CERTS CURL_CA_BUNDLE GIT_SSL_CAINFO NIX_SSL_CERT_FILE REQUESTS_CA_BUNDLE; do
  if [ -n "${!v:-}" ]; then passenv+=("$v=${!v}"); fi
done

mkdir -p "$R/ci/shared"
if [ -d "$SHARED" ]; then
  mount --bind "$SHARED" "$R/ci/shared"
  mount -o remount,bind,ro "$R/ci/shared"
fi

# A download cache of this machine, read-only under an overlay whose writes stay in the run.
cache_overlay() {
  local lower=$1 target=$R$2 name=$3
  [ -d "$lower" ] || return 0
  mkdir -p "$RUN/caches/$name/upper" "$RUN/caches/$name/work" "$target"
  mount -t overlay "pnx-ci-$name" -o "lowerdir=$lower,upperdir=$RUN/caches/$name/upper,workdir=$RUN/caches/$name/work" "$target"
}
cache_overlay /root/go/pkg/mod /root/go/pkg/mod go-mod
cache_overlay /root/.npm /root/.npm npm

cd "$R"
mkdir -p .old-root
pivot_root . .old-root
cd /
umount -l /.old-root
rmdir /.old-root

cd /ci/repo
rc=0
env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash LANG=C.UTF-8 TERM="${TERM:-dumb}" CI="${CI:-}" \
  PNX_TIMES=/ci/times "${passenv[@]}" PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  "$@" </dev/null || rc=$?
exit "$rc"
