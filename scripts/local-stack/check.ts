// `npm start -- --check`: 401 without the key, initialize with it, and the server's own key
// delivered by header and by file (the server's secret_fingerprint tool reports both).

import { createHash } from "node:crypto";

export interface CheckInput {
  readonly mcpUrl: string;
  readonly apiKey: string;
  readonly upstreamKey: string;
  readonly ready: boolean;
}

export async function checkStack({ mcpUrl, apiKey, upstreamKey, ready }: CheckInput): Promise<{
  ok: boolean;
  summary: string;
}> {
  const post = (body: unknown, key?: string) =>
    fetch(mcpUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      },
      body: JSON.stringify(body),
    });
  const initialize = {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: {
      protocolVersion: "2025-11-25",
      capabilities: {},
      clientInfo: { name: "local-stack-check", version: "1" },
    },
  };
  const refused = await post(initialize);
  await refused.text();
  const response = await post(initialize, apiKey);
  const text = await response.text();
  const session = response.headers.get("mcp-session-id") ?? "";
  const fingerprintCall = await fetch(mcpUrl, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      authorization: `Bearer ${apiKey}`,
      "mcp-session-id": session,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "secret_fingerprint", arguments: {} },
    }),
  }).then((r) => r.text());
  const expected = createHash("sha256").update(upstreamKey).digest("hex").slice(0, 12);
  const delivered =
    fingerprintCall.includes(`\\"header\\":\\"${expected}\\"`) &&
    fingerprintCall.includes(`\\"file\\":\\"${expected}\\"`);
  const ok =
    refused.status === 401 && response.status === 200 && text.includes('"serverInfo"') && ready && delivered;
  return {
    ok,
    summary: `local-stack check: without key -> ${refused.status}; initialize with key -> ${response.status}; ready=${ready ? "ready" : "not_ready"}; upstream key delivered by header and file: ${delivered}`,
  };
}
