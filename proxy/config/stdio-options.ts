// A stdio MCP server run by the sidecar itself, one supervised child per session, instead of an
// HTTP --upstream (upstream/stdio/).

import { type OptionSpec, option } from "./option.ts";
import {
  parseBoolean,
  parseCommandLine,
  parseDirectory,
  parseDuration,
  parseEnvSetting,
  parseExecutable,
  parseInteger,
} from "./values.ts";

export const STDIO_OPTIONS: readonly OptionSpec[] = [
  option({
    key: "stdio",
    flag: "stdio",
    valueName: '"COMMAND ARGS..."',
    default: undefined,
    kind: "optional",
    description:
      "Run this stdio MCP server, one child per session, instead of --upstream. Split into words with no shell: quotes and backslashes work, nothing else does",
    parse: parseCommandLine,
  }),
  option({
    key: "stdioCommand",
    flag: "stdio-command",
    valueName: "PATH",
    default: undefined,
    kind: "optional",
    description: "As --stdio, the executable alone; its arguments in --stdio-arg",
    parse: parseExecutable,
  }),
  option({
    key: "stdioArgs",
    flag: "stdio-arg",
    valueName: "ARG",
    default: undefined,
    kind: "repeatable",
    description: "One argument of --stdio-command, taken as it is (repeatable; env: comma-separated)",
    parse: (raw: string) => raw,
  }),
  option({
    key: "stdioCwd",
    flag: "stdio-cwd",
    valueName: "DIR",
    default: undefined,
    kind: "optional",
    description: "Working directory of the stdio children (default: the sidecar's)",
    parse: parseDirectory,
  }),
  option({
    key: "stdioEnv",
    flag: "stdio-env",
    valueName: "NAME[=VALUE]",
    default: undefined,
    kind: "repeatable",
    description:
      "Give the stdio children NAME: the sidecar's own value, or VALUE. They get only PATH, HOME, LANG, TZ, PYTHONUNBUFFERED=1, these and --secret-env (repeatable; env: comma-separated)",
    parse: parseEnvSetting,
  }),
  option({
    key: "sessionIdleTimeoutMs",
    flag: "session-idle-timeout",
    valueName: "DURATION",
    default: "15m",
    description:
      "End a stdio session (and stop its child) after this long with no request and no message either way, open GET stream or not",
    parse: parseDuration,
  }),
  option({
    key: "maxSessions",
    flag: "max-sessions",
    valueName: "N",
    default: "100",
    description:
      "Most stdio sessions (children) at once; an initialize beyond it gets 503 with a JSON-RPC error",
    parse: parseInteger(1, 100_000),
  }),
  option({
    key: "stdioStopGraceMs",
    flag: "stdio-stop-grace",
    valueName: "DURATION",
    default: "2s",
    description:
      "Stopping a child: stdin closed, then SIGTERM to its process group after this long, then SIGKILL after as long again",
    parse: parseDuration,
  }),
  option({
    key: "stdioSpares",
    flag: "stdio-spares",
    valueName: "N",
    default: "1",
    description:
      "Children kept started ahead of need, so an initialize does not wait for one to boot; each serves one session, never two (0 = none)",
    parse: parseInteger(0, 100),
  }),
  option({
    key: "stdioPool",
    flag: "stdio-pool",
    valueName: "N",
    default: "2",
    description:
      "Children serving 2026-07-28 stateless requests (no session), each request on the least busy one; started by the first such request, warm from then on (0 = none: such a client gets 400 and falls back to a session)",
    parse: parseInteger(0, 100),
  }),
  option({
    key: "rollOnRotation",
    flag: "roll-on-rotation",
    valueName: "BOOL",
    default: "true",
    description:
      "When a --secret-env secret rotates, retire each running child once its calls have finished (within --drain-timeout), so its session re-initializes onto a child with the new value; false: keep them until their sessions end",
    parse: parseBoolean,
  }),
];
