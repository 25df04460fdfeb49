import { expect } from "vitest";
import * as hooks from "../../../provider/resources/install";
import type { Host } from "../../testbed/host";
import { clientKey } from "../../testbed/state";

/** A connection to a test host with the run's client key, pinned to its current host key. */
export function connectionTo(h: Host, extra: Record<string, unknown> = {}) {
    return { host: h.address, port: h.port, privateKey: clientKey().privateKey, hostKey: h.hostKey, ...extra };
}

/** check() that must succeed; returns the inputs create/update get. */
export async function checked(news: Record<string, unknown>): Promise<Record<string, any>> {
    const r = await hooks.check({}, { __nixosName: "web", ...news });
    expect(r.failures ?? []).toEqual([]);
    return r.inputs!;
}

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
