/**
 * A binary cache between the deployer and a fleet: the deployer pushes a closure to it once
 * (`nix copy --to`), and each target substitutes from it, checking the signatures against the
 * cache's public key, before the deployer sends what is still missing. Ten machines then cost the
 * deployer's uplink one closure, not ten.
 *
 * A push that cannot help is not made, and one that fails is not fatal: the deployer then sends the
 * missing paths itself, and a log line says why.
 * - An http(s) cache served read-only (nix-serve, harmonia, a file server) refuses Nix's upload,
 *   an HTTP PUT (Nix's src/libstore/http-binary-cache-store.cc `upsertFile`: "while uploading to
 *   HTTP binary cache at …"; filetransfer.cc sends data with CURLOPT_UPLOAD).
 * - A push without `?secret-key=` writes the deployer's own signatures, usually none: targets keep
 *   Nix's default `require-sigs = true` and skip every such path (src/libstore/build/
 *   substitution-goal.cc: "ignoring substitute for … not signed by any of the keys in
 *   'trusted-public-keys'"), so the push would only cost time.
 */
import { NixosDeployError } from "../errors";
import { Command, sh } from "../ssh/shell";
import { mustLocal, runLocal } from "./local";

export interface Cache {
    /** Where targets fetch from (http(s)://, file://, s3://). */
    url: string;
    /** "<name>:<base64>", the key the cache's paths are signed with. */
    publicKey: string;
    /** A Nix store URL the deployer writes to; default `url`. It signs, e.g. `?secret-key=<file>`. */
    pushTo?: string;
}

interface PushOptions {
    phase: string;
    env?: NodeJS.ProcessEnv;
    log?: (line: string) => void;
    timeoutS: number;
}

const pushes = new Map<string, Promise<boolean>>();

/**
 * Pushes the closure of `paths` to the cache; false when it was not pushed (the log says why). One
 * push per cache and closure per provider process: ten installs of one system started together
 * push once, and `nix copy` skips what is there. A failed push is tried again by the next install.
 */
export function pushToCache(cache: Cache, paths: string[], o: PushOptions): Promise<boolean> {
    const to = cache.pushTo ?? cache.url;
    const id = JSON.stringify([to, [...paths].sort()]);
    let p = pushes.get(id);
    if (!p) {
        p = push(cache, to, paths, o);
        pushes.set(id, p);
        void p.then(
            (pushed) => pushed || pushes.delete(id),
            () => pushes.delete(id),
        );
    }
    return p;
}

async function push(cache: Cache, to: string, paths: string[], o: PushOptions): Promise<boolean> {
    const fallback = "the deployer sends the missing paths itself";
    if (!signs(to) && !(await signedFor(cache, paths, o))) {
        o.log?.(`not pushing to the binary cache ${cache.url}: cache.pushTo has no ?secret-key= and the closure carries no signature by ${keyName(cache)}, so targets would take nothing from it (require-sigs); ${fallback}`);
        return false;
    }
    o.log?.(`pushing the closure to the binary cache ${cache.url}`);
    const what = `pushing the closure to the binary cache ${cache.url} failed`;
    try {
        await mustLocal(o.phase, what, "nix", ["copy", "--to", to, ...paths], { env: o.env, timeoutMs: o.timeoutS * 1000 });
        return true;
    } catch (e) {
        if (!(e instanceof NixosDeployError)) throw e;
        o.log?.(`${what} (${why(e)}); ${fallback}`);
        return false;
    }
}

/** A store URL that signs what it receives. */
function signs(storeUrl: string): boolean {
    return /[?&]secret-key=/.test(storeUrl);
}

const keyName = (cache: Cache) => cache.publicKey.split(":")[0];

/** Whether some path of the closure already carries a signature by the cache's key (the deployer's Nix signs its builds with `secret-key-files`). */
async function signedFor(cache: Cache, paths: string[], o: PushOptions): Promise<boolean> {
    const r = await runLocal("nix", ["path-info", "--sigs", "--recursive", ...paths], { env: o.env, timeoutMs: 600_000, phase: o.phase });
    // Unknown: pushed, and the push itself tells.
    if (r.code !== 0) return true;
    return r.stdout.split("\n").some((l) => l.split(/\s+/).slice(1).some((s) => s.startsWith(`${keyName(cache)}:`)));
}

/** Nix's error line (or the bound it ran past), without credentials a URL may carry. */
function why(e: NixosDeployError): string {
    // An HTTP error is followed by the server's answer (an HTML page): Nix's line starts "error:".
    const lines = (e.stderrTail ?? "").split("\n").filter((l) => /\S/.test(l));
    const last = (lines.find((l) => /^\s*error:/.test(l)) ?? lines.pop())?.replace(/^\s*error:\s*/, "").trim();
    const bound = /: (timed out after .*)$/.exec(e.shortMessage)?.[1];
    return (last ?? bound ?? "no error output").replace(/\/\/[^/@\s]*@/g, "//…@");
}

/** The target's `nix-store --realise` options: the cache besides (or, with `own` false, instead of) its own substituters. */
export function cacheOptions(cache: Cache, own: boolean): Command {
    return own
        ? sh`--option extra-substituters ${cache.url} --option extra-trusted-public-keys ${cache.publicKey} `
        : sh`--option substituters ${cache.url} --option extra-trusted-public-keys ${cache.publicKey} `;
}
