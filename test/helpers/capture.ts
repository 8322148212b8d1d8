// Everything a test sees the sidecar say (its log lines, child process output, response bodies and
// headers) is appended to a capture file; the global teardown (test/global-setup.ts) then greps all
// of it for secret values. Every secret value used in the tests contains the marker "s3cr3t".
import { appendFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.env.MCP_SIDECAR_TEST_CAPTURE_DIR;

export function capture(kind: string, text: string): void {
  if (!dir || !text) return;
  appendFileSync(join(dir, `${process.pid}.jsonl`), `${JSON.stringify({ kind, text })}\n`);
}
