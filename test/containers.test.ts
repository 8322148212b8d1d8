// The container files checked without a container engine: the Dockerfiles parsed (dockerfile-ast,
// the parser behind VS Code's Docker support) and held to the rules the images promise, and
// docker-compose.yml parsed and checked against the images and the sidecar's own configuration.
// The images themselves are built and run by scripts/container-proof.sh (npm run containers).

import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { readAgentConfig } from "../agent/emulator/config.ts";
import { parseSecretsDocument } from "../agent/emulator/secrets-file.ts";
import { stateFileFor } from "../agent/emulator/secrets-source.ts";
import { parseConfig } from "../proxy/config.ts";
import { PeerGuard } from "../proxy/sessions/peers.ts";
import { node, ROOT } from "./helpers/processes.ts";

function dockerfile(path: string) {
  const text = readFileSync(new URL(`../${path}`, import.meta.url), "utf8");
  const parsed = DockerfileParser.parse(text);
  const instructions = parsed.getInstructions();
  const froms = instructions.filter((i) => i.getKeyword() === "FROM");
  const lastFrom = froms.at(-1) as Instruction;
  const finalStage = instructions.filter(
    (i) => (i.getRange()?.start.line ?? 0) > (lastFrom.getRange()?.start.line ?? 0),
  );
  const args = (keyword: string, stage: Instruction[] = instructions) =>
    stage.filter((i) => i.getKeyword() === keyword).map((i) => i.getArgumentsContent() ?? "");
  return {
    text,
    instructions,
    froms,
    finalStage,
    args,
    initialArgs: parsed.getInitialARGs().map((a) => a.getArgumentsContent() ?? ""),
  };
}

describe.each(["proxy/Dockerfile", "server/Dockerfile", "agent/Dockerfile"])("%s", (path) => {
  const file = dockerfile(path);

  it("takes its base images as ARGs whose defaults are real, pinned registry references", () => {
    expect(file.froms.length).toBeGreaterThanOrEqual(2);
    for (const from of file.froms.map((f) => f.getArgumentsContent() ?? ""))
      expect(from).toMatch(/^\$\{[A-Z_]+\}/);
    const defaults = file.initialArgs.filter((a) => /_IMAGE=/.test(a));
    expect(defaults.length).toBe(2);
    for (const value of defaults) {
      expect(value).toMatch(/=(docker\.io|gcr\.io)\//);
      expect(value).not.toMatch(/:latest$/);
    }
  });

  it("runs as the non-root user 65532, exec-form entrypoint, in a distroless runtime", () => {
    // Root only to fill the compile cache at build time (the RUN below); the process runs as 65532.
    expect(file.args("USER", file.finalStage).at(-1)).toBe("65532:65532");
    expect(file.args("USER", file.finalStage).slice(0, -1)).toEqual(
      file.args("RUN", file.finalStage).length > 0 ? ["0:0"] : [],
    );
    const entrypoint = file.args("ENTRYPOINT", file.finalStage);
    expect(entrypoint).toHaveLength(1);
    expect(JSON.parse(entrypoint[0] as string)).toEqual(expect.any(Array));
    expect(file.initialArgs.find((a) => a.startsWith("RUNTIME_IMAGE="))).toMatch(
      /gcr\.io\/distroless\/.*:nonroot$/,
    );
    // The final stage has no shell. A Node image's only RUN is exec form: node filling the compile
    // cache; the agent's has none.
    const runs = file.args("RUN", file.finalStage);
    if ((JSON.parse(entrypoint[0] as string) as string[])[0] !== "/nodejs/bin/node") {
      expect(runs).toEqual([]);
      return;
    }
    expect(runs).toHaveLength(1);
    // With the ENTRYPOINT's node flags: V8 rejects a cache entry made under other flags.
    const entryFlags = (JSON.parse(entrypoint[0] as string) as string[]).filter((arg) =>
      arg.startsWith("--"),
    );
    expect(JSON.parse(runs[0] as string)).toEqual([
      "/nodejs/bin/node",
      "/build/fill-compile-cache.mjs",
      "/app/.node-compile-cache",
      "65532:65532",
      ...entryFlags,
      expect.stringMatching(/^\/app\/.*\.ts$/),
      expect.any(String),
    ]);
    expect(file.args("ENV", file.finalStage)).toContain("NODE_COMPILE_CACHE=/app/.node-compile-cache");
  });
});

describe.each(["proxy/Dockerfile", "server/Dockerfile"])("%s (Node images)", (path) => {
  const file = dockerfile(path);

  it("installs production dependencies only, from the lockfile, before copying any source", () => {
    const run = file.args("RUN").join("\n");
    expect(run).toContain("npm ci --omit=dev");
    const order = file.instructions.map((i) => `${i.getKeyword()} ${i.getArgumentsContent()}`);
    const manifests = order.indexOf("COPY package.json package-lock.json ./");
    const install = order.findIndex((line) => line.startsWith("RUN npm ci"));
    const firstSource = order.findIndex((line) => /^COPY (proxy|server|bin|agent)/.test(line));
    expect(manifests).toBeGreaterThanOrEqual(0);
    expect(manifests).toBeLessThan(install);
    expect(install).toBeLessThan(firstSource);
    expect(file.finalStage.map((i) => i.toString())).toContain(
      "COPY --from=deps /app/node_modules ./node_modules",
    );
  });

  it("stops on SIGTERM and documents its exec-form health check", () => {
    expect(file.args("STOPSIGNAL", file.finalStage)).toEqual(["SIGTERM"]);
    expect(file.text).toMatch(
      /\["CMD", "\/nodejs\/bin\/node", ("--[a-z-]+=\d+", )*"\/app\/(proxy\/cli|server\/main)\.ts", "healthcheck"\]/,
    );
  });
});

describe("proxy/Dockerfile entrypoint", () => {
  it("runs node with the flags the bench measures the sidecar with, and the stack's health check too", async () => {
    const { SIDECAR_NODE_FLAGS } = await import("../bench/lib.ts");
    const { SIDECAR_IMAGE_NODE_FLAGS } = await import("../infra/plan/memory.ts");
    expect(SIDECAR_IMAGE_NODE_FLAGS).toEqual(SIDECAR_NODE_FLAGS);
    // The cache is filled with the same flags (V8 rejects an entry made under others).
    expect(dockerfile("proxy/Dockerfile").text).toContain(
      `"65532:65532", ${SIDECAR_NODE_FLAGS.map((f) => JSON.stringify(f)).join(", ")}, "/app/proxy/cli.ts", "--version"]`,
    );
    const [entrypoint] = dockerfile("proxy/Dockerfile").args("ENTRYPOINT");
    expect(JSON.parse(entrypoint as string)).toEqual([
      "/nodejs/bin/node",
      ...SIDECAR_NODE_FLAGS,
      "/app/proxy/cli.ts",
    ]);
  });
});

describe("proxy/Dockerfile allocator", () => {
  it("preloads jemalloc for the sidecar with the settings the bench measures it with", async () => {
    const { SIDECAR_MALLOC_CONF } = await import("../bench/lib.ts");
    const file = dockerfile("proxy/Dockerfile");
    const env = file.args("ENV", file.finalStage);
    expect(env).toContain("LD_PRELOAD=/usr/lib/libjemalloc.so.2");
    expect(env).toContain(`MALLOC_CONF=${SIDECAR_MALLOC_CONF}`);
    expect(file.text).toContain("\nCOPY --from=jemalloc /libjemalloc.so.2 /usr/lib/libjemalloc.so.2\n");
  });
});

describe("agent/Dockerfile", () => {
  const file = dockerfile("agent/Dockerfile");
  it("builds a pinned release of aws/aws-secretsmanager-agent from source, with the probe, and its config", () => {
    expect(file.text).toContain("ARG AGENT_VERSION=v2.0.0");
    const versionVariable = ["$", "{AGENT_VERSION}"].join("");
    expect(file.text).toContain(
      `https://github.com/aws/aws-secretsmanager-agent/archive/refs/tags/${versionVariable}.tar.gz`,
    );
    expect(file.args("RUN").join("\n")).toContain(
      "cargo build --release --locked -p aws_secretsmanager_agent",
    );
    expect(file.finalStage.map((i) => i.toString())).toEqual(
      expect.arrayContaining([
        "COPY --from=build /probe/target/release/agent-probe /usr/local/bin/agent-probe",
        "COPY --from=build /agent-config.toml /etc/aws-secretsmanager-agent/config.toml",
      ]),
    );
    expect(existsSync(new URL("../agent/probe/Cargo.lock", import.meta.url))).toBe(true);
  });
});

/**
 * Whether .dockerignore lets a file into the build context: the last matching line wins, `!`
 * re-includes, a pattern also matches everything under a directory it names. Written here because
 * the rules of this one file need no dependency: `**`, `*`, literal paths, trailing slashes.
 */
function inBuildContext(file: string): boolean {
  const lines = readFileSync(new URL("../.dockerignore", import.meta.url), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  let included = true;
  for (const line of lines) {
    const negated = line.startsWith("!");
    const pattern = line.replace(/^!/, "").replace(/^\/|\/$/g, "");
    const source = pattern
      .split(/(\*\*\/|\*\*|\*)/)
      .map((part) =>
        part === "**/"
          ? "(?:.*/)?"
          : part === "**"
            ? ".*"
            : part === "*"
              ? "[^/]*"
              : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"),
      )
      .join("");
    if (new RegExp(`^${source}(?:/.*)?$`).test(file)) included = negated;
  }
  return included;
}

describe.each(["proxy/Dockerfile", "server/Dockerfile", "agent/Dockerfile"])(
  "%s and .dockerignore",
  (path) => {
    it("every COPY from the build context finds its files there (only Dockerfiles and tests stay out)", () => {
      const file = dockerfile(path);
      const lines = file.text.split("\n");
      const copies = file.instructions
        .filter((i) => i.getKeyword() === "COPY")
        .map((i) => (lines[i.getRange()?.start.line ?? 0] ?? "").trim().split(/\s+/).slice(1))
        .filter((parts) => !parts.some((p) => p.startsWith("--from=")));
      expect(copies.length).toBeGreaterThan(0);
      for (const parts of copies) {
        for (const source of parts.filter((p) => !p.startsWith("--")).slice(0, -1)) {
          const tracked = execFileSync("git", ["ls-files", "--", source], { cwd: ROOT, encoding: "utf8" })
            .split("\n")
            .filter(Boolean);
          expect(tracked.length, `${path}: COPY ${source} names no tracked file`).toBeGreaterThan(0);
          const left = tracked.filter((f) => !inBuildContext(f));
          expect(
            left.filter((f) => !/(^|\/)Dockerfile$|\.test\.ts$/.test(f)),
            `${path}: COPY ${source}`,
          ).toEqual([]);
          expect(tracked.some(inBuildContext), `${path}: COPY ${source}`).toBe(true);
        }
      }
    });
  },
);

describe(".dockerignore", () => {
  it("is read the way the builder reads it (the matcher above is not vacuous)", () => {
    expect(inBuildContext("proxy/server.ts")).toBe(true);
    expect(inBuildContext("agent/probe/src/main.rs")).toBe(true);
    expect(inBuildContext("agent/probe/target/release/agent-probe")).toBe(false);
    expect(inBuildContext("proxy/Dockerfile")).toBe(false);
    expect(inBuildContext("test/proxy.test.ts")).toBe(false);
    expect(inBuildContext("infra/index.ts")).toBe(false);
    expect(inBuildContext("node_modules/undici/index.js")).toBe(false);
  });

  it("keeps tests, node_modules, secrets and infra out of the build context", () => {
    const lines = readFileSync(new URL("../.dockerignore", import.meta.url), "utf8").split("\n");
    expect(lines[lines.findIndex((l) => !l.startsWith("#") && l.trim())]).toBe("**");
    const allowed = lines.filter((l) => l.startsWith("!"));
    for (const entry of allowed) expect(entry).not.toMatch(/test|node_modules|infra|compose|\.env/);
  });
});

describe("docker-compose.yml", () => {
  const compose = parseYaml(readFileSync(new URL("../docker-compose.yml", import.meta.url), "utf8"), {
    merge: true,
  }) as {
    services: Record<string, Record<string, unknown>>;
  };
  const service = (name: string): Record<string, unknown> => {
    const found = compose.services[name];
    if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
    return found;
  };
  const server = service("server");
  const sidecar = service("sidecar");
  const agent = service("agent");
  const env = (service: Record<string, unknown> | undefined) =>
    (service?.environment ?? {}) as Record<string, string>;

  /** The agent's secrets mount: host directory, container directory, and the template inside. */
  const secretsMount = () => {
    const volumes = agent.volumes as string[];
    expect(volumes).toHaveLength(1);
    const [hostDir = "", containerDir = "", mode] = (volumes[0] as string).split(":");
    expect(mode).toBe("ro");
    const command = agent.command as string[];
    const secretsPath = command[command.indexOf("--secrets") + 1] as string;
    expect(posix.dirname(secretsPath)).toBe(containerDir);
    return { hostDir, template: posix.join(hostDir, posix.basename(secretsPath)) };
  };

  it("mounts the directory of the secrets, so a rotation (a rename inside it) reaches the agent; the template is tracked, its rotations are not", () => {
    const { hostDir, template } = secretsMount();
    // A bind mount of a single file keeps the inode it was given: a rename beside it never shows.
    expect(statSync(join(ROOT, hostDir)).isDirectory()).toBe(true);
    const git = (...args: string[]) => spawnSync("git", args, { cwd: ROOT, encoding: "utf8" }).status;
    expect(git("ls-files", "--error-unmatch", template)).toBe(0);
    // Where rotate writes: ignored, so rotating under compose never dirties the checkout.
    const state = stateFileFor(template);
    expect(posix.dirname(state)).toBe(posix.dirname(template));
    expect(git("check-ignore", "--quiet", state)).toBe(0);
    expect(git("check-ignore", "--quiet", `${state}.tmp-12345`)).toBe(0);
    expect(git("check-ignore", "--quiet", template)).toBe(1);
  });

  it("has the three services of the ECS task, built from the project's Dockerfiles", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["agent", "server", "sidecar"]);
    for (const of of [server, sidecar]) {
      const build = of.build as { dockerfile: string };
      expect(existsSync(new URL(`../${build.dockerfile}`, import.meta.url))).toBe(true);
    }
    expect(agent?.image).toBe(sidecar?.image);
    for (const of of [server, sidecar, agent]) expect(of.read_only).toBe(true);
  });

  it("configures the sidecar with values its own parser accepts, pointing at the server's port", () => {
    const parsed = parseConfig([], env(sidecar));
    if (parsed.kind !== "config") throw new Error(JSON.stringify(parsed));
    expect(parsed.config.upstream?.origin).toBe(`http://server:${env(server).MCP_SERVER_PORT}`);
    expect(sidecar?.ports).toEqual([`${parsed.config.port}:${parsed.config.port}`]);
    const serverCommand = server.command as string[];
    const allowedHosts = serverCommand[serverCommand.indexOf("--allowed-hosts") + 1];
    expect(allowedHosts?.split(",")).toContain("server");
    // Docker's SIGKILL comes after stop_grace_period: it must leave the drain its time.
    expect(Number.parseInt(String(sidecar?.stop_grace_period), 10) * 1000).toBeGreaterThan(
      parsed.config.drainTimeoutMs,
    );
  });

  it("runs the agent emulator in the sidecar's network namespace, on the port the sidecar asks, with the same token and a read-only secrets file naming every secret the sidecar uses", () => {
    const parsed = parseConfig([], env(sidecar));
    if (parsed.kind !== "config") throw new Error("bad config");
    expect(agent?.network_mode).toBe("service:sidecar");
    const command = agent?.command as string[];
    expect(command[command.indexOf("--port") + 1]).toBe(parsed.config.secretsAgent.port);
    expect(env(agent).AWS_TOKEN).toBe(env(sidecar).AWS_TOKEN);
    const { template } = secretsMount();
    const secrets = parseSecretsDocument(parseYaml(readFileSync(join(ROOT, template), "utf8")));
    const names = secrets.map((secret) => secret.name);
    for (const ref of [parsed.config.authSecret, ...parsed.config.injectHeaders.map((d) => d.ref)])
      expect(names).toContain(ref?.secretId);
    const configPath = command[command.indexOf("--config") + 1] as string;
    expect(configPath).toBe("/app/agent/config.toml");
    expect(readAgentConfig(`${ROOT}agent/config.toml`).settings.cache.ttlMs).toBe(30_000);
  });

  it("orders start-up on health: the sidecar waits for a healthy server; health checks are exec form on real subcommands", async () => {
    expect(sidecar?.depends_on).toEqual({ server: { condition: "service_healthy" } });
    for (const of of [server, sidecar, agent]) {
      const test = (of.healthcheck as { test: string[] }).test;
      expect(test[0]).toBe("CMD");
      expect(test[1]).toBe("/nodejs/bin/node");
    }
    // The subcommands exist: against nothing listening, each exits 1 (not 2, not a crash).
    const probes = [
      node("server/main.ts", ["healthcheck"], { MCP_SERVER_PORT: "1" }),
      node("proxy/cli.ts", ["healthcheck", "--url", "http://127.0.0.1:1/ping"]),
    ];
    for (const probe of probes) expect((await probe.exited).code).toBe(1);
  });
});

describe("docker-compose.replicas.yml", () => {
  const compose = parseYaml(
    readFileSync(new URL("../docker-compose.replicas.yml", import.meta.url), "utf8"),
    {
      merge: true,
    },
  ) as { services: Record<string, Record<string, unknown>>; networks: Record<string, unknown> };
  const haproxy = readFileSync(new URL("../compose/haproxy.cfg", import.meta.url), "utf8");
  const tasks = [1, 2, 3];

  it("runs three tasks (server, sidecar, agent in its namespace) and a balancer, nothing else: no shared store", () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ["balancer", ...tasks.flatMap((n) => [`agent-${n}`, `server-${n}`, `sidecar-${n}`])].sort(),
    );
    for (const n of tasks) expect(compose.services[`agent-${n}`]?.network_mode).toBe(`service:sidecar-${n}`);
    expect(compose.services.balancer?.stop_signal).toBe("SIGUSR1");
  });

  it("gives each sidecar a routing configuration its own parser accepts, advertising the fixed address it has, inside --peer-cidrs, with a session key the agent serves", () => {
    const secrets = parseSecretsDocument(parseYaml(readFileSync(join(ROOT, "compose/secrets.yaml"), "utf8")));
    for (const n of tasks) {
      const sidecar = compose.services[`sidecar-${n}`] as Record<string, unknown>;
      const parsed = parseConfig([], sidecar.environment as Record<string, string>);
      if (parsed.kind !== "config") throw new Error(JSON.stringify(parsed));
      const address = (sidecar.networks as { tasks: { ipv4_address: string } }).tasks.ipv4_address;
      expect(parsed.config.sessionRouting).toBe(true);
      expect(String(parsed.config.advertiseUrl)).toBe(`http://${address}:8080/`);
      expect(new PeerGuard(parsed.config.peerCidrs).originOf(`http://${address}:8080`)).toBeDefined();
      expect(parsed.config.upstream?.origin).toBe(`http://server-${n}:3000`);
      expect(secrets.map((secret) => secret.name)).toContain(parsed.config.sessionSecret?.secretId);
      // The balancer sends to exactly this address and port, checked on /ready as an ALB does.
      expect(haproxy).toContain(`server task-${n} ${address}:${parsed.config.port} check`);
    }
    expect(haproxy).toMatch(/balance roundrobin/);
    expect(haproxy).toMatch(/option httpchk GET \/ready/);
  });
});
