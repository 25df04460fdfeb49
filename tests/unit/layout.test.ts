/**
 * The provider's code stays readable at a glance: no function longer than a screen, and nothing
 * typed `any` (the engine's untyped values are `Raw`, read through zod schemas).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..", "..");
const MAX_LINES = 60;

function tsFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? tsFiles(p) : e.name.endsWith(".ts") ? [p] : [];
    });
}

/** Every node of every file under `dirs` that `pick` names, as "file:line name". */
function find(dirs: string[], pick: (n: ts.Node, sf: ts.SourceFile) => string | undefined): string[] {
    const out: string[] = [];
    for (const file of dirs.flatMap((d) => tsFiles(path.join(ROOT, d)))) {
        const sf = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
        const visit = (n: ts.Node): void => {
            const name = pick(n, sf);
            if (name) out.push(`${path.relative(ROOT, file)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1} ${name}`);
            n.forEachChild(visit);
        };
        visit(sf);
    }
    return out;
}

function lines(n: ts.Node, sf: ts.SourceFile): number {
    return sf.getLineAndCharacterOfPosition(n.getEnd()).line - sf.getLineAndCharacterOfPosition(n.getStart()).line + 1;
}

const longFunction = (n: ts.Node, sf: ts.SourceFile): string | undefined => {
    if (!ts.isFunctionLike(n) || !("body" in n) || !n.body) return undefined;
    const count = lines(n, sf);
    return count > MAX_LINES ? `${n.name?.getText(sf) ?? "(anonymous)"}: ${count} lines` : undefined;
};

describe("the provider's layout", () => {
    it(`has no function over ${MAX_LINES} lines`, () => {
        expect(find(["provider"], longFunction)).toEqual([]);
    });

    it("types nothing as any", () => {
        expect(find(["provider", "sdk"], (n) => (n.kind === ts.SyntaxKind.AnyKeyword ? "any" : undefined))).toEqual([]);
    });

    it("finds a long function and an any when there is one", () => {
        const src = `function f(x: any) {\n${"  x;\n".repeat(MAX_LINES)}}\n`;
        const sf = ts.createSourceFile("f.ts", src, ts.ScriptTarget.Latest, true);
        const fn = sf.statements[0];
        expect(longFunction(fn, sf)).toBe(`f: ${MAX_LINES + 2} lines`);
        let anys = 0;
        const visit = (n: ts.Node): void => {
            if (n.kind === ts.SyntaxKind.AnyKeyword) anys++;
            n.forEachChild(visit);
        };
        visit(sf);
        expect(anys).toBe(1);
    });
});
