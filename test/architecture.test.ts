// The layers of proxy/, guarded by a test rather than by convention (as the MCP SDK proves its
// server bundle never imports the client): the import graph is read from the sources, type-only
// imports left out (they are erased), and followed transitively.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");

function sourcesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourcesUnder(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?[^;]*?\sfrom\s+"([^"]+)"/gm;
const BARE_IMPORT = /^\s*import\s+"([^"]+)"/gm;
const DYNAMIC = /\b(?:import|require)\(\s*"([^"]+)"\s*\)/g;

/** What a module imports at run time: relative imports as repository paths, the rest as written. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(IMPORT)) if (!match[2]) found.push(match[3] as string);
  for (const match of text.matchAll(BARE_IMPORT)) found.push(match[1] as string);
  for (const match of text.matchAll(DYNAMIC)) found.push(match[1] as string);
  return found.map((specifier) =>
    specifier.startsWith(".") ? relative(ROOT, resolve(join(ROOT, dirname(file)), specifier)) : specifier,
  );
}

/** Everything `file` loads, directly or through the modules it loads. */
function closure(file: string): Set<string> {
  const seen = new Set<string>();
  const pending = [file];
  while (pending.length > 0) {
    const next = pending.pop() as string;
    for (const imported of runtimeImports(next)) {
      if (seen.has(imported)) continue;
      seen.add(imported);
      if (imported.endsWith(".ts") && !imported.startsWith("node:")) pending.push(imported);
    }
  }
  return seen;
}

const PROXY = sourcesUnder("proxy");
const SOCKET_MODULES = [
  "node:http",
  "node:https",
  "node:net",
  "node:tls",
  "node:dgram",
  "node:child_process",
];
const SOCKET_OWNERS = [
  "proxy/front/front-door.ts",
  "proxy/sidecar.ts",
  "proxy/cli.ts",
  "proxy/http/node-http.ts",
];
const isUndici = (m: string) => m === "undici" || m.startsWith("undici/") || m === "proxy/deps.ts";
const isHttpUpstream = (m: string) => m.startsWith("proxy/upstream/http/");

/** The modules that must stay pure: no sockets, no HTTP library, no module that owns sockets. */
const PURE = PROXY.filter(
  (file) =>
    file.startsWith("proxy/protocol/") ||
    file.startsWith("proxy/lifecycle/") ||
    file.startsWith("proxy/config") ||
    [
      "proxy/errors.ts",
      "proxy/http/headers.ts",
      "proxy/http/transport-errors.ts",
      "proxy/telemetry/access-log.ts",
      "proxy/telemetry/exchange-summary.ts",
      "proxy/secrets/spec.ts",
      "proxy/secrets/secret-state.ts",
      "proxy/secrets/deliveries.ts",
      "proxy/sessions/session-token.ts",
      "proxy/sessions/cidr.ts",
      "proxy/sessions/hop.ts",
      "proxy/upstream/routing/route-plan.ts",
      "proxy/upstream/routing/replayed-sessions.ts",
    ].includes(file),
);

describe("proxy/ layers", () => {
  it("finds the modules it guards (the graph reader reads this tree)", () => {
    expect(PURE.length).toBeGreaterThan(15);
    expect(closure("proxy/sidecar.ts")).toContain("proxy/upstream/http/exchange.ts");
    expect(closure("proxy/upstream/http/http-upstream.ts")).toContain("undici/lib/dispatcher/pool.js");
  });

  it.each(PURE)("%s loads no socket module, no HTTP library and no socket owner", (file) => {
    const loaded = [...closure(file)];
    expect(
      loaded.filter((m) => SOCKET_MODULES.includes(m) || isUndici(m) || SOCKET_OWNERS.includes(m)),
    ).toEqual([]);
    expect(loaded.filter(isHttpUpstream)).toEqual([]);
  });

  it.each(PROXY.filter((file) => file.startsWith("proxy/front/")))(
    "%s (the front door) loads neither undici nor the HTTP upstream, and starts no process",
    (file) => {
      const loaded = [...closure(file)];
      expect(loaded.filter((m) => isUndici(m) || isHttpUpstream(m) || m === "node:child_process")).toEqual(
        [],
      );
    },
  );

  it("never loads the agent emulator: it is a dev tool, dispatched by the bin script", () => {
    for (const file of PROXY)
      expect(
        [...closure(file)].filter((m) => m.startsWith("agent/")),
        file,
      ).toEqual([]);
  });

  it("touches `process` (signals, exit, argv, env) in cli.ts only; signals other processes in the stdio child's module only", () => {
    const uses = (file: string, pattern: RegExp) =>
      pattern.test(readFileSync(join(ROOT, file), "utf8").replace(/^\s*(\/\/|\/?\*).*$/gm, ""));
    expect(
      PROXY.filter(
        (file) =>
          file !== "proxy/cli.ts" &&
          uses(file, /\bprocess\.(on|once|exit|exitCode|argv|env|getBuiltinModule)\b/),
      ),
    ).toEqual([]);
    expect(PROXY.filter((file) => uses(file, /\bprocess\.kill\b/))).toEqual([
      "proxy/upstream/stdio/process.ts",
    ]);
  });

  it("starts processes in two modules: the stdio upstream's process.ts and its reaper", () => {
    const starting = PROXY.filter((file) => runtimeImports(file).includes("node:child_process"));
    expect(starting.sort()).toEqual(["proxy/upstream/stdio/process.ts", "proxy/upstream/stdio/reaper.ts"]);
  });

  it("keeps every file under 360 lines: a longer one is doing more than one job", () => {
    const long = PROXY.map(
      (file) => [file, readFileSync(join(ROOT, file), "utf8").split("\n").length] as const,
    )
      .filter(([, lines]) => lines > 360)
      .map(([file, lines]) => `${file}: ${lines}`);
    expect(long).toEqual([]);
  });
});
