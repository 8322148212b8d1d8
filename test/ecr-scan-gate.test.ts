// The deploy workflow's vulnerability gate (scripts/ecr-scan-gate.ts): its reading of ECR answers,
// and the script run as the workflow runs it, against a stand-in `aws` CLI on PATH (there is no AWS
// here) that answers from a fixture and records every call.
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { isWaived, parseWaivers, platformImages, scanState } from "../scripts/ecr-scan-gate.ts";

const GATE = new URL("../scripts/ecr-scan-gate.ts", import.meta.url).pathname;
const run = promisify(execFile);

const INDEX = "application/vnd.oci.image.index.v1+json";
const index = JSON.stringify({
  schemaVersion: 2,
  mediaType: INDEX,
  manifests: [
    { digest: "sha256:amd", platform: { os: "linux", architecture: "amd64" } },
    { digest: "sha256:arm", platform: { os: "linux", architecture: "arm64" } },
    {
      digest: "sha256:att",
      platform: { os: "unknown", architecture: "unknown" },
      annotations: {
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": "sha256:amd",
      },
    },
  ],
});

describe("reading ECR's answers", () => {
  it("resolves a multi-arch index to its platform images, skipping attestations", () => {
    expect(platformImages(index, INDEX, "sha256:idx")).toEqual([
      { digest: "sha256:amd", platform: "linux/amd64" },
      { digest: "sha256:arm", platform: "linux/arm64" },
    ]);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
    });
    expect(platformImages(manifest, "application/vnd.oci.image.manifest.v1+json", "sha256:one")).toEqual([
      { digest: "sha256:one", platform: "single" },
    ]);
  });

  it("reads CRITICAL findings of basic and enhanced scans, and waits only on a scan still running", () => {
    expect(
      scanState({
        imageScanStatus: { status: "COMPLETE" },
        imageScanFindings: {
          findings: [
            { name: "CVE-1", severity: "CRITICAL" },
            { name: "CVE-2", severity: "HIGH" },
          ],
        },
      }),
    ).toEqual({ done: true, critical: ["CVE-1"] });
    expect(
      scanState({
        imageScanStatus: { status: "ACTIVE" },
        imageScanFindings: {
          enhancedFindings: [
            { severity: "CRITICAL", packageVulnerabilityDetails: { vulnerabilityId: "CVE-3" } },
            { severity: "MEDIUM", packageVulnerabilityDetails: { vulnerabilityId: "CVE-4" } },
          ],
        },
      }),
    ).toEqual({ done: true, critical: ["CVE-3"] });
    expect(scanState({ imageScanStatus: { status: "IN_PROGRESS" } })).toMatchObject({
      done: false,
      waiting: true,
    });
    expect(
      scanState({ imageScanStatus: { status: "UNSUPPORTED_IMAGE", description: "not supported" } }),
    ).toEqual({ done: false, waiting: false, status: "UNSUPPORTED_IMAGE: not supported" });
  });

  it("counts a waiver until its expiry day, and names a malformed entry", () => {
    const waivers = [{ finding: "CVE-1", reason: "no fix upstream", expires: "2026-12-01" }];
    expect(isWaived("CVE-1", waivers, "2026-12-01")).toBe(true);
    expect(isWaived("CVE-1", waivers, "2026-12-02")).toBe(false);
    expect(isWaived("CVE-2", waivers, "2026-11-01")).toBe(false);
    expect(() => parseWaivers('{"waivers":[{"finding":"CVE-1","expires":"2026-12-01"}]}')).toThrow(
      "waivers[0].reason must be a non-empty string",
    );
    expect(() => parseWaivers('{"waivers":[{"finding":"CVE-1","reason":"x","expires":"soon"}]}')).toThrow(
      "waivers[0].expires must be a date YYYY-MM-DD",
    );
    expect(() => parseWaivers("{")).toThrow("infra/scan-waivers.json: not JSON");
  });
});

// ---- the script, as the deploy workflow runs it ----

const dir = mkdtempSync(join(tmpdir(), "scan-gate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The stand-in aws CLI: answers `aws ecr <command> ...` from fixture.json, each key a list of
// answers given in turn (the last repeats), and appends each call to calls.log.
writeFileSync(
  join(dir, "aws"),
  `#!/usr/bin/env node
const fs = require("node:fs");
const path = require("node:path");
const args = process.argv.slice(2);
fs.appendFileSync(path.join(__dirname, "calls.log"), JSON.stringify(args) + "\\n");
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const key = [args[1], opt("--repository-name"), opt("--image-id") ?? opt("--image-ids")].filter((v) => v && !v.startsWith("--")).join(" ");
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "fixture.json"), "utf8"));
const counts = JSON.parse(fs.existsSync(path.join(__dirname, "counts.json")) ? fs.readFileSync(path.join(__dirname, "counts.json"), "utf8") : "{}");
const answers = fixture[key];
if (!answers) { process.stderr.write("stand-in aws: no answer for " + key + "\\n"); process.exit(255); }
const n = counts[key] ?? 0;
counts[key] = n + 1;
fs.writeFileSync(path.join(__dirname, "counts.json"), JSON.stringify(counts));
const answer = answers[Math.min(n, answers.length - 1)];
if (answer.error) { process.stderr.write(answer.error + "\\n"); process.exit(254); }
process.stdout.write(JSON.stringify(answer));
`,
);
chmodSync(join(dir, "aws"), 0o755);

// A second stack whose name starts like this one's ("dev-2") must not be mistaken for it.
const REPOS = ["mcp-sidecar-dev-sidecar", "mcp-sidecar-dev-agent", "mcp-sidecar-dev-2-sidecar", "other"];
const TAG = "git-0123456789ab";

function fixture(critical: { arm?: string[]; agent?: string[] } = {}) {
  const complete = (names: string[] = []) => ({
    imageScanStatus: { status: "COMPLETE" },
    imageScanFindings: { findings: names.map((name) => ({ name, severity: "CRITICAL" })) },
  });
  return {
    "describe-repositories": [REPOS],
    "describe-images mcp-sidecar-dev-sidecar": [
      {
        imageDetails: [
          { imageDigest: "sha256:old", imageTags: ["git-fedcba987654"] },
          { imageDigest: "sha256:idx", imageTags: [TAG] },
        ],
      },
    ],
    // The agent's tag carries the TTL built into it.
    "describe-images mcp-sidecar-dev-agent": [
      { imageDetails: [{ imageDigest: "sha256:agent-idx", imageTags: [`${TAG}-ttl30`] }] },
    ],
    "batch-get-image mcp-sidecar-dev-sidecar imageDigest=sha256:idx": [
      {
        images: [
          { imageManifest: index, imageManifestMediaType: INDEX, imageId: { imageDigest: "sha256:idx" } },
        ],
      },
    ],
    "batch-get-image mcp-sidecar-dev-agent imageDigest=sha256:agent-idx": [
      {
        images: [
          {
            imageManifest: index.replaceAll("sha256:a", "sha256:agent-a"),
            imageManifestMediaType: INDEX,
            imageId: { imageDigest: "sha256:agent-idx" },
          },
        ],
      },
    ],
    // The scan of the arm64 image has not started, then runs, then completes.
    "describe-image-scan-findings mcp-sidecar-dev-sidecar imageDigest=sha256:arm": [
      {
        error:
          "An error occurred (ScanNotFoundException) when calling the DescribeImageScanFindings operation",
      },
      { imageScanStatus: { status: "IN_PROGRESS" } },
      complete(critical.arm),
    ],
    "describe-image-scan-findings mcp-sidecar-dev-sidecar imageDigest=sha256:amd": [complete()],
    "describe-image-scan-findings mcp-sidecar-dev-agent imageDigest=sha256:agent-amd": [
      complete(critical.agent),
    ],
    "describe-image-scan-findings mcp-sidecar-dev-agent imageDigest=sha256:agent-arm": [complete()],
  };
}

async function gate(fixtureJson: object, waivers: object[] = [], extra: string[] = []) {
  writeFileSync(join(dir, "fixture.json"), JSON.stringify(fixtureJson));
  writeFileSync(join(dir, "counts.json"), "{}");
  writeFileSync(join(dir, "calls.log"), "");
  writeFileSync(join(dir, "waivers.json"), JSON.stringify({ waivers }));
  const args = [GATE, "--stack", "dev", "--tag", TAG, "--waivers", join(dir, "waivers.json")];
  const result = await run(process.execPath, [...args, "--poll-seconds", "0", ...extra], {
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
  const calls = readFileSync(join(dir, "calls.log"), "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as string[]);
  return { ...result, calls };
}

describe("scripts/ecr-scan-gate.ts against a stand-in aws CLI", () => {
  it("passes a clean release: this stack's repositories only, every platform image, after its scan completes", async () => {
    const result = await gate(fixture());
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("vulnerability gate: no unwaived CRITICAL findings");
    const scanned = result.calls.filter((c) => c[1] === "describe-image-scan-findings").map((c) => c.at(-3));
    // arm64 polled three times (not found, in progress, complete); the attestation never.
    expect(scanned.filter((d) => d === "imageDigest=sha256:arm")).toHaveLength(3);
    expect(new Set(scanned)).toEqual(
      new Set([
        "imageDigest=sha256:amd",
        "imageDigest=sha256:arm",
        "imageDigest=sha256:agent-amd",
        "imageDigest=sha256:agent-arm",
      ]),
    );
    expect(result.calls.some((c) => c.includes("mcp-sidecar-dev-2-sidecar") || c.includes("other"))).toBe(
      false,
    );
    expect(result.stdout).toContain(`mcp-sidecar-dev-agent:${TAG}-ttl30 linux/arm64`);
    expect(result.calls.some((c) => c.includes("imageDigest=sha256:old"))).toBe(false);
    const get = result.calls.find((c) => c[1] === "batch-get-image");
    expect(get).toEqual(
      expect.arrayContaining([INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"]),
    );
  });

  it("fails on a CRITICAL finding in any platform image, naming it", async () => {
    const result = await gate(fixture({ arm: ["CVE-2026-0001"], agent: ["CVE-2026-0002"] }));
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("CRITICAL: CVE-2026-0001");
    expect(result.stdout).toContain("CRITICAL: CVE-2026-0002");
    expect(result.stdout).toContain("vulnerability gate: CRITICAL findings");
  });

  it("passes when every CRITICAL finding is waived and the waiver has not expired", async () => {
    const critical = { arm: ["CVE-2026-0001"] };
    const waived = await gate(fixture(critical), [
      { finding: "CVE-2026-0001", reason: "not reachable", expires: "2999-12-31" },
    ]);
    expect(waived.code).toBe(0);
    expect(waived.stdout).toContain("waived: CVE-2026-0001");
    const expired = await gate(fixture(critical), [
      { finding: "CVE-2026-0001", reason: "not reachable", expires: "2020-01-01" },
    ]);
    expect(expired.code).toBe(1);
  });

  it("fails clearly when the tag was not pushed, a scan cannot complete, or the flags are wrong", async () => {
    const missing = fixture();
    missing["describe-images mcp-sidecar-dev-agent"] = [
      { imageDetails: [{ imageDigest: "sha256:x", imageTags: ["git-fedcba987654-ttl30"] }] },
    ] as never;
    const notPushed = await gate(missing);
    expect(notPushed.code).toBe(2);
    expect(notPushed.stderr).toContain(`mcp-sidecar-dev-agent: no image tagged ${TAG} (or ${TAG}-*)`);

    const unsupported = fixture();
    unsupported["describe-image-scan-findings mcp-sidecar-dev-sidecar imageDigest=sha256:amd"] = [
      {
        imageScanStatus: {
          status: "UNSUPPORTED_IMAGE",
          description: "The operating system is not supported",
        },
      },
    ] as never;
    const cannotScan = await gate(unsupported);
    expect(cannotScan.code).toBe(2);
    expect(cannotScan.stderr).toContain("(linux/amd64): the scan did not complete (UNSUPPORTED_IMAGE");

    const stuck = fixture();
    stuck["describe-image-scan-findings mcp-sidecar-dev-sidecar imageDigest=sha256:arm"] = [
      { imageScanStatus: { status: "IN_PROGRESS" } },
    ] as never;
    const timedOut = await gate(stuck, [], ["--timeout-seconds", "0"]);
    expect(timedOut.code).toBe(2);
    expect(timedOut.stderr).toContain("no scan result after 0 s (IN_PROGRESS)");

    const badFlag = await gate(fixture(), [], ["--poll-seconds", "soon"]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--poll-seconds must be a number of seconds >= 0, got "soon"');

    const denied = fixture();
    denied["describe-repositories"] = [
      { error: "An error occurred (AccessDeniedException) when calling the DescribeRepositories operation" },
    ] as never;
    const noAccess = await gate(denied);
    expect(noAccess.code).toBe(2);
    expect(noAccess.stderr).toContain(
      "aws ecr describe-repositories failed: An error occurred (AccessDeniedException)",
    );

    const noStack = await run(process.execPath, [GATE, "--tag", TAG]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(noStack).toMatchObject({ code: 2, stderr: expect.stringContaining("--stack is required") });
  });
});
