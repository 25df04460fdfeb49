/**
 * The SDK's *Args interfaces are written by hand for their TSDoc; the zod schemas hold validation
 * and defaults. This reads the interfaces with the TypeScript compiler and fails when the two name
 * different inputs, or when an input lacks its TSDoc.
 */
import * as path from "node:path";
import * as ts from "typescript";
import { z } from "zod";
import { describe, expect, it } from "vitest";
import { connectionSchema } from "../../provider/schema/common";
import { installSchema } from "../../provider/schema/install";
import { imageSchema } from "../../provider/schema/image";
import { rebuildSchema } from "../../provider/schema/rebuild";
import { cacheField } from "../../provider/schema/source";

const SDK = path.resolve(__dirname, "..", "..", "sdk");
const program = ts.createProgram([path.join(SDK, "index.ts")], { strict: true, skipLibCheck: true, noEmit: true });
const checker = program.getTypeChecker();

/** The properties of an exported interface (inherited ones included), with whether each has TSDoc. */
function members(file: string, name: string): Map<string, boolean> {
    const sf = program.getSourceFile(path.join(SDK, file))!;
    const decl = sf.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name)!;
    expect(decl, `${name} in sdk/${file}`).toBeDefined();
    const props = checker.getPropertiesOfType(checker.getTypeAtLocation(decl));
    return new Map(props.map((p) => [p.name, ts.displayPartsToString(p.getDocumentationComment(checker)).trim().length > 0]));
}

function shapeKeys(schema: z.ZodTypeAny): string[] {
    let t: z.ZodTypeAny = schema;
    while (t instanceof z.ZodEffects) t = t.innerType();
    return Object.keys((t as z.ZodObject<z.ZodRawShape>).shape).sort();
}

describe("the SDK's input types", () => {
    it.each([
        ["install.ts", "NixosInstallArgs", installSchema],
        ["rebuild.ts", "NixosRebuildArgs", rebuildSchema],
        ["image.ts", "NixosImageArgs", imageSchema],
        ["connection.ts", "ConnectionArgs", connectionSchema],
        ["connection.ts", "CacheArgs", cacheField.unwrap()],
    ] as const)("sdk/%s %s names the zod schema's inputs, each with TSDoc", (file, name, schema) => {
        const m = members(file, name);
        expect([...m.keys()].sort()).toEqual(shapeKeys(schema));
        expect([...m].filter(([, documented]) => !documented).map(([k]) => k)).toEqual([]);
    });

    it("NixosMachineArgs takes one connection, source and cache, and the rest of each resource's inputs", () => {
        const m = members("machine.ts", "NixosMachineArgs");
        expect([...m.keys()].sort()).toEqual(["cache", "connection", "flake", "install", "nixosConfiguration", "rebuild", "storePaths"]);
    });
});
