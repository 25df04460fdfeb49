/** Writes schema.json from the zod schemas. Run: node node_modules/vite-node/vite-node.mjs scripts/gen-schema.ts */
import * as fs from "node:fs";
import * as path from "node:path";
import { packageSchema } from "../provider/schema/package-schema";

const root = path.resolve(__dirname, "..");
const version = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).version;
fs.writeFileSync(path.join(root, "schema.json"), JSON.stringify(packageSchema(version), null, 2) + "\n");
console.log("wrote schema.json");
