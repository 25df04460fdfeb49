/** Test-bed hosts scoped to one vitest test file. */
import { afterAll } from "vitest";
import { createHost, Host, HostOptions } from "./host";

/** createHost for one test file: every host it makes is destroyed after the file's tests. */
export function hostsForThisFile(): (options?: HostOptions) => Promise<Host> {
    const made: Host[] = [];
    afterAll(async () => {
        await Promise.all(made.map((h) => h.destroy()));
    });
    return async (options) => {
        const h = await createHost(options);
        made.push(h);
        return h;
    };
}
