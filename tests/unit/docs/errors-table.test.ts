/**
 * docs/errors.md against the code and the tests, both ways:
 * - every message the provider can raise (a `what:` of an error or a failed command, a `fail(…)`,
 *   a local Nix command's `what`) is listed in docs/errors.md;
 * - every row of docs/errors.md is asserted by at least one test: some string or regex literal in
 *   a test file matches the row's message text.
 * Both sides are read with the TypeScript compiler's parser, so quoting and templates are handled.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..", "..", "..");
/** Shorter pieces ("failed", " (exit ") say nothing about which message is meant. */
const MIN_PIECE = 12;

function tsFiles(dir: string): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? tsFiles(p) : e.name.endsWith(".ts") ? [p] : [];
    });
}

function parse(file: string): ts.SourceFile {
    return ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
}

function visit(node: ts.Node, f: (n: ts.Node) => void): void {
    f(node);
    node.forEachChild((c) => visit(c, f));
}

/** The fixed text of a string or template expression, one piece per run between `${…}`. */
function staticPieces(e: ts.Expression): string[] {
    if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
    if (ts.isTemplateExpression(e)) return [e.head.text, ...e.templateSpans.map((s) => s.literal.text)];
    if (ts.isConditionalExpression(e)) return [...staticPieces(e.whenTrue), ...staticPieces(e.whenFalse)];
    if (ts.isParenthesizedExpression(e)) return staticPieces(e.expression);
    return [];
}

/** A regex literal's fixed runs: split where a pattern construct stands, then unescaped. */
function regexPieces(literal: string): string[] {
    const body = literal.slice(1, literal.lastIndexOf("/"));
    return body
        .split(/\\[dDsSwWb][+*?]?|\.[*+]\??|\[(?:\\.|[^\]])*\][*+?]?|\(\?:|\||\^|\$|\{\d+(?:,\d*)?\}/)
        .map((p) => p.replace(/\\(.)/g, "$1").replace(/[()]/g, (c) => c));
}

/** Message texts the provider can raise, each as its longest fixed piece. */
function raisedMessages(): { file: string; text: string }[] {
    const out: { file: string; text: string }[] = [];
    for (const file of tsFiles(path.join(ROOT, "provider"))) {
        visit(parse(file), (n) => {
            let e: ts.Expression | undefined;
            if (ts.isPropertyAssignment(n) && n.name.getText() === "what") e = n.initializer;
            if (ts.isCallExpression(n)) {
                const callee = n.expression.getText();
                if (/(^|\.)fail$/.test(callee)) e = n.arguments[0];
                if (callee === "mustLocal") e = n.arguments[1];
            }
            if (!e) return;
            const longest = staticPieces(e).map((p) => p.trim()).sort((a, b) => b.length - a.length)[0];
            if (longest && longest.length >= MIN_PIECE) out.push({ file: path.relative(ROOT, file), text: longest });
        });
    }
    return out;
}

/** Every string, template and regex literal of the tests, as fixed pieces. */
function testLiterals(): string[] {
    const out = new Set<string>();
    for (const file of tsFiles(path.join(ROOT, "tests"))) {
        if (file === __filename) continue;
        visit(parse(file), (n) => {
            if (ts.isRegularExpressionLiteral(n)) regexPieces(n.text).forEach((p) => out.add(p));
            else if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateExpression(n)) staticPieces(n).forEach((p) => out.add(p));
        });
    }
    return [...out].map((p) => p.trim()).filter((p) => p.length >= MIN_PIECE);
}

const DOC = fs.readFileSync(path.join(ROOT, "docs", "errors.md"), "utf8");

/** The message cell of every table row, backticks removed. */
function rows(): string[] {
    return DOC.split("\n")
        .filter((l) => l.startsWith("| ") && !l.startsWith("| message"))
        .map((l) => l.slice(2, l.indexOf(" | ")).replace(/`/g, "").trim());
}

/** A message cell's fixed runs: placeholders (…, N, <name>, X) split it. */
function rowPieces(cell: string): string[] {
    return cell
        .replace(/\s\((build|facts|activate|diff)\)$/, "")
        .split(/…|\bN\b|<[^>]+>|\b[XYPAB]\b|\/nix\/store\/|\/dev\/|\(exit|\s\/\s|\s\+\s/)
        .map((p) => p.trim())
        .filter((p) => p.length >= MIN_PIECE);
}

/** Rows whose message no literal matches. */
function untestedRows(cells: string[], literals: string[]): string[] {
    return cells.filter((cell) => {
        const pieces = rowPieces(cell);
        return !literals.some((l) => cell.includes(l) || pieces.some((p) => l.includes(p)));
    });
}

describe("docs/errors.md", () => {
    const plainDoc = DOC.replace(/`/g, "");

    it("lists every message the provider raises", () => {
        const found = raisedMessages();
        expect(found.length).toBeGreaterThan(40);
        const missing = found.filter((m) => !plainDoc.includes(m.text)).map((m) => `${m.file}: ${m.text}`);
        expect(missing).toEqual([]);
    });

    it("has a test for every row: a test's literal matches the row's message", () => {
        const literals = testLiterals();
        const all = rows();
        expect(all.length).toBeGreaterThan(40);
        expect(untestedRows(all, literals)).toEqual([]);
    });

    it("reads a row as untested when no literal matches it, and as tested when one does", () => {
        const cell = "the installer did not answer SSH on port P within N s";
        expect(rowPieces(cell)).toEqual(["the installer did not answer SSH on port"]);
        expect(untestedRows([cell], ["the installer did not answer"])).toEqual([]);
        expect(untestedRows([cell], [...regexPieces("/the installer did not answer SSH on port \\d+ within 3 s/")])).toEqual([]);
        expect(untestedRows([cell], ["the installer did not boot", "answer SSH on port 22"])).toEqual([cell]);
        expect(regexPieces("/installer did not answer SSH on port \\d+ within/")).toContain("installer did not answer SSH on port ");
        expect(regexPieces("/a\\(b\\)c.*d/")).toEqual(["a(b)c", "d"]);
    });
});
