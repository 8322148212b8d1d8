// A small stdio MCP server for the stdio upstream's tests, built on the SDK, that misbehaves on
// command: it crashes mid-call, hangs, starts grandchildren, ignores SIGTERM and its stdin's end,
// floods stderr, shows its environment, waits to be cancelled, changes its tool list.
//
//   node test/peers/stdio-test-server.ts [--fail-at-start] [--print-junk]

import { spawn } from "node:child_process";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const args = process.argv.slice(2);
if (args.includes("--fail-at-start")) {
  process.stderr.write("test server: failing at start, as asked\n");
  process.exit(3);
}
if (args.includes("--print-junk")) process.stdout.write("this is not JSON-RPC\n");

const server = new McpServer({ name: "stdio-test-server", version: "1.0.0" });
const text = (value: string) => ({ content: [{ type: "text" as const, text: value }] });

server.registerTool("echo", { inputSchema: { message: z.string() } }, async ({ message }) => text(message));
server.registerTool("env", {}, async () => text(JSON.stringify(process.env)));
server.registerTool("pid", {}, async () => text(String(process.pid)));
server.registerTool("crash", { inputSchema: { code: z.number().optional() } }, async ({ code }) => {
  process.stderr.write("test server: crashing, as asked\n");
  process.exit(code ?? 1);
});
server.registerTool("hang", {}, () => new Promise<never>(() => {}));
server.registerTool("slow", { inputSchema: { ms: z.number() } }, async ({ ms }, extra) => {
  const token = extra._meta?.progressToken;
  const steps = 4;
  for (let i = 1; i <= steps; i++) {
    await new Promise((resolve) => setTimeout(resolve, ms / steps));
    if (token !== undefined)
      await extra.sendNotification({
        method: "notifications/progress",
        params: { progressToken: token, progress: i, total: steps },
      });
  }
  return text(`slept ${ms} ms`);
});
server.registerTool("spawn_grandchild", {}, async () => {
  // In the server's process group (not detached): stopping the group must end it too.
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  return text(String(child.pid));
});
server.registerTool("stubborn", {}, async () => {
  // Outlives its stdin's end and ignores SIGTERM: only a SIGKILL ends it.
  process.on("SIGTERM", () => {});
  setInterval(() => {}, 1000);
  return text("stubborn now");
});
server.registerTool("stderr", { inputSchema: { lines: z.number() } }, async ({ lines }) => {
  for (let i = 0; i < lines; i++) process.stderr.write(`line ${i}\n`);
  return text(`wrote ${lines}`);
});

server.registerTool("slow_pid", { inputSchema: { ms: z.number() } }, async ({ ms }) => {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return text(String(process.pid));
});
server.registerTool("until_cancelled", {}, async (extra) => {
  // Ends only when the request is cancelled, and says so on stderr (the sidecar logs it).
  await new Promise<void>((resolve) =>
    extra.signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  process.stderr.write("test server: the call was cancelled\n");
  return text("cancelled");
});
server.registerTool("add_tool", { inputSchema: { name: z.string() } }, async ({ name }) => {
  // The SDK tells the client with notifications/tools/list_changed.
  server.registerTool(name, {}, async () => text(name));
  return text(`added ${name}`);
});

await server.connect(new StdioServerTransport());
