/**
 * A binary cache between the deployer and a fleet: the deployer pushes a closure to it once
 * (`nix copy --to`), and each target substitutes from it, checking the signatures against the
 * cache's public key, before the deployer sends what is still missing. Ten machines then cost the
 * deployer's uplink one closure, not ten.
 */
import { Command, sh } from "../ssh/shell";
import { mustLocal } from "./local";

export interface Cache {
    /** Where targets fetch from (http(s)://, file://, s3://). */
    url: string;
    /** "<name>:<base64>", the key the cache's paths are signed with. */
    publicKey: string;
    /** A Nix store URL the deployer writes to; default `url`. It signs, e.g. `?secret-key=<file>`. */
    pushTo?: string;
}

const pushes = new Map<string, Promise<void>>();

/**
 * Pushes the closure of `paths` to the cache. One push per cache and closure per provider process:
 * ten installs of one system started together push once, and `nix copy` skips what is there.
 */
export function pushToCache(cache: Cache, paths: string[], o: { phase: string; env?: NodeJS.ProcessEnv; log?: (line: string) => void; timeoutS: number }): Promise<void> {
    const to = cache.pushTo ?? cache.url;
    const id = JSON.stringify([to, [...paths].sort()]);
    let p = pushes.get(id);
    if (!p) {
        o.log?.(`pushing the closure to the binary cache ${cache.url}`);
        p = mustLocal(o.phase, `pushing the closure to the binary cache ${cache.url} failed`, "nix", ["copy", "--to", to, ...paths], { env: o.env, timeoutMs: o.timeoutS * 1000 }).then(() => undefined);
        pushes.set(id, p);
        p.catch(() => pushes.delete(id));
    }
    return p;
}

/** The target's `nix-store --realise` options: the cache besides (or, with `own` false, instead of) its own substituters. */
export function cacheOptions(cache: Cache, own: boolean): Command {
    return own
        ? sh`--option extra-substituters ${cache.url} --option extra-trusted-public-keys ${cache.publicKey} `
        : sh`--option substituters ${cache.url} --option extra-trusted-public-keys ${cache.publicKey} `;
}
