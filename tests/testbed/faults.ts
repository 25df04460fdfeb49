/** Faults injected into test hosts: the machine misbehaves, nothing in the code under test is replaced. */
import type { Host } from "./host";

/**
 * Makes the next run of `command` on the host fail with "injected failure"; the run after that
 * works again. The wrapper sits first on PATH in the host's stand-in folder (/usr/local/sbin, a
 * read-only tmpfs that it makes writable for the while) and puts back whatever was there.
 */
export async function failOnce(h: Host, command: string): Promise<void> {
    const bin = `/usr/local/sbin/${command}`;
    const wrapper = `#!/bin/sh\nif [ -e ${bin}.orig ]; then mv ${bin}.orig ${bin}; else rm -f ${bin}; fi\nmount -o remount,ro /usr/local/sbin\necho "${command}: injected failure" >&2\nexit 1\n`;
    await h.execOk(`mount -o remount,rw /usr/local/sbin && { [ ! -e ${bin} ] || mv ${bin} ${bin}.orig; } && cat > ${bin} && chmod 755 ${bin}`, wrapper);
}
