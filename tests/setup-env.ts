// Every test process configures Nix through the environment only: no cache, no registry.
import { nixConfig } from "./testbed/nix";

process.env.NIX_CONFIG = nixConfig();
