# A single-disk server, as in nix.dev's "Provisioning remote machines via SSH", without flakes:
# <nixpkgs> and <disko> come from the nixPath the Pulumi program passes (pinned with npins).
{ modulesPath, ... }:

let
  diskDevice = "/dev/sda";
in
{
  imports = [
    (modulesPath + "/profiles/qemu-guest.nix")
    (<disko> + "/module.nix")
    ./single-disk-layout.nix
  ];

  disko.devices.disk.main.device = diskDevice;

  boot.loader.grub = {
    devices = [ diskDevice ];
    efiSupport = true;
    efiInstallAsRemovable = true;
  };

  services.openssh.enable = true;
  users.users.root.openssh.authorizedKeys.keyFiles = [ ./authorized_keys ];

  system.stateVersion = "24.11";
}
