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

