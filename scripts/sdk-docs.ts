/**
 * The SDK's TSDoc, read with the TypeScript compiler: the one place input descriptions are
 * written. scripts/gen-schema.ts puts them into schema.json, and tests/unit/schema.test.ts fails
 * when the committed schema.json and the TSDoc differ.
 */
import * as path from "node:path";
import * as ts from "typescript";

const SDK = path.resolve(__dirname, "..", "sdk");

/** Property name to its TSDoc text, for each exported interface (inherited members included). */
export type SdkDocs = Record<"NixosInstallArgs" | "NixosRebuildArgs" | "NixosImageArgs" | "ConnectionArgs" | "CacheArgs", Record<string, string>>;

export function sdkDocs(): SdkDocs {
    const program = ts.createProgram([path.join(SDK, "index.ts")], { strict: true, skipLibCheck: true, noEmit: true });
    const checker = program.getTypeChecker();
    const read = (file: string, name: string): Record<string, string> => {
        const sf = program.getSourceFile(path.join(SDK, file));
        const decl = sf?.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
        if (!decl) throw new Error(`sdk/${file} has no interface ${name}`);
        const props = checker.getPropertiesOfType(checker.getTypeAtLocation(decl));
        return Object.fromEntries(props.map((p) => [p.name, ts.displayPartsToString(p.getDocumentationComment(checker)).replace(/\s*\n\s*/g, " ").trim()]));
    };
    return {
        NixosInstallArgs: read("install.ts", "NixosInstallArgs"),
        NixosRebuildArgs: read("rebuild.ts", "NixosRebuildArgs"),
        NixosImageArgs: read("image.ts", "NixosImageArgs"),
        ConnectionArgs: read("connection.ts", "ConnectionArgs"),
        CacheArgs: read("connection.ts", "CacheArgs"),
    };
}
