#!/bin/bash
# The kernel's partition scanning for one test host, which this kernel does not do on loop devices.
# Runs outside the host (started by supervise.sh) and serves requests on $H/ctl/partscan.req, a FIFO
# the host sees as /run/testbed/partscan.req: "<id> <disk>" re-reads <disk>'s partition table as
# BLKRRPART does (block/partitions/core.c, bdev_disk_changed): every partition device of the disk is
# dropped and one is made per entry of the table now on the disk. Each partition is a loop device
# over the disk's own loop device at the entry's offset, so all writes share one page cache, as a
# partition's do with its disk. The answer, "<name> <major> <minor> <machine path>" per partition,
# goes to $H/ctl/partscan.<id>. The caller (blockdev/partprobe stand-ins, or host-init at boot)
# refuses beforehand when a partition is mounted, as the kernel answers EBUSY then.
set -uo pipefail
H=$1
. "$H/config"
fifo=$H/ctl/partscan.req
mkdir -p "$H/parts"
[ -p "$fifo" ] || mkfifo -m 600 "$fifo"
exec 3<>"$fifo"

scan() {   # disk name -> answer lines
  local disk=$1 dev="" d nr start sectors loop mm
  for d in $DISKS; do [ "${d%%=*}" = "$disk" ] && dev=${d#*=}; done
  [ -n "$dev" ] || return 1
  if [ -f "$H/parts/$disk" ]; then
    while read -r loop; do losetup -d "$loop" 2>/dev/null; done < "$H/parts/$disk"
  fi
  : > "$H/parts/$disk"
  # No table (a whole-disk file system, or zeros) means no partitions, as for the kernel.
  partx -g -b -o NR,START,SECTORS "$dev" 2>/dev/null | while read -r nr start sectors; do
    loop=$(losetup --find --show --offset $((start * 512)) --sizelimit $((sectors * 512)) "$dev") || continue
    echo "$loop" >> "$H/parts/$disk"
    mm=$(stat -L -c '%t %T' "$loop")
    echo "$disk$nr $((16#${mm% *})) $((16#${mm#* })) $loop"
  done
}

while read -r id disk <&3; do
  case $id in *[!A-Za-z0-9_-]*|'') continue ;; esac
  scan "$disk" > "$H/ctl/partscan.$id.tmp" 2>/dev/null
  mv -f "$H/ctl/partscan.$id.tmp" "$H/ctl/partscan.$id"
done
