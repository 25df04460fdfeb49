/**
 * A kexec image behind a private, presigned URL: the target downloads it with the real curl (the
 * URL on curl's stdin), and the URL's user, password and signature show nowhere in the log or the
 * outputs.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as hooks from "../../../provider/resources/install";
import { httpServer, HttpServer } from "../../testbed/http";
import { buildKexecTarball } from "../../testbed/kexec";
import { fixtureCopy } from "../../testbed/nix";
import { hostsForThisFile } from "../../testbed/per-file";
import { clientKey } from "../../testbed/state";
import { checked } from "./helpers";

const createHost = hostsForThisFile();
let dir: string;
let server: HttpServer;
beforeAll(async () => {
    dir = fixtureCopy();
    const images = fs.mkdtempSync(path.join(os.tmpdir(), "pnx-images-"));
    fs.renameSync(buildKexecTarball(fs.mkdtempSync(path.join(os.tmpdir(), "pnx-kexec-"))), path.join(images, "kexec.tar.gz"));
    server = await httpServer(await createHost({ name: "images", kind: "debian", nix: false }), images, "kexec.tar.gz");
});
afterAll(() => server?.stop());

describe("NixosInstall with a kexec image behind a private URL", () => {
    it("downloads it with curl reading the URL from stdin, and shows the URL without its credentials", async () => {
        const h = await createHost({ disks: [128] });
        const url = `${server.url.replace("http://", "http://deploy:s3cret-pw@")}/kexec.tar.gz?X-Amz-Signature=t0ken-value`;
        const inputs = await checked({ connection: { host: h.address, privateKey: clientKey().privateKey, hostKey: h.hostKey }, flake: `path:${dir}/flake#web`, kexecTarball: url, phases: ["kexec"] });
        const lines: string[] = [];
        const log = console.log;
        console.log = (l: string) => lines.push(l);
        let outs: Record<string, unknown>;
        try {
            outs = (await hooks.create(inputs)).outs;
        } finally {
            console.log = log;
        }
        expect(outs.phasesCompleted).toEqual(["kexec"]);
        expect(await h.bootKind()).toBe("installer");
        expect(lines).toContain(`web: kexec: downloading http://…@${server.url.slice("http://".length)}/kexec.tar.gz?… on the target`);
        for (const text of [...lines, JSON.stringify({ ...outs, kexecTarball: undefined })]) {
            expect(text).not.toContain("s3cret-pw");
            expect(text).not.toContain("t0ken-value");
        }
    });
});
