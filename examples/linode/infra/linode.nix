# What a Linode needs, from Linode's "Install NixOS on Linode" guide: the LISH console on the
# first serial port at 19200 baud, GRUB on a partitionless disk (Linode's GRUB 2 boot profile
# reads grub.cfg from the disk, so the blocklist warning does not matter), a 10 s menu so LISH
# has time to attach, eth0 as in Linode's networking guides, and the diagnostics tools Linode's
# support asks for.
{ pkgs, ... }:

{
  boot.kernelParams = [ "console=ttyS0,19200n8" ];
  boot.loader.grub.extraConfig = ''
    serial --speed=19200 --unit=0 --word=8 --parity=no --stop=1;
    terminal_input serial;
    terminal_output serial
  '';
  boot.loader.grub.device = "/dev/sda";
  boot.loader.grub.forceInstall = true;
  boot.loader.timeout = 10;

  # Linode's virtual disks and network card.
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_scsi" "ahci" "sd_mod" ];

  networking.usePredictableInterfaceNames = false;
  networking.useDHCP = false;
  networking.interfaces.eth0.useDHCP = true;

  environment.systemPackages = with pkgs; [ inetutils mtr sysstat ];
}
