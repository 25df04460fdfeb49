/**
 * The ports a built system's sshd listens on: one `Port N` line per services.openssh.ports entry in
 * its etc/ssh/sshd_config (nixos/modules/services/networking/ssh/sshd.nix), and the port of each
 * `ListenAddress addr:port` line. Read from the deployer's copy of the toplevel; none when it is
 * not there or names none (sshd's default, 22).
 */
import * as fs from "node:fs";
import * as path from "node:path";

export function sshdPorts(toplevel: string): number[] {
    let text = "";
    try {
        text = fs.readFileSync(path.join(toplevel, "etc/ssh/sshd_config"), "utf8");
    } catch {
        return [];
    }
    const ports = text.split("\n").flatMap((l) => {
        const port = /^\s*Port\s+(\d+)\s*$/i.exec(l)?.[1] ?? /^\s*ListenAddress\s+(?:[^\s:\[]+|\[[^\]\s]+\]):(\d+)\s*$/i.exec(l)?.[1];
        return port ? [Number(port)] : [];
    });
    return [...new Set(ports.filter((p) => p > 0 && p < 65536))];
}
