// Sessions across tasks: three "tasks" (reference server + sidecar process each, on 127.0.0.2/3/4)
// behind a real round-robin HAProxy with no stickiness, SDK 1.x clients with sessions and their GET
// streams open. Routing off is the baseline (sessions break); routing on loses no call.
import { randomBytes } from "node:crypto";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterEach, describe, expect, it } from "vitest";
import { type Balancer, startBalancer, startTask, stopTask } from "./helpers/cluster.ts";
import { startEmulator, stopAllEmulators } from "./helpers/emulator.ts";
import { freePort } from "./helpers/net.ts";
import { jsonLine, stopAllProcesses } from "./helpers/processes.ts";

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

const ADDRESSES = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
let balancer: Balancer | undefined;

afterEach(async () => {
  await balancer?.stop();
  balancer = undefined;
  await stopAllProcesses();
  await stopAllEmulators();
});

async function cluster(routing: boolean, args: readonly string[] = []) {
  const emulator = await startEmulator({ "session-key": randomBytes(24).toString("base64url") });
  const port = await freePort();
  const tasks = await Promise.all(
    ADDRESSES.map((address) => startTask(address, { agent: emulator.url, routing, args, port })),
  );
  balancer = await startBalancer(tasks);
  return { emulator, tasks, balancer, port };
}

interface Tally {
  ok: number;
  failed: number;
  errors: string[];
}

/**
 * `clients` SDK 1.x clients, each connecting then making `calls` echo calls (every tenth a 300 ms
 * `slow`, so that calls are in flight whenever a task stops), and more while `goOn()`; failures counted.
 */
async function runClients(url: URL, clients: number, calls: number, goOn: () => boolean = () => false) {
  const tally: Tally = { ok: 0, failed: 0, errors: [] };
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const client = new Client({ name: `routing-${c}`, version: "1.0.0" });
      client.onerror = () => {};
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", url)));
      } catch (error) {
        tally.failed += calls;
        tally.errors.push(`connect: ${(error as Error).message}`);
        return;
      }
      // Bounded in count (and so in time) whatever goOn() says.
      for (let i = 0; (i < calls || goOn()) && i < 20 * calls; i++) {
        const slow = goOn() && i % 10 === 0;
        try {
          const result = slow
            ? await client.callTool({ name: "slow", arguments: { ms: 300, steps: 1 } })
            : await client.callTool({ name: "echo", arguments: { message: `c${c}-${i}` } });
          const text = (result.content as { text: string }[])[0]?.text;
          if (text === (slow ? "waited 300 ms" : `c${c}-${i}`)) tally.ok++;
          else {
            tally.failed++;
            tally.errors.push(`wrong answer ${text}`);
          }
        } catch (error) {
          tally.failed++;
          tally.errors.push((error as Error).message);
        }
      }
      await client.close();
    }),
  );
  return tally;
}

describe("sessions across three tasks behind a round-robin HAProxy", () => {
  it("routing off (the baseline): sessions break as soon as a request lands on another task", async () => {
    const { balancer } = await cluster(false);
    const tally = await runClients(balancer.url, 5, 20);
    console.log("routing off:", tally.ok, "ok,", tally.failed, "failed");
    expect(tally.failed).toBeGreaterThan(0);
  }, 60_000);

  it("routing on: 10 SDK clients x 100 calls, GET streams open, 0 failed calls", async () => {
    const { balancer } = await cluster(true);
    const tally = await runClients(balancer.url, 10, 100);
    console.log("routing on:", tally.ok, "ok,", tally.failed, "failed", tally.errors.slice(0, 5));
    expect(tally).toEqual({ ok: 1000, failed: 0, errors: [] });
  }, 120_000);
});

describe("a rolling deploy under load, with --session-continuity replay", () => {
  it("every task replaced one by one (deregistered, SIGTERM, a new one on another address): 0 failed calls, every drain exits 0", async () => {
    const { emulator, tasks, balancer, port } = await cluster(true);
    let deploying = true;
    const load = runClients(balancer.url, 10, 100, () => deploying);
    const exits: (number | null)[] = [];
    const replacements = ["127.0.0.5", "127.0.0.6", "127.0.0.7"];
    const all = [...tasks];
    for (const [i, old] of tasks.entries()) {
      const next = await startTask(replacements[i] as string, { agent: emulator.url, routing: true, port });
      all.push(next);
      await balancer.register(next);
      await balancer.deregister(old);
      exits.push((await stopTask(old)).code);
    }
    deploying = false;
    const tally = await load;
    console.log("rolling deploy:", tally.ok, "ok,", tally.failed, "failed", tally.errors.slice(0, 5));
    expect(tally.failed).toBe(0);
    expect(tally.ok).toBeGreaterThanOrEqual(1000);
    expect(exits).toEqual([0, 0, 0]);
    // Sessions were continued on other tasks (not merely lucky), and drains had calls to finish.
    const logged = (msg: string) =>
      all.flatMap((task) => task.sidecar.lines.map(jsonLine).filter((line) => line?.msg === msg));
    const continued = logged("session continued on this task");
    console.log(
      "continued:",
      continued.length,
      "by reason",
      countBy(continued.map((l) => String(l?.reason))),
    );
    expect(continued.length).toBeGreaterThanOrEqual(10);
    expect(logged("drain started").some((line) => Number(line?.inFlight) > 0)).toBe(true);
  }, 180_000);
});
