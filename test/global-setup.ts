// The suite-wide secret-leak check: after every test has run, grep every captured log line and
// response body of the whole suite for the secret marker. A leak fails the run.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SECRET_MARKER = "s3cr3t";
let dir: string | undefined;

export function setup(): void {
  dir = mkdtempSync(join(tmpdir(), "mcp-sidecar-capture-"));
  process.env.MCP_SIDECAR_TEST_CAPTURE_DIR = dir;
}

export function teardown(): void {
  if (!dir) return;
  const counts = new Map<string, number>();
  const leaks: string[] = [];
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      if (!line) continue;
      const { kind, text } = JSON.parse(line) as { kind: string; text: string };
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      if (text.includes(SECRET_MARKER)) leaks.push(`${kind}: ${text.slice(0, 300)}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const summary = [...counts].map(([kind, n]) => `${n} ${kind}`).join(", ");
  if (leaks.length > 0) {
    // vitest reports a teardown error but does not fail the run for it: set the exit code too.
    process.exitCode = 1;
    throw new Error(
      `secret values leaked into ${leaks.length} captured line(s) (of ${summary}):\n${leaks.slice(0, 20).join("\n")}`,
    );
  }
  if (counts.size > 0) process.stdout.write(`secret-leak check: no secret value in ${summary}\n`);
}
