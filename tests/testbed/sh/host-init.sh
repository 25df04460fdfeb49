#!/bin/bash
# PID 1 of one test host, started by supervise.sh inside fresh mount, PID, UTS and time namespaces
# (and the host's own network namespace). It assembles the root filesystem for this boot, pivots
# into it, starts sshd and waits. Signals from the host's own reboot/poweroff stand-ins:
#   SIGUSR1 -> exit 100 (reboot; the supervisor boots the host again), SIGUSR2/SIGTERM -> exit 0 (off).
# When PID 1 of a PID namespace exits, the kernel kills everything in it, so open SSH sessions drop
# exactly as they do on a real reset.
set -euo pipefail
H=$1
LIB=$(cd "$(dirname "$0")" && pwd)
. "$H/config"      # NAME ADDR BASE_KIND DISKS MEM_MIB KEYTYPES PASSWORD_LOGIN EXTRA_USER REMOVE_CMDS ...
. "$H/boot.env"    # BOOT_KIND (auto|kexec) for this boot
R=$H/merged
P=$H/probe
say() { echo "init: $*"; }

hostname "$NAME"
mount --make-rprivate /

# --- the kernel's partition scan at boot (sh/partscan.sh makes the loop devices); one line per
# partition in $H/parts-now/<disk>: "<name> <major> <minor> <machine path>"
scan_partitions() {
  local disk=$1 id="boot$$$(date +%N)" i=0
  mkdir -p "$H/parts-now"; : > "$H/parts-now/$disk"
  timeout 5 sh -c 'echo "$1 $2" > "$3"' sh "$id" "$disk" "$H/ctl/partscan.req" || { say "partition scan of $disk: no scanner"; return 0; }
  while [ ! -f "$H/ctl/partscan.$id" ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.05; done
  [ -f "$H/ctl/partscan.$id" ] && mv "$H/ctl/partscan.$id" "$H/parts-now/$disk"
}
for d in $DISKS; do scan_partitions "${d%%=*}"; done

# --- what the firmware can start on a disk (FIRMWARE=bios|efi, as the host's firmware boots)
# BIOS runs the boot code in the first 440 bytes of a partitioned disk (GRUB's boot.img); a whole-disk
# file system boots through the provider's own loader (Linode's). UEFI, with no boot entries kept
# from the image's build VM (disko lib/make-disk-image.nix:108-110), starts only an ESP's removable
# path \EFI\BOOT\BOOTX64.EFI.
firmware_can_start() {   # disk device, disk name
  local p
  if [ "${FIRMWARE:-bios}" = efi ]; then
    for p in $(awk '{ print $4 }' "$H/parts-now/$2"); do
      mdir -b -i "$p" ::/EFI/BOOT 2>/dev/null | grep -qix '::/EFI/BOOT/BOOTX64.EFI' && return 0
    done
    return 1
  fi
  [ -s "$H/parts-now/$2" ] || return 0
  [ "$(head -c 440 "$1" | tr -d '\0' | wc -c)" -gt 0 ]
}

# --- which system boots: a kexec'd installer, the rescue system (armed for one boot, as a hosting
# provider's rescue mode is), a disk or partition carrying a boot loader, or the base system
kind=installer bootdev= bootsys= tmpfs_root=
if [ "$BOOT_KIND" = auto ] && [ -f "$H/flag.rescue" ]; then
  kind=rescue
  # Armed for one boot, as most providers' rescue modes; "persist": until the panel says otherwise (OVH's netboot)
  [ "$(cat "$H/flag.rescue")" = persist ] || rm -f "$H/flag.rescue"
elif [ "$BOOT_KIND" = auto ]; then
  kind=$BASE_KIND
  for d in $DISKS; do           # firmware boot order: vda, vdb, ...; on each disk, the disk and its partitions
    firmware_can_start "${d#*=}" "${d%%=*}" || continue
    for dev in "${d#*=}" $(awk '{ print $4 }' "$H/parts-now/${d%%=*}"); do
    # A loader entry at the top of an ESP (FAT, mounted at /boot by the system) is read as firmware
    # reads it, without the kernel's vfat (this kernel has none): the configuration's root is then
    # not on this partition (a tmpfs root, impermanence).
    if esp=$(mtype -i "$dev" ::testbed-loader 2>/dev/null) && [ -n "$esp" ]; then
      bootsys=$(printf '%s\n' "$esp" | sed -n 's/^default=//p')
      kind=nixos bootdev=$dev tmpfs_root=1
      break
    fi
    mount -o ro "$dev" "$P" 2>/dev/null || continue
    if [ -f "$P/boot/testbed-loader" ]; then
      bootsys=$(sed -n 's/^default=//p' "$P/boot/testbed-loader")
      kind=nixos bootdev=$dev
      # A ZFS root last imported by another system (the installer) is not imported at boot.
      if [ -f "$P/.testbed-zpool-state" ] && [ "$(cat "$P/.testbed-zpool-state")" = "active installer" ]; then
        say "cannot import 'rpool': pool was previously in use from another system"
        say "emergency mode: the root file system is not available"
        umount "$P"
        trap 'exit 100' USR1; trap 'exit 0' USR2 TERM INT
        while :; do sleep 0.2; done
      fi
    fi
    umount "$P"
    [ "$kind" = nixos ] && break
    done
    [ "$kind" = nixos ] && break
  done
  if [ "$kind" = rescue ]; then   # a rescue-mode machine whose disks carry nothing bootable
    say "no bootable device"
    trap 'exit 100' USR1; trap 'exit 0' USR2 TERM INT
    while :; do sleep 0.2; done
  fi
fi
say "booting $NAME as $kind${bootdev:+ from ${bootdev}}"

mount_dev() {   # minimal /dev: only this host's disks, never the machine's
  mount -t tmpfs -o mode=755,size=16m tmpfs "$R/dev"
  local n
  for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    set -- $n; mknod -m 666 "$R/dev/$1" c "$2" "$3"
  done
  for d in $DISKS; do           # vda=/dev/loop7 -> /dev/vda with the loop device's numbers
    local name=${d%%=*} dev=${d#*=} mm p major minor
    mm=$(stat -L -c '%t %T' "$dev")
    mknod -m 660 "$R/dev/$name" b $((16#${mm% *})) $((16#${mm#* }))
    while read -r p major minor _; do mknod -m 660 "$R/dev/$p" b "$major" "$minor"; done < "$H/parts-now/$name"
  done
  mkdir -p "$R/dev/pts" "$R/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
  ln -s pts/ptmx "$R/dev/ptmx"; ln -s /proc/self/fd "$R/dev/fd"
  ln -s /proc/self/fd/0 "$R/dev/stdin"; ln -s /proc/self/fd/1 "$R/dev/stdout"; ln -s /proc/self/fd/2 "$R/dev/stderr"
  mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
}

hide_machine_keys() {   # the machine's own host keys show through the lower layer: never reuse them
  local f
  for f in "$R"/etc/ssh/ssh_host_*; do
    [ -e "$f" ] || continue
    [ -e "$1/$(basename "$f")" ] || rm -f "$f"
  done
}

# Stage 1 of a configuration whose "/" is a tmpfs (impermanence): a fresh tmpfs as root and the
# partition holding the system's store at /nix, as nixos/modules/system/boot/stage-1-init.sh mounts
# the fileSystems needed for boot; then, as systemd-fstab-generator's units do, fstab's binds. Nothing else survives a boot, /etc included (it is
# this machine's /etc under a tmpfs layer). /boot stays empty: this kernel cannot mount the ESP.
boot_tmpfs_root() {
  local d dev nixdev=
  for d in $DISKS; do
    for dev in "${d#*=}" $(awk '{ print $4 }' "$H/parts-now/${d%%=*}"); do
      mount -o ro "$dev" "$P" 2>/dev/null || continue
      [ -d "$P/store/${bootsys#/nix/store/}" ] && nixdev=$dev
      umount "$P"
      [ -n "$nixdev" ] && break 2
    done
  done
  if [ -z "$nixdev" ]; then
    say "stage 1: no file system holds $bootsys; cannot mount /nix"
    trap 'exit 100' USR1; trap 'exit 0' USR2 TERM INT
    while :; do sleep 0.2; done
  fi
  mount -t tmpfs -o mode=755 tmpfs "$R"
  mkdir -p "$R/nix" "$R/boot" "$R/usr" "$R/etc" "$R/root" "$R/var" "$R/home" "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp" "$R/mnt"
  chmod 700 "$R/root"
  mount "$nixdev" "$R/nix"
  mount --bind /usr "$R/usr"; mount -o remount,bind,ro "$R/usr"
  for l in bin sbin lib lib64; do [ -e "/$l" ] && ln -s "usr/$l" "$R/$l"; done
  mkdir -p "$H/volatile-etc"; mountpoint -q "$H/volatile-etc" || mount -t tmpfs tmpfs "$H/volatile-etc"
  rm -rf "$H/volatile-etc/upper" "$H/volatile-etc/work"; mkdir -p "$H/volatile-etc/upper" "$H/volatile-etc/work"
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$H/volatile-etc/upper,workdir=$H/volatile-etc/work" "$R/etc"
  rm -f "$R"/etc/ssh/ssh_host_*
  # The system's bind mounts (fileSystems with "bind": impermanence's persisted folders), as its
  # fstab lists them. A source that does not exist fails the mount; local-fs.target then fails and
  # systemd enters emergency mode (no sshd), as here.
  local src dst _type opts
  while read -r src dst _type opts _; do
    case ,$opts, in *,bind,*) ;; *) continue ;; esac
    mkdir -p "$R$dst"
    if ! mount --bind "$R$src" "$R$dst"; then
      say "emergency mode: mounting $src on $dst failed"
      trap 'exit 100' USR1; trap 'exit 0' USR2 TERM INT
      while :; do sleep 0.2; done
    fi
  done < <(chroot "$R" cat "$bootsys/etc/fstab" 2>/dev/null | grep -v '^#')
}

case $kind in
  debian|installer|rescue)
    if [ "$kind" != debian ]; then
      upper=$H/inst/upper work=$H/inst/work nix=$H/inst/nix   # runs from RAM: emptied on every installer or rescue boot
      rm -rf "$H/inst"
    else
      upper=$H/upper work=$H/work nix=$H/nix
    fi
    mkdir -p "$upper" "$work" "$nix"
    if [ ! -d "$upper/root" ]; then   # the machine's /root stays invisible on the host
      mkdir -p "$upper/root"; setfattr -n trusted.overlay.opaque -v y "$upper/root"
    fi
    keys_marker=$upper/etc/ssh/.testbed-keys
    mount -t overlay overlay -o "lowerdir=/,upperdir=$upper,workdir=$work" "$R"
    # The host's own store at /nix: made in the upper layer, since the machine may have no /nix
    # (Debian's nix-bin does not create it until Nix first runs as root).
    mkdir -p "$R/nix"; mount --bind "$nix" "$R/nix"
    rm -f "$R/.dockerenv"   # the machine may run in a container; a test host stands for a VM
    if [ ! -e "$keys_marker" ] || [ -f "$H/flag.newkeys" ]; then
      mkdir -p "$R/etc/ssh"; rm -f "$R"/etc/ssh/ssh_host_*
      if [ "$kind" = installer ] && [ -d "$H/kexec/payload/ssh" ]; then   # keys carried by the kexec image
        cp -p "$H"/kexec/payload/ssh/ssh_host_* "$R/etc/ssh/" 2>/dev/null || true
      fi
      # A rescue that keeps its host keys from boot to boot (most make new ones at every boot)
      if [ "$kind" = rescue ] && [ "${RESCUE_KEEPS_KEYS:-0}" = 1 ] && [ -d "$H/ctl/rescue-keys" ]; then
        cp -p "$H"/ctl/rescue-keys/ssh_host_* "$R/etc/ssh/"
      fi
      touch "$R/etc/ssh/.testbed-keys"
    fi
    ;;
  nixos)
    if [ -n "$tmpfs_root" ]; then boot_tmpfs_root; else
    # The installed system: its files are the disk's. /usr comes from this machine (we cannot run a
    # real NixOS userland here), /etc is the disk's /etc over this machine's, everything else is the disk.
    disk=$H/sysdisk
    mkdir -p "$disk"
    mount "$bootdev" "$disk"
    [ -f "$disk/.testbed-zpool-state" ] && echo "active nixos" > "$disk/.testbed-zpool-state"   # imported by its own system
    mount -t tmpfs -o mode=755 tmpfs "$R"
    for d in "$disk"/*; do
      b=$(basename "$d")
      case $b in lost+found|etc|usr|dev|proc|sys|run|tmp) continue ;; esac
      [ -d "$d" ] && [ ! -L "$d" ] || continue
      mkdir -p "$R/$b"; mount --bind "$d" "$R/$b"
    done
    for b in nix boot var root home; do
      [ -d "$disk/$b" ] || mkdir -p "$disk/$b"
      mountpoint -q "$R/$b" 2>/dev/null || { mkdir -p "$R/$b"; mount --bind "$disk/$b" "$R/$b"; }
    done
    chmod 700 "$disk/root"
    mkdir -p "$R/usr" "$disk/etc" "$disk/.testbed-etc-work" "$R/etc"
    mount --bind /usr "$R/usr"; mount -o remount,bind,ro "$R/usr"
    for l in bin sbin lib lib64; do [ -e "/$l" ] && ln -s "usr/$l" "$R/$l"; done
    hide_machine_keys "$disk/etc/ssh"
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$disk/etc,workdir=$disk/.testbed-etc-work" "$R/etc"
    [ -f "$H/flag.newkeys" ] && rm -f "$R"/etc/ssh/ssh_host_*
    hide_machine_keys "$disk/etc/ssh"
    mkdir -p "$R/proc" "$R/sys" "$R/dev" "$R/run" "$R/tmp" "$R/mnt"
    fi
    ;;
esac
rm -f "$H/flag.newkeys"

mount -t proc proc "$R/proc"
mount -t sysfs sysfs "$R/sys" 2>/dev/null || mount --rbind /sys "$R/sys"
# The host's own firmware, whatever the machine's: /sys/firmware/efi only when it booted by UEFI
mount -t tmpfs -o mode=755,size=1m tmpfs "$R/sys/firmware"
[ "${FIRMWARE:-bios}" = efi ] && mkdir -p "$R/sys/firmware/efi/efivars"
mount_dev
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mkdir -m 755 "$R/run/sshd"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
# Every boot gets its own boot_id; the kernel's is machine-wide and would survive our reboots.
cat /proc/sys/kernel/random/uuid > "$R/run/boot_id"
mount --bind -o ro "$R/run/boot_id" "$R/proc/sys/kernel/random/boot_id"
if [ -n "${MEM_MIB:-}" ]; then   # the RAM this host claims to have, as a VPS's /proc/meminfo does
  awk -v kb=$((MEM_MIB * 1024)) '/^MemTotal:|^MemFree:|^MemAvailable:/ { printf "%-16s%8d kB\n", $1, kb; next } { print }' /proc/meminfo > "$R/run/.meminfo"
  mount --bind -o ro "$R/run/.meminfo" "$R/proc/meminfo"
fi
# The harness's view of this host's kexec requests; invisible elsewhere on the machine.
mkdir -p "$R/run/testbed"; mount --bind "$H/ctl" "$R/run/testbed"
# Hide the test bed's own state (other hosts' disks and keys) from this host.
[ -d "$R$TESTBED_STATE" ] && mount -t tmpfs -o size=1m,mode=755 tmpfs "$R$TESTBED_STATE"
# Stand-ins for power management, kexec, systemd-run and nixos-install.
mount -t tmpfs -o mode=755,size=4m tmpfs "$R/usr/local/sbin"
cp "$LIB"/target-bin/common/* "$R/usr/local/sbin/"
[ "$kind" = installer ] && cp "$LIB"/target-bin/installer/* "$R/usr/local/sbin/"
[ "${OLD_TOOLS:-0}" = 1 ] && [ "$kind" != nixos ] && cp "$LIB"/target-bin/old-tools/* "$R/usr/local/sbin/"
mount -o remount,ro "$R/usr/local/sbin"
# systemd's own bin/, the only PATH a transient unit gets on NixOS (see target-bin/common/systemd-run).
mkdir -p "$R/run/systemd-bin"
cp "$LIB"/target-bin/common/systemctl "$LIB"/target-bin/common/systemd-run "$R/run/systemd-bin/"

# --- files of this boot's root
# The old system's sshd may listen anywhere; a kexec'd installer listens on 22 unless its image says
# otherwise, and the installed system where its sshd_config's Port line says (22 without one).
sshd_port=22
[ "$kind" = debian ] && sshd_port=${SSH_PORT:-22}
[ "$kind" = installer ] && [ -f "$H/kexec/sshd-port" ] && sshd_port=$(cat "$H/kexec/sshd-port")
# A kexec'd installer has no passwords (nixos-images' noninteractive image): keys only. An installer
# booted by hand had its root password set by whoever booted it.
password_login=${PASSWORD_LOGIN:-0}
[ "$BOOT_KIND" = kexec ] && password_login=0
permit_root=prohibit-password
[ "$password_login" = 1 ] && permit_root=yes
[ "$kind" = debian ] && [ -n "${PERMIT_ROOT:-}" ] && permit_root=$PERMIT_ROOT
mkdir -p "$R/etc/ssh" "$R/etc/nix" "$R/root/.ssh"
# Host keys: the installed system's are where its sshd_config's HostKey lines say
# (services.openssh.hostKeys; a key written anywhere else is never read).
hostkeys=
for t in ${KEYTYPES:-ed25519}; do hostkeys="$hostkeys /etc/ssh/ssh_host_${t}_key"; done
if [ "$kind" = nixos ]; then
  sys_keys=$(chroot "$R" sed -n 's/^HostKey[[:space:]]*//p' "$bootsys/etc/ssh/sshd_config" 2>/dev/null || true)
  [ -n "$sys_keys" ] && hostkeys=$sys_keys
  # services.openssh.ports: the installed system's sshd listens where its sshd_config says (the first Port line here)
  sys_port=$(chroot "$R" sed -n 's/^Port[[:space:]]*//p' "$bootsys/etc/ssh/sshd_config" 2>/dev/null | head -n 1 || true)
  [ -n "$sys_port" ] && sshd_port=$sys_port
fi
{
  echo "# written by the pulumi-nixos test bed"
  echo "Port $sshd_port"
  for k in $hostkeys; do echo "HostKey $k"; done
  echo "PidFile /run/sshd.pid"
  echo "PermitRootLogin $permit_root"
  if [ "$password_login" = 1 ]; then echo "PasswordAuthentication yes"; else echo "PasswordAuthentication no"; fi
  echo "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys.d/%u"
  echo "KbdInteractiveAuthentication no"
  echo "UsePAM no"
  echo "StrictModes no"
  echo "PrintMotd no"
  echo "UseDNS no"
  echo "MaxStartups 64:30:128"
  echo "MaxSessions 64"
  echo "AcceptEnv LANG LC_*"
  echo "Subsystem sftp /usr/lib/openssh/sftp-server"
  # NixOS puts the system's packages on PATH for SSH commands too.
  [ "$kind" = nixos ] && echo "SetEnv PATH=/run/wrappers/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
} > "$R/etc/ssh/sshd_config"
# Target-side Nix never reaches out for a binary cache; like a stock Nix, nothing experimental is on.
printf 'sandbox = false\nbuild-users-group =\nsubstituters =\n' > "$R/etc/nix/nix.conf"
echo "$NAME" > "$R/etc/hostname"
case $kind in
  installer)
    rm -f "$R/etc/os-release"   # on Debian a symlink into /usr, which must stay untouched
    printf 'NAME=NixOS\nID=nixos\nVERSION_ID="testbed"\nVARIANT_ID=installer\nVARIANT="Installer"\nPRETTY_NAME="NixOS installer (test bed)"\n' > "$R/etc/os-release"
    # kexec'd: only the keys kexec/run carried (maybe none: then nobody can log in, as on a real
    # machine). Booted by hand: the keys its owner put there.
    if [ "$BOOT_KIND" = kexec ]; then cp "$H/kexec/payload/authorized_keys" "$R/root/.ssh/authorized_keys" 2>/dev/null || : > "$R/root/.ssh/authorized_keys"
    else cp "$H/authorized_keys" "$R/root/.ssh/authorized_keys"; fi
    rm -f "$R/usr/bin/sudo"   # the installer has no sudo
    ;;
  debian|rescue)
    [ -f "$R/root/.ssh/authorized_keys" ] || cp "$H/authorized_keys" "$R/root/.ssh/authorized_keys"
    ;;
  nixos)
    # NixOS: the running system is the boot loader's default generation; /etc/static is its etc.
    ln -sfn "$bootsys" "$R/run/current-system"
    ln -sfn "$bootsys" "$R/run/booted-system"
    # Tested inside the new root: the store paths' symlinks are absolute, and the machine's own
    # /nix/store (the deployer's) must not answer for the disk's.
    chroot "$R" test -d "$bootsys/etc" && ln -sfn "$bootsys/etc" "$R/etc/static"
    ver=$(cat "$R$bootsys/nixos-version" 2>/dev/null || echo unknown)
    rm -f "$R/etc/os-release"
    printf 'NAME=NixOS\nID=nixos\nVERSION_ID="%s"\nPRETTY_NAME="NixOS %s (test bed)"\n' "$ver" "$ver" > "$R/etc/os-release"
    mkdir -p "$R/etc/ssh/authorized_keys.d"
    chroot "$R" test -e "$bootsys/etc/ssh/authorized_keys.d/root" && ln -sfn /etc/static/ssh/authorized_keys.d/root "$R/etc/ssh/authorized_keys.d/root"
    ;;
esac
chmod 700 "$R/root/.ssh"; [ -f "$R/root/.ssh/authorized_keys" ] && chmod 600 "$R/root/.ssh/authorized_keys"
for c in ${REMOVE_CMDS:-}; do rm -f "$R/usr/bin/$c" "$R/usr/sbin/$c" 2>/dev/null || true; done

cd "$R"
pivot_root . .
umount -l .
cd /

# As NixOS's sshd pre-start (nixos/modules/services/networking/ssh/sshd.nix): a key that is missing
# or empty is made anew, so a key the install put elsewhere is replaced by a random one.
for k in $hostkeys; do
  [ -s "$k" ] && continue
  [ -L "$k" ] || rm -f "$k"
  mkdir -p "$(dirname "$k")"
  case $k in *rsa*) t=rsa ;; *ecdsa*) t=ecdsa ;; *) t=ed25519 ;; esac
  ssh-keygen -q -t "$t" -N '' -C "root@$NAME" -f "$k"
done
# The extra user exists on Debian, and on the installed system only when its configuration declares
# it (users.users; the fixtures list them in etc/testbed-users). The installer has only root.
declared=1
[ "$kind" = nixos ] && { grep -qx "${EXTRA_USER:-}" /etc/static/testbed-users 2>/dev/null || declared=0; }
if [ "$kind" != installer ] && [ "$declared" = 1 ] && [ -n "${EXTRA_USER:-}" ] && ! id "$EXTRA_USER" >/dev/null 2>&1; then
  # '*' rather than useradd's locked '!': sshd without PAM refuses key logins to locked accounts.
  useradd -m -s /bin/bash -p '*' "$EXTRA_USER"
  mkdir -p "/home/$EXTRA_USER/.ssh"
  [ "${EXTRA_USER_KEYS:-1}" = 1 ] && { cat /root/.ssh/authorized_keys /etc/ssh/authorized_keys.d/root 2>/dev/null > "/home/$EXTRA_USER/.ssh/authorized_keys" || true; }
  chown -R "$EXTRA_USER:" "/home/$EXTRA_USER/.ssh"
  if [ -n "${EXTRA_USER_PASSWORD_FILE:-}" ]; then
    echo "$EXTRA_USER:$(cat "/run/testbed/$EXTRA_USER_PASSWORD_FILE")" | chpasswd
    echo "$EXTRA_USER ALL=(ALL:ALL) ALL" > "/etc/sudoers.d/$EXTRA_USER"
  else
    echo "$EXTRA_USER ALL=(ALL:ALL) NOPASSWD: ALL" > "/etc/sudoers.d/$EXTRA_USER"
  fi
  chmod 440 "/etc/sudoers.d/$EXTRA_USER"
fi
if [ -n "${ROOT_PASSWORD_FILE:-}" ]; then echo "root:$(cat "/run/testbed/$ROOT_PASSWORD_FILE")" | chpasswd; fi
echo "$kind" > /run/testbed/boot-kind
[ "$kind" = rescue ] && [ "${RESCUE_KEEPS_KEYS:-0}" = 1 ] && { mkdir -p /run/testbed/rescue-keys; cp -p /etc/ssh/ssh_host_* /run/testbed/rescue-keys/; }
set -- $hostkeys
echo "init: $NAME up as $kind, host key $(cut -d' ' -f1-2 "$1.pub")"

action=0
trap 'action=100' USR1
trap 'action=1' USR2 TERM INT
/usr/sbin/sshd -D -e -f /etc/ssh/sshd_config &
while [ $action = 0 ]; do
  wait || true      # also reaps orphans re-parented to PID 1; sshd may be stopped by an activation
  [ $action = 0 ] && sleep 0.2
done
[ $action = 100 ] && { say "$NAME going down for reboot"; exit 100; }
say "$NAME powering off"
exit 0
