/**
 * Bounded argument lists. Linux refuses an exec whose argv and environment together pass ARG_MAX
 * (a quarter of the stack limit, 2 MiB by default) with E2BIG: a closure of some 20,000 store paths
 * on one command line is past it. Commands that take paths only on argv (`nix-store --export`,
 * `--query --size`) are run once per chunk instead.
 */

/** Bytes of argv per chunk: well under ARG_MAX, leaving room for the environment. */
export const ARGV_CHUNK_BYTES = 128 * 1024;

/** `items` in order, split so that no chunk's strings (with their NUL ends) pass `maxBytes`. */
export function argvChunks(items: string[], maxBytes = ARGV_CHUNK_BYTES): string[][] {
    const chunks: string[][] = [];
    let chunk: string[] = [];
    let bytes = 0;
    for (const item of items) {
        const n = Buffer.byteLength(item) + 1;
        if (chunk.length && bytes + n > maxBytes) {
            chunks.push(chunk);
            chunk = [];
            bytes = 0;
        }
        chunk.push(item);
        bytes += n;
    }
    if (chunk.length) chunks.push(chunk);
    return chunks;
}
