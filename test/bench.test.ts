// The benchmark harness must not rot: its open-loop generator and one short scenario run here.
// (Speed is measured by npm run bench, never asserted in a test.)
import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { waitForHttp } from "../bench/lib.ts";
import { send } from "./helpers/client.ts";
import { useTestUpstream } from "./helpers/fixtures.ts";
import { freePort } from "./helpers/net.ts";
import { node, ROOT } from "./helpers/processes.ts";
import { readBody } from "./helpers/upstream.ts";

const run = promisify(execFile);
const upstream = useTestUpstream();

/** A bench reference proxy in front of the test upstream, once it answers /health. */
async function startReferenceProxy(script: string) {
  const port = await freePort();
  const proxy = node(script, [upstream.url.origin, String(port)]);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/health`);
  return { url, proxy };
}

describe("bench", () => {
  it("open-loop sends the requests it was asked to, at its rate, and reports percentiles", async () => {
    const { stdout } = await run(
      process.execPath,
      ["bench/open-loop.ts", new URL("/mcp", upstream.url).href, "200", "1", "8"],
      { cwd: ROOT },
    );
    const result = JSON.parse(stdout) as {
      sent: number;
      ok: number;
      errors: number;
      p50: number;
      p99: number;
    };
    expect(result).toMatchObject({ sent: 200, ok: 200, errors: 0 });
    expect(result.p99).toBeGreaterThanOrEqual(result.p50);
    expect(upstream.seen.filter((r) => r.method === "POST")).toHaveLength(200);
  });

  it("runs the start-up scenario end to end and writes its JSON", async () => {
    const out = `/tmp/mcp-sidecar-bench-test-${process.pid}.json`;
    const { stdout } = await run(
      process.execPath,
      ["bench/run.ts", "--only", "startup", "--runs", "1", "--out", out],
      { cwd: ROOT },
    );
    expect(stdout).toContain("process start to /ready 200 (ms)");
    const written = readFileSync(out, "utf8");
    rmSync(out);
    const results = JSON.parse(written) as {
      startup: { toReadyMs: number; idleRssMB: number };
    };
    expect(results.startup.toReadyMs).toBeGreaterThan(0);
    expect(results.startup.idleRssMB).toBeGreaterThan(0);
  });

  it("runs another checkout's sidecar beside this one with --baseline, and reports the A/B ratios", async () => {
    const out = `/tmp/mcp-sidecar-bench-test-baseline-${process.pid}.json`;
    const { stdout } = await run(
      process.execPath,
      ["bench/run.ts", "--only", "startup", "--runs", "1", "--baseline", ROOT, "--out", out],
      { cwd: ROOT },
    );
    expect(stdout).toContain("idle RSS, baseline sidecar (MB)");
    const results = JSON.parse(readFileSync(out, "utf8")) as {
      settings: { baseline: string };
      startup: { baseline: { toReadyMs: number; idleRssMB: number } };
    };
    rmSync(out);
    expect(results.settings.baseline).toBe(ROOT.replace(/\/$/, ""));
    expect(results.startup.baseline.idleRssMB).toBeGreaterThan(0);
  });

  it("refuses a bad flag by name before starting anything, and documents its flags", async () => {
    const refused = (...args: string[]) =>
      run(process.execPath, ["bench/run.ts", ...args], { cwd: ROOT }).then(
        () => undefined,
        (error: { code?: number; stderr?: string }) => error,
      );
    const bad = await refused("--runs", "0");
    expect(bad?.code).toBe(2);
    expect(bad?.stderr).toContain('--runs "0" is not a whole number >= 1');
    const unknown = await refused("--only", "overheat");
    expect(unknown?.stderr).toContain('--only "overheat" is not a scenario');
    const notACheckout = await refused("--baseline", "/nonexistent");
    expect(notACheckout?.code).toBe(2);
    expect(notACheckout?.stderr).toContain('--baseline "/nonexistent" holds no proxy/cli.ts');
    const { stdout } = await run(process.execPath, ["bench/run.ts", "--help"], { cwd: ROOT });
    for (const flag of [
      "--runs",
      "--seconds",
      "--connections",
      "--rate",
      "--streams",
      "--only",
      "--chart",
      "--out",
      "--baseline",
      "--burst",
      "--quiet",
    ])
      expect(stdout).toContain(flag);
  });

  it.each(["bench/naive-proxy.ts", "bench/floor-proxy.ts"])(
    "the reference proxy %s relays tools/call POSTs and their answers, so its numbers are for real work",
    async (script) => {
      const answer = '{"jsonrpc":"2.0","id":7,"result":{}}';
      const bodies: string[] = [];
      upstream.handle(async (req, res) => {
        bodies.push((await readBody(req)).toString());
        // Content-Length framing: all the floor proxy understands (the bench's upstream sends it).
        res.writeHead(200, { "content-type": "application/json", "content-length": answer.length });
        res.end(answer);
      });
      const { url } = await startReferenceProxy(script);
      for (let id = 0; id < 3; id++) {
        const body = `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo"}}`;
        const response = await send(`${url}/mcp`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        expect(response).toMatchObject({ status: 200, text: answer });
      }
      expect(bodies).toEqual(
        [0, 1, 2].map((id) => `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo"}}`),
      );
    },
  );

  it("the floor proxy fails a response it cannot frame, loudly, instead of guessing where it ends", async () => {
    // The test upstream's default answer is chunked.
    const { url, proxy } = await startReferenceProxy("bench/floor-proxy.ts");
    await expect(send(`${url}/mcp`, { method: "POST", body: "{}" })).rejects.toThrow();
    await proxy.waitForLine((line) => line.includes("only Content-Length framing is supported"));
  });
});
