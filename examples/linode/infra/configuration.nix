# The machine itself: SSH with keys only, a firewall open for SSH and HTTP, and a web server.
{ ... }:

{
  networking.hostName = "linode";
  services.openssh = {
    enable = true;
    settings.PermitRootLogin = "prohibit-password";
    settings.PasswordAuthentication = false;
  };
  users.users.root.openssh.authorizedKeys.keyFiles = [ ./authorized_keys ];

  networking.firewall.allowedTCPPorts = [ 22 80 ];
  services.nginx.enable = true;

  system.stateVersion = "24.11";
}
