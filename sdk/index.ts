export type { CacheArgs, ConnectionArgs, SourceArgs } from "./connection";
export { NixosInstall, NixosInstallArgs } from "./install";
export { NixosMachine, NixosMachineArgs } from "./machine";
export { NixosRebuild, NixosRebuildArgs } from "./rebuild";
export { NixosImage, NixosImageArgs } from "./image";
