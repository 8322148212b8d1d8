// Library API: embed the sidecar in a program and drive it as SIGTERM would (`close()`), or stop it
// at once (`destroy()`).
export { type ConfigResult, envName, helpText, OPTIONS, parseConfig, type SidecarConfig } from "./config.ts";
export type { DrainOutcome, DrainPhase } from "./drain.ts";
export { SIDECAR_ERRORS } from "./errors.ts";
export { createLogger } from "./logger.ts";
export { createSidecar, type ReadinessCheck, Sidecar, type SidecarOptions, VERSION } from "./sidecar.ts";
