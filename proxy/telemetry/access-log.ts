// The access log line of a finished exchange, from its summary. Pure. The session id is hashed (a
// session id is a bearer credential for its session); the query is dropped (legacy SSE carries the session id there);
// headers and bodies never appear.

import { pathOf } from "../http/headers.ts";
import type { ExchangeSummary } from "./exchange-summary.ts";
import { shortHash } from "./short-hash.ts";

const round2 = (value: number) => Math.round(value * 100) / 100;

export function accessLogLine(summary: ExchangeSummary): Record<string, unknown> {
  const line: Record<string, unknown> = {
    reqId: summary.id,
    method: summary.method,
    path: pathOf(summary.target),
    status: summary.status,
    durationMs: round2(summary.durationMs),
    outcome: summary.outcome,
    kind: summary.kind,
  };
  const mcpMethod = summary.mcpMethod;
  if (mcpMethod !== undefined) line.mcpMethod = mcpMethod;
  if (mcpMethod === "tools/call") line.tool = summary.mcpName;
  if (mcpMethod !== undefined && summary.callOutcome !== undefined) line.mcpOutcome = summary.callOutcome;
  if (summary.sessionId !== undefined) line.session = shortHash(summary.sessionId);
  if (summary.upstreamMs !== undefined) line.upstreamMs = round2(summary.upstreamMs);
  if (summary.errorCode !== undefined) line.error = summary.errorCode;
  if (summary.keepalives > 0) line.keepalives = summary.keepalives;
  return line;
}
