#!/bin/bash
# The "power supply" of one test host. Boots it (host-init.sh in fresh namespaces inside the host's
# network namespace), and when the host exits with 100 (reboot) boots it again after REBOOT_DELAY.
# A pending kexec request makes the next boot an installer; an image too big for the host's RAM
# "panics" instead and the host stays down until the harness power-cycles it (SIGUSR1).
set -uo pipefail
H=$1
LIB=$(cd "$(dirname "$0")" && pwd)
echo $$ > "$H/supervisor.pid"
child=
# The host's partition scanner (partscan.sh): it lives as long as the power supply.
[ -p "$H/ctl/partscan.req" ] || mkfifo -m 600 "$H/ctl/partscan.req"
"$LIB/partscan.sh" "$H" </dev/null &
scanner=$!; echo $scanner > "$H/partscan.pid"
stop() { [ -n "$child" ] && kill -KILL "$child" 2>/dev/null; kill "$scanner" 2>/dev/null; rm -f "$H/supervisor.pid"; exit 0; }
trap stop TERM INT
powercycle=0
trap 'powercycle=1' USR1

ram_kib() { if [ -n "${MEM_MIB:-}" ]; then echo $((MEM_MIB * 1024)); else awk '/^MemTotal:/ {print $2}' /proc/meminfo; fi; }

boot_kind=auto
boot=0
while :; do
  . "$H/config"
  if [ -f "$H/ctl/kexec-request" ]; then
    # kexec -e ran on the host: the loaded image replaces the running system.
    rm -rf "$H/kexec" "$H/inst"; mkdir -p "$H/kexec/payload"
    mv "$H/ctl/kexec-request" "$H/kexec/image"
    header=$(head -1 "$H/kexec/image")
    need_mib=$(sed -n 's/.*unpacked-mib=\([0-9]*\).*/\1/p' <<<"$header")
    port=$(sed -n 's/.*sshd-port=\([0-9]*\).*/\1/p' <<<"$header")
    [ -n "$port" ] && echo "$port" > "$H/kexec/sshd-port"
    if [ -n "$need_mib" ] && [ $((need_mib * 1024)) -gt "$(ram_kib)" ]; then
      echo "kernel: Initramfs unpacking failed: write error"
      echo "kernel: Failure unpacking initrd"
      echo "kernel: Kernel panic - not syncing: VFS: Unable to mount root fs"
      echo panicked > "$H/state"
      ip -n "$NETNS" link set eth0 down 2>/dev/null
      while [ $powercycle = 0 ]; do sleep 0.2; done   # dead until someone presses the power button
      powercycle=0; boot_kind=auto; rm -rf "$H/kexec"
      continue
    fi
    tail -n +2 "$H/kexec/image" | (cd "$H/kexec/payload" && cpio -id --quiet 2>/dev/null)
    boot_kind=kexec
  fi
  if [ "$boot_kind" = kexec ] || [ "$BASE_KIND" = installer ]; then rm -rf "$H/inst"; fi
  rm -f "$H/ctl/boot-kind"            # written by the host once it is up
  echo "BOOT_KIND=$boot_kind" > "$H/boot.env"
  boot=$((boot+1)); echo $boot > "$H/boot-count"
  echo running > "$H/state"
  up=$(cut -d. -f1 /proc/uptime)
  echo "supervise: $(date +%T.%N) boot $boot of $NAME"
  ip -n "$NETNS" link set eth0 up
  ip netns exec "$NETNS" unshare --time --monotonic "-$up" --boottime "-$up" --mount --uts --pid --fork \
    --kill-child --propagation private -- "$LIB/host-init.sh" "$H" &
  child=$!; echo $child > "$H/unshare.pid"
  wait $child; rc=$?
  while kill -0 "$child" 2>/dev/null; do wait $child; rc=$?; done   # wait returns early on trapped signals
  child=; rm -f "$H/unshare.pid"
  echo "supervise: $(date +%T.%N) host exited rc=$rc"
  if [ "$rc" != 100 ] && [ $powercycle = 0 ]; then break; fi
  powercycle=0; boot_kind=auto
  # Down time: the link goes down too, so clients see timeouts rather than resets, like a real reboot.
  ip -n "$NETNS" link set eth0 down
  echo rebooting > "$H/state"
  . "$H/config"
  sleep "${REBOOT_DELAY:-1}"
done
echo off > "$H/state"
kill "$scanner" 2>/dev/null
rm -f "$H/supervisor.pid"
echo "supervise: $NAME is off"
