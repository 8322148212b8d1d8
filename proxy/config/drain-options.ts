// The drain on SIGTERM (lifecycle/drain.ts).

import { type OptionSpec, option } from "./option.ts";
import { parseDuration } from "./values.ts";

export const DRAIN_OPTIONS: readonly OptionSpec[] = [
  option({
    key: "drainDelayMs",
    flag: "drain-delay",
    valueName: "DURATION",
    default: "0",
    description: "After SIGTERM, keep serving this long while /ready fails, so a load balancer stops routing",
    parse: parseDuration,
  }),
  option({
    key: "drainTimeoutMs",
    flag: "drain-timeout",
    valueName: "DURATION",
    default: "25s",
    description: "After SIGTERM, cut what is still in flight after this long and exit non-zero",
    parse: parseDuration,
  }),
  option({
    key: "drainRetryAfterMs",
    flag: "drain-retry-after",
    valueName: "DURATION",
    default: "2s",
    description:
      "While draining: Retry-After of 503 answers and the SSE retry: sent before closing an event stream",
    parse: parseDuration,
  }),
];
