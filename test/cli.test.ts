// The command line as users run it: real processes, real exit codes, real signals.
import { afterEach, describe, expect, it } from "vitest";
import { OPTIONS } from "../proxy/config.ts";
import { freePort } from "./helpers/net.ts";
import {
  jsonLine,
  node,
  startProcess,
  startReferenceServer,
  startSidecarProcess,
  stopAllProcesses,
} from "./helpers/processes.ts";

afterEach(async () => {
  await stopAllProcesses();
});

describe("mcp-sidecar", () => {
  it("--help documents every option and exits 0, through the package's bin", async () => {
    const proc = startProcess(process.execPath, ["bin/mcp-sidecar.js", "--help"]);
    expect((await proc.exited).code).toBe(0);
    const help = proc.lines.join("\n");
    for (const option of OPTIONS) expect(help).toContain(`--${option.flag}`);
    expect(help).toContain("MCP_SIDECAR_UPSTREAM");
  });

  it("reports every configuration problem at once and exits 2", async () => {
    const proc = node("proxy/cli.ts", ["--port", "http", "--drain-timeout", "soon"], {
      MCP_SIDECAR_UPSTREAM: "localhost:3000",
    });
    expect((await proc.exited).code).toBe(2);
    const text = proc.lines.join("\n");
    expect(text).toContain("MCP_SIDECAR_UPSTREAM");
    expect(text).toContain("--port (MCP_SIDECAR_PORT)");
    expect(text).toContain("--drain-timeout (MCP_SIDECAR_DRAIN_TIMEOUT)");
  });

  it("exits 2 naming the token variables when a secret delivery has no agent token", async () => {
    const proc = node(
      "proxy/cli.ts",
      ["--upstream", "http://127.0.0.1:3000", "--auth-secret", "mcp/api-key"],
      {
        AWS_TOKEN: undefined,
        AWS_SESSION_TOKEN: undefined,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: undefined,
      },
    );
    expect((await proc.exited).code).toBe(2);
    expect(proc.lines.join("\n")).toContain(
      "no SSRF token: set one of AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN",
    );
  });

  it("exits 1 with a fatal log line when its port is taken", async () => {
    const server = await startReferenceServer();
    const proc = node("proxy/cli.ts", [
      "--upstream",
      "http://127.0.0.1:1",
      "--host",
      "127.0.0.1",
      "--port",
      server.url.port,
    ]);
    expect((await proc.exited).code).toBe(1);
    const lines = proc.lines.map(jsonLine);
    const fatal = lines.find((line) => line?.level === "fatal" && line.msg === "cannot listen");
    expect(fatal).toMatchObject({
      exitCode: 1,
      err: {
        message: expect.stringContaining(`EADDRINUSE: address already in use 127.0.0.1:${server.url.port}`),
      },
    });
    // The last lifecycle line tells the truth: nothing claims a clean stop for a process exiting 1.
    expect(lines.filter((line) => line?.exitCode !== undefined && line.exitCode !== 1)).toEqual([]);
    expect(lines.at(-1)).toBe(fatal);
  });

  it("idle, with a 60 s drain timeout: SIGTERM exits 0 at once, without waiting for any timer", async () => {
    const server = await startReferenceServer();
    const sidecar = await startSidecarProcess(["--upstream", server.origin, "--drain-timeout", "60s"]);
    const signalled = performance.now();
    sidecar.proc.kill("SIGTERM");
    expect((await sidecar.proc.exited).code).toBe(0);
    // Not a timing assertion on speed: only that the 60 s timer was not what ended the process.
    expect(performance.now() - signalled).toBeLessThan(30_000);
    const stopped = sidecar.proc.lines.map(jsonLine).find((line) => line?.msg === "sidecar stopped");
    expect(stopped).toMatchObject({ reason: "drained", cut: 0, exitCode: 0 });
  });
});

describe("mcp-sidecar healthcheck", () => {
  it("exits 0 against a live sidecar and 1 against a dead port", async () => {
    const server = await startReferenceServer();
    const sidecar = await startSidecarProcess(["--upstream", server.origin]);
    const live = node("proxy/cli.ts", ["healthcheck", "--url", new URL("/health", sidecar.url).href]);
    expect((await live.exited).code).toBe(0);
    const viaEnv = node("proxy/cli.ts", ["healthcheck"], { MCP_SIDECAR_PORT: sidecar.url.port });
    expect((await viaEnv.exited).code).toBe(0);
    const dead = node("proxy/cli.ts", [
      "healthcheck",
      "--url",
      `http://127.0.0.1:${await freePort()}/health`,
    ]);
    expect((await dead.exited).code).toBe(1);
    expect(dead.lines.join("\n")).toContain("healthcheck:");
  });
});

describe("npm start (the local stack)", () => {
  it("--check starts server and sidecar, initializes through the sidecar, and stops both cleanly", async () => {
    const proc = node("scripts/local-stack.ts", [
      "--check",
      "--port",
      String(await freePort()),
      "--server-port",
      String(await freePort()),
      "--agent-port",
      String(await freePort()),
    ]);
    const { code } = await proc.exited;
    const text = proc.lines.join("\n");
    expect(code, text).toBe(0);
    expect(text).toContain(
      "local-stack check: without key -> 401; initialize with key -> 200; ready=ready; upstream key delivered by header and file: true",
    );
    expect(text).toContain("mcp-inspector --cli");
  });
});

describe("reference server", () => {
  it("validates its flags and exits 2", async () => {
    const proc = node("server/main.ts", ["--port", "seventy"]);
    expect((await proc.exited).code).toBe(2);
    expect(proc.lines.join("\n")).toContain("--port");
  });

  it("with its port taken, exits 1 naming the port, and never logs listening", async () => {
    const taken = await startReferenceServer();
    const proc = node("server/main.ts", ["--port", taken.url.port]);
    expect((await proc.exited).code).toBe(1);
    const lines = proc.lines.map(jsonLine);
    expect(lines.some((line) => line?.msg === "listening")).toBe(false);
    expect(lines.find((line) => line?.msg === "cannot listen")).toMatchObject({
      port: Number(taken.url.port),
      code: "EADDRINUSE",
    });
  });

  it("answers /health, and exits 0 on SIGTERM", async () => {
    const server = await startReferenceServer();
    const health = await fetch(new URL("/health", server.url));
    expect(await health.json()).toEqual({ status: "ok" });
    server.proc.kill("SIGTERM");
    expect((await server.proc.exited).code).toBe(0);
  });

  it("rejects a foreign Host (it trusts the sidecar to send the upstream's own)", async () => {
    const server = await startReferenceServer();
    const { request } = await import("undici");
    const response = await request(server.url, {
      method: "POST",
      headers: {
        host: "evil.example",
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: "{}",
    });
    expect(response.statusCode).toBe(403);
    await response.body.dump();
  });
});
