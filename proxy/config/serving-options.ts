// Where the sidecar listens, its own endpoints and readiness, the limits it enforces on clients,
// and how it reaches the upstream.

import { type OptionSpec, option } from "./option.ts";
import {
  parseDuration,
  parseEnum,
  parseHost,
  parseInteger,
  parsePath,
  parsePort,
  parseSize,
  parseUpstream,
} from "./values.ts";

const READY_PROBES = ["mcp", "http", "tcp"] as const;

export const SERVING_OPTIONS: readonly OptionSpec[] = [
  option({
    key: "upstream",
    flag: "upstream",
    valueName: "URL",
    default: undefined,
    kind: "optional",
    description: "Origin of the MCP server to front (required unless --stdio), e.g. http://127.0.0.1:3000",
    parse: parseUpstream,
  }),
  option({
    key: "port",
    flag: "port",
    valueName: "PORT",
    default: "8080",
    description: "Port to listen on (0 = any free port)",
    parse: parsePort,
  }),
  option({
    key: "host",
    flag: "host",
    valueName: "HOST",
    default: "0.0.0.0",
    description: "Address to listen on",
    parse: parseHost,
  }),
  option({
    key: "healthPath",
    flag: "health-path",
    valueName: "PATH",
    default: "/health",
    description: "Liveness endpoint (200 while the process runs)",
    parse: parsePath,
  }),
  option({
    key: "readyPath",
    flag: "ready-path",
    valueName: "PATH",
    default: "/ready",
    description: "Readiness endpoint (200 only when the upstream and every required dependency answer)",
    parse: parsePath,
  }),
  option({
    key: "readyProbe",
    flag: "ready-probe",
    valueName: "KIND",
    default: "mcp",
    description:
      "How readiness checks the upstream: mcp (JSON-RPC ping POST, any JSON-RPC answer counts), http (GET, 2xx counts), tcp (connect)",
    parse: parseEnum(READY_PROBES),
  }),
  option({
    key: "readyProbePath",
    flag: "ready-probe-path",
    valueName: "PATH",
    default: "/mcp",
    description: "Upstream path the mcp or http readiness probe requests",
    parse: parsePath,
  }),
  option({
    key: "readyCacheMs",
    flag: "ready-cache",
    valueName: "DURATION",
    default: "2s",
    description: "How long a readiness probe result is reused, so health checks do not load the server",
    parse: parseDuration,
  }),
  option({
    key: "readyTimeoutMs",
    flag: "ready-timeout",
    valueName: "DURATION",
    default: "2s",
    description: "Time the readiness probe waits for the upstream",
    parse: parseDuration,
  }),
  option({
    key: "sseKeepaliveMs",
    flag: "sse-keepalive",
    valueName: "DURATION",
    default: "15s",
    description:
      "Write an SSE comment on a forwarded event stream silent this long (0 = off), between events only",
    parse: parseDuration,
  }),
  option({
    key: "maxBodyBytes",
    flag: "max-body-size",
    valueName: "SIZE",
    default: "4MiB",
    description: "Largest request body forwarded; larger gets 413",
    parse: parseSize,
  }),
  option({
    key: "maxHeaderBytes",
    flag: "max-header-size",
    valueName: "SIZE",
    default: "16KiB",
    description: "Largest total request header size; larger gets 431",
    parse: parseSize,
  }),
  option({
    key: "maxHeaderCount",
    flag: "max-header-count",
    valueName: "N",
    default: "100",
    description: "Most request header lines; more gets 431",
    parse: parseInteger(1, 10_000),
  }),
  option({
    key: "headersTimeoutMs",
    flag: "headers-timeout",
    valueName: "DURATION",
    default: "10s",
    description: "Time a client has to send its request headers (slowloris guard)",
    parse: parseDuration,
  }),
  option({
    key: "requestTimeoutMs",
    flag: "request-timeout",
    valueName: "DURATION",
    default: "60s",
    description:
      "Time a client has to send its whole request, body included (0 = off); never limits the response",
    parse: parseDuration,
  }),
  option({
    key: "keepAliveTimeoutMs",
    flag: "keep-alive-timeout",
    valueName: "DURATION",
    default: "65s",
    description:
      "Idle time before a client keep-alive connection is closed; above a load balancer's 60 s idle timeout",
    parse: parseDuration,
  }),
  option({
    key: "upstreamConnectTimeoutMs",
    flag: "upstream-connect-timeout",
    valueName: "DURATION",
    default: "5s",
    description: "Time to connect to the upstream before answering 504",
    parse: parseDuration,
  }),
  option({
    key: "upstreamHeadersTimeoutMs",
    flag: "upstream-headers-timeout",
    valueName: "DURATION",
    default: "0",
    description:
      "Time the upstream has to start its response before 504 (0 = off: a JSON tools/call answers only when done)",
    parse: parseDuration,
  }),
  option({
    key: "upstreamConnections",
    flag: "upstream-connections",
    valueName: "N",
    default: "0",
    description:
      "Most connections to the upstream (0 = no limit). Each open event stream holds one, so a limit below the number of open streams makes calls queue behind them",
    parse: parseInteger(0, 65_535),
  }),
];
