/**
 * A device-mapper target over a partition of a test host's disk (an LVM volume or a LUKS mapping),
 * as the rest of the system sees one. This machine's kernel has no device mapper (no
 * CONFIG_BLK_DEV_DM: `dmsetup create` finds no /dev/mapper/control), so the test bed shows the two
 * things a real table load leaves behind:
 * - the partition is claimed exclusively, as drivers/md/dm-table.c open_table_device() opens each
 *   underlying device with a holder: mounting it, swapon or another exclusive open fail with EBUSY,
 *   and the partition counts as open, so BLKRRPART on its disk fails with EBUSY too
 *   (block/genhd.c disk_scan_partitions: `if (disk->open_partitions) return -EBUSY;`);
 * - /sys/class/block/<partition>/holders/<dm-N>, the link block/holder.c bd_link_disk_holder()
 *   makes, here a folder bound over the partition's holders folder inside the host.
 * Both last until the host's next boot, as a mapping that nothing tears down does.
 */
import type { Host } from "./host";

/** Holds `partition` (e.g. "/dev/vda2") inside the host as device-mapper device `name` would. */
export async function holdLikeDeviceMapper(h: Host, partition: string, name = "dm-0"): Promise<void> {
    const script = `set -eu
p=$1 name=$2
mm=$(stat -L -c '%t %T' "$p")
sys=$(readlink -f "/sys/dev/block/$(printf %d "0x\${mm% *}"):$(printf %d "0x\${mm#* }")")
dir=/run/testbed-holders/\${p##*/}
mkdir -p "$dir"; ln -sfn "../../$name" "$dir/$name"
mount --bind "$dir" "$sys/holders"
rm -f "$dir.ready"
setsid perl -MFcntl -e 'sysopen(my $f, $ARGV[0], O_RDWR | O_EXCL) or die "$ARGV[0]: $!\\n"; open(my $r, ">", $ARGV[1]) and close($r); sleep' "$p" "$dir.ready" </dev/null >/dev/null 2>"$dir.err" &
i=0; while [ ! -e "$dir.ready" ]; do
  i=$((i + 1)); [ $i -le 100 ] || { cat "$dir.err" >&2; exit 1; }; sleep 0.05
done`;
    const r = await h.exec(`sh -s '${partition}' '${name}'`, script);
    if (r.code !== 0) throw new Error(`test bed: cannot hold ${partition} as ${name}: ${r.stderr.trim()}`);
}
