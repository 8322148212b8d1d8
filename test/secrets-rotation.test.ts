// Rotation in the agent emulator's secrets (agent/emulator/secrets-source.ts): `rotate` writes only
// the state file beside the secrets file, and a running emulator serves what was written before
// each request, also when it reads them through another path to the directory, as the agent
// container does through docker-compose.yml's bind mount. Real processes, real files.
import { chmodSync, copyFileSync, readdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { SecretsSource, stateFileFor } from "../agent/emulator/secrets-source.ts";
import { jsonLine, node, ROOT, startProcess, stopAllProcesses } from "./helpers/processes.ts";

const TOKEN = "rotation-test-token";

afterEach(async () => {
  await stopAllProcesses();
});

/** The template the compose agent serves, as a path in the checkout (test/containers.test.ts checks the mount). */
function composeTemplate(): string {
  const compose = parseYaml(readFileSync(join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
    services: { agent: { volumes: string[]; command: string[] } };
  };
  const { volumes, command } = compose.services.agent;
  const [hostDir = ""] = (volumes[0] as string).split(":");
  return posix.join(hostDir, posix.basename(command[command.indexOf("--secrets") + 1] as string));
}

describe("SecretsSource", () => {
  it.each([
    ["compose/secrets.yaml", "compose/secrets.state.yaml"],
    ["/run/agent/s.json", "/run/agent/s.state.json"],
    ["secrets", "secrets.state"],
  ])("keeps the state of %s in %s", (file, state) => {
    expect(stateFileFor(file)).toBe(state);
  });

  it("lets the state override the template by name, and keeps the last good content over a broken change until the next one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "source-"));
    const file = join(dir, "secrets.yaml");
    await writeFile(file, "secrets:\n  a: s3cr3t-a\n  b: s3cr3t-b\n");
    const source = new SecretsSource(file);
    const values = (secrets: ReturnType<SecretsSource["load"]>) =>
      secrets.map((s) => `${s.name}=${s.versions.at(-1)?.secretString}`);
    expect(values(source.load())).toEqual(["a=s3cr3t-a", "b=s3cr3t-b"]);
    expect(source.check()).toEqual({ kind: "unchanged" });
    await writeFile(stateFileFor(file), "secrets:\n  b: s3cr3t-b2\n  c: s3cr3t-c\n");
    const reloaded = source.check();
    expect(reloaded.kind === "reloaded" && values(reloaded.secrets)).toEqual([
      "a=s3cr3t-a",
      "b=s3cr3t-b2",
      "c=s3cr3t-c",
    ]);
    await writeFile(file, "secrets:\n  a: [unclosed\n");
    expect(source.check().kind).toBe("unreadable");
    expect(source.check()).toEqual({ kind: "unchanged" });
    await writeFile(file, "secrets:\n  a: s3cr3t-a3\n");
    const fixed = source.check();
    expect(fixed.kind === "reloaded" && values(fixed.secrets)).toEqual([
      "a=s3cr3t-a3",
      "b=s3cr3t-b2",
      "c=s3cr3t-c",
    ]);
  });
});

describe("agent-emulator rotate and a running emulator", () => {
  it("rotate, then at once: refreshNow=true gets the new version with no wait; the cache keeps the old one until its TTL, as the agent's", async () => {
    const dir = await mkdtemp(join(tmpdir(), "emu-"));
    const secrets = join(dir, "secrets.yaml");
    await writeFile(secrets, "secrets:\n  mcp/api-key: s3cr3t-first\n");
    // The project's agent config: ttl_seconds 30, far longer than this test.
    const config = new URL("../agent/config.toml", import.meta.url).pathname;
    const args = ["agent-emulator", "--secrets", secrets, "--config", config, "--port", "0"];
    const proc = startProcess(process.execPath, ["bin/mcp-sidecar.js", ...args], {
      env: { AWS_TOKEN: TOKEN },
    });
    const url = String(jsonLine(await proc.waitForLine((l) => jsonLine(l)?.msg === "listening"))?.url);
    const read = async (query = "") => {
      const response = await fetch(new URL(`/secretsmanager/get?secretId=mcp/api-key${query}`, url), {
        headers: { "X-Aws-Parameters-Secrets-Token": TOKEN },
      });
      return ((await response.json()) as { SecretString: string }).SecretString;
    };
    expect(await read()).toBe("s3cr3t-first");
    // Several rounds: each request follows its rotate's exit with nothing in between, so a reload
    // left to the file watcher (a 200 ms poll) would have to win every race to pass.
    for (const round of [1, 2, 3]) {
      const value = `s3cr3t-rotated-${round}`;
      const rotate = node("bin/mcp-sidecar.js", [
        "agent-emulator",
        "rotate",
        "--secrets",
        secrets,
        "mcp/api-key",
        "--value",
        value,
      ]);
      expect((await rotate.exited).code).toBe(0);
      expect(await read("&refreshNow=true")).toBe(value);
      expect(await read()).toBe(value); // refreshNow stored it in the cache
    }
    const rotate = node("bin/mcp-sidecar.js", [
      "agent-emulator",
      "rotate",
      "--secrets",
      secrets,
      "mcp/api-key",
    ]);
    expect((await rotate.exited).code).toBe(0);
    // Without refreshNow the cached version stays until ttl_seconds, as on the real agent.
    expect(await read()).toBe("s3cr3t-rotated-3");
    expect(proc.lines.join("\n")).not.toContain("s3cr3t");
  });

  it("rotation under compose: the running emulator serves it through the mounted directory at once; the template stays byte for byte, comments and all", async () => {
    const template = composeTemplate();
    // The host's compose/ (the template only, as a checkout has it: readable by the container's
    // uid 65532), and the container's view of it: a second path to the same directory, standing in
    // for the bind mount.
    const host = await mkdtemp(join(tmpdir(), "compose-host-"));
    const hostTemplate = join(host, posix.basename(template));
    copyFileSync(join(ROOT, template), hostTemplate);
    chmodSync(hostTemplate, 0o644);
    const mounted = join(await mkdtemp(join(tmpdir(), "compose-container-")), "run-agent");
    symlinkSync(host, mounted);
    const before = readFileSync(hostTemplate);
    const inContainer = join(mounted, posix.basename(template));
    const args = ["agent-emulator", "--secrets", inContainer, "--config", "agent/config.toml", "--port", "0"];
    const emulator = startProcess(process.execPath, ["bin/mcp-sidecar.js", ...args], {
      env: { AWS_TOKEN: TOKEN },
    });
    const url = String(jsonLine(await emulator.waitForLine((l) => jsonLine(l)?.msg === "listening"))?.url);
    const read = async (id: string, query = "&refreshNow=true") => {
      const response = await fetch(new URL(`/secretsmanager/get?secretId=${id}${query}`, url), {
        headers: { "X-Aws-Parameters-Secrets-Token": TOKEN },
      });
      return ((await response.json()) as { SecretString: string }).SecretString;
    };
    const placeholder = await read("mcp-sidecar/local/api-key");
    const rotate = async (id: string, value: string) => {
      const proc = node("bin/mcp-sidecar.js", [
        "agent-emulator",
        "rotate",
        "--secrets",
        hostTemplate,
        id,
        "--value",
        value,
      ]);
      expect((await proc.exited).code).toBe(0);
    };
    await rotate("mcp-sidecar/local/api-key", "s3cr3t-compose-1");
    expect(await read("mcp-sidecar/local/api-key")).toBe("s3cr3t-compose-1");
    await rotate("mcp-sidecar/local/upstream-key", "s3cr3t-compose-2");
    expect(await read("mcp-sidecar/local/upstream-key")).toBe("s3cr3t-compose-2");
    expect(await read("mcp-sidecar/local/api-key")).toBe("s3cr3t-compose-1");
    expect(await read("mcp-sidecar/local/api-key", "&versionStage=AWSPREVIOUS")).toBe(placeholder);

    expect(readFileSync(hostTemplate).equals(before)).toBe(true);
    expect(before.toString()).toMatch(/^# Secrets served by the agent emulator/);
    const state = stateFileFor(hostTemplate);
    expect(readdirSync(host).sort()).toEqual([posix.basename(state), posix.basename(template)].sort());
    expect(statSync(state).mode & 0o777).toBe(0o644);
    expect(readFileSync(state, "utf8")).toMatch(/^# Written by "mcp-sidecar agent-emulator rotate"/);
    expect(emulator.lines.join("\n")).not.toContain("s3cr3t");
  });
});
