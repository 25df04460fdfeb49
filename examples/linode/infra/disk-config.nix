# Linode's disks are partitionless: /dev/sda holds ext4 directly and /dev/sdb is swap, as the
# guide's "Boot" configuration profile maps them.
{ ... }:

{
  disko.devices.disk = {
    root = {
      type = "disk";
      device = "/dev/sda";
      content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
    };
    swap = {
      type = "disk";
      device = "/dev/sdb";
      content = { type = "swap"; };
    };
  };
}
