// /metrics after scripted traffic through the sidecar to a real upstream, read with a real
// Prometheus text-format parser.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BoundedLabel } from "../proxy/telemetry/fast-metrics.ts";
import { deferred, openStream, send } from "./helpers/client.ts";
import { AGENT_TOKEN, startEmulator } from "./helpers/emulator.ts";
import { useTestUpstream } from "./helpers/fixtures.ts";
import { freePort } from "./helpers/net.ts";
import { startReferenceServer } from "./helpers/processes.ts";
import { startSidecar } from "./helpers/sidecar.ts";

type Families = ReturnType<typeof parsePrometheusTextFormat>;

/**
 * parse-prometheus-text-format flattens a histogram into one unlabelled sample, so histogram TYPE
 * lines are dropped first: its `_bucket`, `_sum` and `_count` series then parse as plain series
 * with their labels. Everything else is parsed as the format defines it.
 */
function parse(text: string): Families {
  return parsePrometheusTextFormat(text.replace(/^# TYPE \S+ histogram\n/gm, ""));
}

async function scrape(url: URL): Promise<Families> {
  const response = await send(url);
  expect(response.status).toBe(200);
  expect(String(response.headers["content-type"])).toContain("text/plain");
  return parse(response.text);
}

function sample(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  // A series' samples may come back split over several families of the same name (see parse()).
  const samples = families.filter((f) => f.name === name).flatMap((f) => f.metrics);
  const match = samples.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (!match) return undefined;
  return Number(match.value);
}

const upstream = useTestUpstream();

describe("/metrics after MCP traffic", () => {
  it("counts calls by method, tool and outcome, times them per tool, and counts HTTP requests by route and status", async () => {
    const server = await startReferenceServer();
    const { url, logs } = await startSidecar(server.origin);
    const client = new Client({ name: "metrics-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", url)));
    for (let i = 0; i < 3; i++) await client.callTool({ name: "echo", arguments: { message: `m${i}` } });
    await client.callTool({ name: "slow", arguments: { ms: 50, steps: 2 } }, undefined, {
      onprogress: () => {},
    });
    await client.callTool({ name: "slow", arguments: { ms: 10, steps: 1 } });
    expect(await client.callTool({ name: "no_such_tool", arguments: {} })).toMatchObject({ isError: true });
    await expect(client.request({ method: "no/such/method", params: {} }, z.object({}))).rejects.toThrow(
      /Method not found/,
    );
    await client.close();
    await send(new URL("/ready", url));
    await send(new URL("/health", url));

    const families = await scrape(new URL("/metrics", url));
    expect(
      sample(families, "mcp_sidecar_mcp_calls_total", {
        method: "tools/call",
        tool: "echo",
        outcome: "result",
      }),
    ).toBe(3);
    expect(
      sample(families, "mcp_sidecar_mcp_calls_total", {
        method: "tools/call",
        tool: "slow",
        outcome: "result",
      }),
    ).toBe(2);
    expect(
      sample(families, "mcp_sidecar_mcp_calls_total", {
        method: "tools/call",
        tool: "no_such_tool",
        outcome: "tool_error",
      }),
    ).toBe(1);
    expect(
      sample(families, "mcp_sidecar_mcp_calls_total", {
        method: "no/such/method",
        tool: "",
        outcome: "jsonrpc_error",
      }),
    ).toBe(1);
    expect(sample(families, "mcp_sidecar_mcp_calls_total", { method: "initialize", outcome: "result" })).toBe(
      1,
    );
    expect(
      sample(families, "mcp_sidecar_mcp_call_duration_seconds_count", { method: "tools/call", tool: "slow" }),
    ).toBe(2);
    // Buckets are cumulative and end at the count; which bucket a call lands in is timing, not tested.
    const slowBuckets = families
      .filter((f) => f.name === "mcp_sidecar_mcp_call_duration_seconds_bucket")
      .flatMap((f) => f.metrics)
      .filter((m) => m.labels?.tool === "slow")
      .map((m) => Number(m.value));
    expect(slowBuckets.length).toBeGreaterThan(10);
    expect(slowBuckets).toEqual([...slowBuckets].sort((a, b) => a - b));
    expect(slowBuckets.at(-1)).toBe(2);
    expect(sample(families, "mcp_sidecar_mcp_call_duration_seconds_count", { tool: "echo" })).toBe(3);
    expect(
      sample(families, "mcp_sidecar_http_requests_total", { route: "forward", status: "200" }),
    ).toBeGreaterThanOrEqual(7);
    expect(sample(families, "mcp_sidecar_http_requests_total", { route: "ready", status: "200" })).toBe(1);
    expect(sample(families, "mcp_sidecar_http_requests_total", { route: "health", status: "200" })).toBe(1);
    expect(sample(families, "mcp_sidecar_readiness_probes_total", { result: "ok" })).toBe(1);
    expect(sample(families, "mcp_sidecar_http_in_flight")).toBe(0);
    expect(sample(families, "mcp_sidecar_drain_state", { state: "serving" })).toBe(1);
    expect(sample(families, "mcp_sidecar_process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(families.find((f) => f.name === "mcp_sidecar_nodejs_eventloop_lag_seconds")).toBeDefined();
    // The tool outcome is in the request log line too.
    expect(logs.some((line) => line.tool === "no_such_tool" && line.mcpOutcome === "tool_error")).toBe(true);
  });

  it("counts a cancelled call, an upstream failure and open event streams by kind, and keepalives", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(": open\n\n");
      if (req.method === "POST") await release.promise;
    });
    const { url } = await startSidecar(upstream.url, ["--sse-keepalive", "20ms"]);
    const get = await openStream(new URL("/mcp", url), {
      headers: { accept: "text/event-stream", "mcp-session-id": "s1" },
    });
    const legacy = await openStream(new URL("/sse", url));
    const call = await openStream(new URL("/mcp", url), {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"long"}}',
    });
    await get.waitFor((t) => t.includes(": keepalive"));
    let families = await scrape(new URL("/metrics", url));
    expect(sample(families, "mcp_sidecar_open_event_streams", { kind: "get_standalone" })).toBe(1);
    expect(sample(families, "mcp_sidecar_open_event_streams", { kind: "legacy_sse" })).toBe(1);
    expect(sample(families, "mcp_sidecar_open_event_streams", { kind: "post_response" })).toBe(1);
    expect(sample(families, "mcp_sidecar_http_in_flight")).toBe(3);
    expect(sample(families, "mcp_sidecar_sse_keepalives_total")).toBeGreaterThan(0);
    call.abort();
    get.abort();
    legacy.abort();
    await expect
      .poll(async () => sample(await scrape(new URL("/metrics", url)), "mcp_sidecar_http_in_flight"))
      .toBe(0);
    families = await scrape(new URL("/metrics", url));
    expect(
      sample(families, "mcp_sidecar_mcp_calls_total", {
        method: "tools/call",
        tool: "long",
        outcome: "cancelled",
      }),
    ).toBe(1);
    expect(sample(families, "mcp_sidecar_open_event_streams", { kind: "get_standalone" })).toBe(0);
    release.resolve();

    const dead = await startSidecar(`http://127.0.0.1:${await freePort()}`);
    await send(new URL("/mcp", dead.url), {
      method: "POST",
      body: '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo"}}',
    });
    const deadFamilies = await scrape(new URL("/metrics", dead.url));
    expect(
      sample(deadFamilies, "mcp_sidecar_mcp_calls_total", { tool: "echo", outcome: "transport_error" }),
    ).toBe(1);
    expect(sample(deadFamilies, "mcp_sidecar_upstream_errors_total", { kind: "unreachable" })).toBe(1);
    expect(sample(deadFamilies, "mcp_sidecar_http_requests_total", { route: "forward", status: "502" })).toBe(
      1,
    );
  });

  it('folds tool names beyond --metrics-max-tools into "other"', async () => {
    upstream.handle((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    const { url } = await startSidecar(upstream.url, ["--metrics-max-tools", "3"]);
    for (let i = 0; i < 8; i++) {
      await send(new URL("/mcp", url), {
        method: "POST",
        body: `{"jsonrpc":"2.0","id":${i},"method":"tools/call","params":{"name":"tool-${i}"}}`,
      });
    }
    const tools = (await scrape(new URL("/metrics", url)))
      .find((f) => f.name === "mcp_sidecar_mcp_calls_total")
      ?.metrics.map((m) => `${m.labels?.tool}=${m.value}`)
      .sort();
    expect(tools).toEqual(["other=5", "tool-0=1", "tool-1=1", "tool-2=1"]);
  });

  it("serves metrics only on --metrics-port when set; on the main port /metrics is an ordinary path", async () => {
    const metricsPort = await freePort();
    const { url, sidecar } = await startSidecar(upstream.url, ["--metrics-port", String(metricsPort)]);
    expect(sidecar.metricsUrl?.port).toBe(String(metricsPort));
    expect(
      sample(await scrape(new URL(`http://127.0.0.1:${metricsPort}/metrics`)), "mcp_sidecar_drain_state", {
        state: "serving",
      }),
    ).toBe(1);
    await send(new URL("/metrics", url));
    expect(upstream.seen.at(-1)?.url).toBe("/metrics");
    expect((await send(new URL(`http://127.0.0.1:${metricsPort}/other`))).status).toBe(404);
  });

  it("shows the drain: state, start time, and requests completed during it", async () => {
    const release = deferred();
    upstream.handle(async (req, res) => {
      req.resume();
      await release.promise;
      res.end("{}");
    });
    const { url, sidecar } = await startSidecar(upstream.url, ["--ready-probe", "tcp"]);
    const call = send(new URL("/mcp", url), { method: "POST", body: "{}" });
    await expect.poll(() => sidecar.inFlight).toBe(1);
    const closing = sidecar.close();
    const during = await scrape(new URL("/metrics", url));
    expect(sample(during, "mcp_sidecar_drain_state", { state: "draining" })).toBe(1);
    expect(sample(during, "mcp_sidecar_drain_started_timestamp_seconds")).toBeGreaterThan(0);
    expect(sample(during, "mcp_sidecar_drain_finished_timestamp_seconds")).toBe(0);
    release.resolve();
    await call;
    await closing;
    const after = parse(await sidecar.metrics.registry.metrics());
    expect(sample(after, "mcp_sidecar_drain_state", { state: "stopped" })).toBe(1);
    expect(sample(after, "mcp_sidecar_drain_requests_total", { result: "completed" })).toBe(1);
    expect(sample(after, "mcp_sidecar_drain_finished_timestamp_seconds")).toBeGreaterThan(0);
  });

  it("describes secrets by id, version hash, age and failures, never by value", async () => {
    const agent = await startEmulator({ "mcp/api-key": "s3cr3t-metrics-key" });
    const { url } = await startSidecar(
      upstream.url,
      ["--auth-secret", "mcp/api-key", "--secrets-agent", agent.url.origin, "--ready-probe", "tcp"],
      {
        agentToken: () => AGENT_TOKEN,
      },
    );
    await expect.poll(() => send(new URL("/ready", url)).then((r) => r.status)).toBe(200);
    const response = await send(new URL("/metrics", url));
    expect(response.text).not.toContain("s3cr3t");
    const families = parse(response.text);
    const info = families.find((f) => f.name === "mcp_sidecar_secret_version_info")?.metrics[0];
    expect(info?.labels).toEqual({ secret: "mcp/api-key", version: expect.stringMatching(/^[0-9a-f]{12}$/) });
    expect(
      sample(families, "mcp_sidecar_secret_value_age_seconds", { secret: "mcp/api-key" }),
    ).toBeGreaterThanOrEqual(0);
    expect(
      sample(families, "mcp_sidecar_secret_last_refresh_timestamp_seconds", { secret: "mcp/api-key" }),
    ).toBeGreaterThan(1_700_000_000);
    // /metrics needs no API key.
    expect(response.status).toBe(200);
  });
});

describe("BoundedLabel", () => {
  it("keeps the first values, folds the rest, cuts long values", () => {
    const label = new BoundedLabel(2, ["preset"]);
    expect(["preset", "a", "b", "c", "a", "preset"].map((v) => label.value(v))).toEqual([
      "preset",
      "a",
      "b",
      "other",
      "a",
      "preset",
    ]);
    expect(new BoundedLabel(5).value("x".repeat(100))).toHaveLength(64);
    expect(label.value(undefined)).toBe("");
  });
});
