// Library API: embed the sidecar in a program and drive it as SIGTERM would (`close()`), or stop it
// at once (`destroy()`).
export { type ConfigResult, envName, helpText, OPTIONS, parseConfig, type SidecarConfig } from "./config.ts";
export { SIDECAR_ERRORS } from "./errors.ts";
export type { DrainOutcome, DrainPhase } from "./lifecycle/drain.ts";
export {
  createSidecar,
  type ReadinessCheck,
  Sidecar,
  SidecarClosedError,
  type SidecarOptions,
  VERSION,
} from "./sidecar.ts";
export { createLogger } from "./telemetry/logger.ts";
