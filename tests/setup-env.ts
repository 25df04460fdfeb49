// Every test process configures Nix through the environment only: no cache, no registry.
import * as fs from "node:fs";
import * as path from "node:path";
import { nixConfig } from "./testbed/nix";
import { runDir } from "./testbed/state";

process.env.NIX_CONFIG = nixConfig();
// What the provider remembers on the deployer's disk (provider/nix/siblings.ts) stays in this run.
process.env.XDG_CACHE_HOME = path.join(runDir(), "xdg-cache");
fs.mkdirSync(process.env.XDG_CACHE_HOME, { recursive: true });
