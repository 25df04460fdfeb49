export type { ConnectionArgs, SourceArgs } from "./connection";
export { NixosInstall, NixosInstallArgs } from "./install";
export { NixosRebuild, NixosRebuildArgs } from "./rebuild";
