/** Writes schema.json from the zod schemas and the SDK's TSDoc. Run: node node_modules/vite-node/vite-node.mjs scripts/gen-schema.ts */
import * as fs from "node:fs";
import * as path from "node:path";
import { packageSchema } from "../provider/schema/package-schema";
import { sdkDocs } from "./sdk-docs";

const root = path.resolve(__dirname, "..");
const version = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version;
fs.writeFileSync(path.join(root, "schema.json"), JSON.stringify(packageSchema(version, sdkDocs()), null, 2) + "\n");
console.log("wrote schema.json");
