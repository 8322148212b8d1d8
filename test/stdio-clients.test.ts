// Clients nobody here wrote through the stdio upstream: the Inspector CLI (Streamable HTTP and
// legacy SSE) and the SDK 2.x client, against server-everything (stdio) run by the sidecar CLI.
// Each sees the server's own tools and answers, and each session has its own child.

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  Client as Sdk2Client,
  StreamableHTTPClientTransport as Sdk2Transport,
} from "@modelcontextprotocol/client";
import { afterAll, describe, expect, it } from "vitest";
import { send } from "./helpers/client.ts";
import { jsonLine, ROOT, startSidecarProcess, stopAllProcesses } from "./helpers/processes.ts";
import { EVERYTHING } from "./helpers/stdio.ts";

const run = promisify(execFile);
/** Sessions only: a child per client (no spare, no stateless pool), to count them. */
const SESSIONS_ONLY = ["--stdio", EVERYTHING, "--stdio-spares", "0", "--stdio-pool", "0"];
const INSPECTOR = `${ROOT}node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js`;

afterAll(stopAllProcesses);

describe("clients through --stdio (server-everything)", () => {
  it("the Inspector CLI lists and calls tools, one child per invocation", async () => {
    const sidecar = await startSidecarProcess(SESSIONS_ONLY);
    const url = new URL("/mcp", sidecar.url).href;
    const cli = async (...args: string[]) =>
      JSON.parse(
        (
          await run(process.execPath, [INSPECTOR, "--cli", url, "--transport", "http", ...args], {
            cwd: ROOT,
          })
        ).stdout,
      ) as unknown;
    const list = (await cli("--method", "tools/list")) as { tools: { name: string }[] };
    expect(list.tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(["echo", "get-sum"]));
    expect(
      await cli("--method", "tools/call", "--tool-name", "echo", "--tool-arg", "message=inspected"),
    ).toEqual({ content: [{ type: "text", text: "Echo: inspected" }] });
    const metrics = await send(new URL("/metrics", sidecar.url));
    expect(metrics.text).toMatch(/^mcp_sidecar_stdio_children_started_total 2$/m);
  });

  it("the Inspector CLI over the legacy HTTP+SSE transport (--transport sse)", async () => {
    const sidecar = await startSidecarProcess(SESSIONS_ONLY);
    const { stdout } = await run(
      process.execPath,
      [
        INSPECTOR,
        "--cli",
        new URL("/sse", sidecar.url).href,
        "--transport",
        "sse",
        "--method",
        "tools/call",
      ].concat(["--tool-name", "get-sum", "--tool-arg", "a=20", "--tool-arg", "b=22"]),
      { cwd: ROOT },
    );
    expect(JSON.parse(stdout)).toEqual({ content: [{ type: "text", text: "The sum of 20 and 22 is 42." }] });
    const metrics = await send(new URL("/metrics", sidecar.url));
    expect(metrics.text).toMatch(/^mcp_sidecar_stdio_children_started_total 1$/m);
  });

  // In auto mode it negotiates 2026-07-28 with the stateless pool instead: test/stdio-stateless.test.ts.
  it("the SDK 2.x client by default (its legacy mode) gets a 2025-11-25 session and calls tools", async () => {
    const sidecar = await startSidecarProcess(["--stdio", EVERYTHING]);
    const client = new Sdk2Client({ name: "sdk2-via-stdio", version: "1.0.0" });
    const transport = new Sdk2Transport(new URL("/mcp", sidecar.url));
    await client.connect(transport);
    expect(transport.sessionId).toMatch(/\S/);
    expect(client.getNegotiatedProtocolVersion()).toBe("2025-11-25");
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain("get-sum");
    const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } });
    expect(sum.content).toEqual([{ type: "text", text: "The sum of 2 and 3 is 5." }]);
    // No probe: the plain 2025 sequence.
    const logged = (method: string) =>
      sidecar.proc.lines.map(jsonLine).filter((line) => line?.mcpMethod === method);
    await expect.poll(() => logged("tools/call").length).toBe(1);
    expect(logged("server/discover")).toEqual([]);
    await transport.terminateSession();
    await client.close();
  });
});
