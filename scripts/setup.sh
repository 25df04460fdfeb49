#!/usr/bin/env bash
# One idempotent setup for `npm test` and `npm run demo`: installs what is missing and says exactly
# what to do when it cannot. Safe to run again; does nothing when everything is in place.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
say() { echo "setup: $*" >&2; }

# --- Debian packages: Nix, sshd and the tools the test hosts and the product use
# (debootstrap and patchelf unpack the second, newer Nix that `npm test` also runs against; fdisk,
# btrfs-progs, xfsprogs and qemu-utils are the rescue hosts' tools, which are this machine's, and NixosImage's;
# mtools puts the boot loader entry on a fixture image's ESP; python3 serves a test binary cache over HTTP.)
PKGS=(nix-bin openssh-server openssh-client iproute2 python3 e2fsprogs dosfstools gdisk util-linux cpio sudo attr tar gzip debootstrap patchelf
      fdisk btrfs-progs xfsprogs qemu-utils zstd mtools)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing Debian packages: ${missing[*]}"
    say "install them as root:  sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
fi

# --- Node 22: @pulumi/pulumi needs it; the system Node stays as it is
NODE=node
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 22 ]; then
  NODE=$ROOT/.tools/node22/node_modules/node/bin/node
  if [ ! -x "$NODE" ]; then
    say "the system Node is $(node -v 2>/dev/null || echo absent); fetching Node 22 from the npm registry into .tools/node22"
    npm install --silent --no-audit --no-fund --prefix "$ROOT/.tools/node22" node@22 >/dev/null
  fi
  "$NODE" -v >/dev/null || { say "Node 22 at $NODE does not run; install Node 22 and put it first on PATH"; exit 1; }
fi
echo "$NODE" > "$ROOT/.tools/node-path" 2>/dev/null || { mkdir -p "$ROOT/.tools"; echo "$NODE" > "$ROOT/.tools/node-path"; }

# --- npm dependencies, from the lockfile
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm install, not npm ci: with this machine's npm (11.x, lockfiles without registry URLs) the
  # lockfile leaves out other platforms' optional packages and npm ci refuses it. The versions
  # still come from package-lock.json; --no-save keeps it unchanged.
  say "installing npm dependencies from package-lock.json"
  npm install --no-save --silent --no-audit --no-fund >/dev/null
fi

# The root Pulumi program (examples/quickstart) imports the package by its name, as users do.
ln -sfn .. node_modules/pulumi-nixos

# --- the Pulumi CLI and language host, built from Go modules once per version
bash scripts/build-engine.sh

# --- build the package (CommonJS, so a serialized dynamic provider can require it)
if [ ! -f dist/.stamp ] || [ -n "$(find sdk provider tsconfig.json -newer dist/.stamp -print -quit 2>/dev/null)" ]; then
  say "building (tsc)"
  "$NODE" node_modules/typescript/bin/tsc -p tsconfig.json
  touch dist/.stamp
fi
