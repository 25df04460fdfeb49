#!/bin/bash
# The kernel's partition scanning for one test host, which this kernel does not do on loop devices.
# Runs outside the host (started by supervise.sh) and serves requests on $H/ctl/partscan.req, a FIFO
# the host sees as /run/testbed/partscan.req: "<id> <disk>" (at boot) or "<id> <disk> rrpart" (the
# BLKRRPART ioctl) re-reads <disk>'s partition table as the kernel does (block/partitions/core.c,
# bdev_disk_changed): every partition device of the disk is dropped and one is made per entry of
# the table now on the disk. Each partition is a loop device over the disk's own loop device at the
# entry's offset, with the disk's logical sector size, so all writes share one page cache, as a
# partition's do with its disk. partx reports offsets in 512-byte units whatever the sector size
# (libblkid's partition API), and finds a table only where the disk's sector size puts it (a GPT
# made for 512-byte sectors is not found on a 4096-byte disk, block/partitions/efi.c reads LBA 1).
# The answer, "<name> <major> <minor> <machine path>" per partition, goes to $H/ctl/partscan.<id>.
#
# BLKRRPART's refusal is the kernel's: block/ioctl.c sends BLKRRPART to disk_scan_partitions()
# (block/genhd.c), which returns -EBUSY `if (disk->open_partitions)`, counted by block/bdev.c
# blkdev_get_part() at the first open of each partition: any open, not only a mount or swap (a
# process holding it, a device-mapper or md holder, a btrfs on it). Then bd_prepare_to_claim() on
# the whole disk fails with EBUSY while another holds the disk exclusively (a mounted whole-disk
# file system). Here a partition counts as open when an exclusive open of it fails (mounts, swap,
# holders all claim it), when its holders folder is not empty, or when any process on this machine
# has it open (its /proc/*/fd links, by device number). The answer is then "EBUSY" and the old
# partitions stay.
set -uo pipefail
H=$1
. "$H/config"
fifo=$H/ctl/partscan.req
mkdir -p "$H/parts"
[ -p "$fifo" ] || mkfifo -m 600 "$fifo"
exec 3<>"$fifo"

device() {   # disk name -> its loop device
  local d
  for d in $DISKS; do [ "${d%%=*}" = "$1" ] && echo "${d#*=}"; done
}

opened() {   # loop device -> 0 while something has it open
  local mm
  perl -MFcntl -e 'sysopen(my $f, $ARGV[0], O_RDONLY | O_EXCL) or exit 1' "$1" || return 0
  [ -n "$(ls -A "/sys/class/block/${1##*/}/holders" 2>/dev/null)" ] && return 0
  mm=$(stat -L -c '%t:%T' "$1") || return 1
  # The count, not grep -q's status: under pipefail, a stat of an fd that closed meanwhile fails the pipe.
  [ "$(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 2>/dev/null | xargs -r stat -L -c '%t:%T %F' 2>/dev/null | grep -cx "$mm block special file")" != 0 ]
}

busy() {   # disk name -> 0 when BLKRRPART would answer EBUSY
  local dev loop
  dev=$(device "$1")
  [ -n "$dev" ] || return 1
  perl -MFcntl -e 'sysopen(my $f, $ARGV[0], O_RDONLY | O_EXCL) or exit 1' "$dev" || return 0
  [ -f "$H/parts/$1" ] || return 1
  while read -r loop; do
    [ -b "$loop" ] && opened "$loop" && return 0
  done < "$H/parts/$1"
  return 1
}

scan() {   # disk name -> answer lines
  local disk=$1 dev nr start sectors loop mm ss
  dev=$(device "$disk")
  [ -n "$dev" ] || return 1
  ss=$(blockdev --getss "$dev") || return 1
  if [ -f "$H/parts/$disk" ]; then
    while read -r loop; do losetup -d "$loop" 2>/dev/null; done < "$H/parts/$disk"
  fi
  : > "$H/parts/$disk"
  # No table (a whole-disk file system, or zeros) means no partitions, as for the kernel.
  partx -g -b -o NR,START,SECTORS "$dev" 2>/dev/null | while read -r nr start sectors; do
    loop=$(losetup --find --show --sector-size "$ss" --offset $((start * 512)) --sizelimit $((sectors * 512)) "$dev") || continue
    echo "$loop" >> "$H/parts/$disk"
    mm=$(stat -L -c '%t %T' "$loop")
    echo "$disk$nr $((16#${mm% *})) $((16#${mm#* })) $loop"
  done
}

while read -r id disk op <&3; do
  case $id in *[!A-Za-z0-9_-]*|'') continue ;; esac
  if [ "$op" = rrpart ] && busy "$disk"; then echo EBUSY > "$H/ctl/partscan.$id.tmp"
  else scan "$disk" > "$H/ctl/partscan.$id.tmp" 2>/dev/null; fi
  mv -f "$H/ctl/partscan.$id.tmp" "$H/ctl/partscan.$id"
done
