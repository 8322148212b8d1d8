// Metrics and logs (telemetry/).

import { type OptionSpec, option } from "./option.ts";
import { parseEnum, parseInteger, parsePath, parsePort } from "./values.ts";

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

export const TELEMETRY_OPTIONS: readonly OptionSpec[] = [
  option({
    key: "metricsPath",
    flag: "metrics-path",
    valueName: "PATH",
    default: "/metrics",
    description: "Prometheus metrics endpoint",
    parse: parsePath,
  }),
  option({
    key: "metricsPort",
    flag: "metrics-port",
    valueName: "PORT",
    default: undefined,
    kind: "optional",
    description:
      "Serve metrics on this port only (same --host), so they are never reachable through the load balancer; absent: on --port",
    parse: parsePort,
  }),
  option({
    key: "metricsMaxTools",
    flag: "metrics-max-tools",
    valueName: "N",
    default: "100",
    description:
      'Distinct tool names kept as metric labels; more fold into "other" (bounds the series count)',
    parse: parseInteger(1, 10_000),
  }),
  option({
    key: "logLevel",
    flag: "log-level",
    valueName: "LEVEL",
    default: "info",
    description: `Log level: ${LOG_LEVELS.join(", ")}`,
    parse: parseEnum(LOG_LEVELS),
  }),
];
