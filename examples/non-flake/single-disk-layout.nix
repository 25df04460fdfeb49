# One GPT disk that boots on BIOS and EFI: a BIOS boot partition, a 500 MiB ESP and ext4 for the rest.
{ ... }:

{
  disko.devices.disk.main = {
    type = "disk";
    content = {
      type = "gpt";
      partitions = {
        MBR = { priority = 0; size = "1M"; type = "EF02"; };
        ESP = {
          priority = 1;
          size = "500M";
          type = "EF00";
          content = { type = "filesystem"; format = "vfat"; mountpoint = "/boot"; };
        };
        root = {
          priority = 2;
          size = "100%";
          content = { type = "filesystem"; format = "ext4"; mountpoint = "/"; };
        };
      };
    };
  };
}
