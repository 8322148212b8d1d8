// The deploy workflow's vulnerability gate: after the images are pushed, wait for ECR's scan of every
// image this stack built, and fail when a CRITICAL finding is not waived.
//
//   node scripts/ecr-scan-gate.ts --stack dev --tag git-0123456789ab
//
// Which images: the repositories infra/index.ts creates, `<project>-<stack>-{sidecar,server,agent}`
// (a stack running an existing server or agent image has no repository for it), at the release
// tag or the tag plus a suffix (the agent's tag carries the TTL built into it).
// A multi-arch tag points at an image index, which ECR does not scan: ECR scans each platform's
// image, so the gate resolves the index and checks each of those (attestation manifests skipped).
// Basic scanning (`findings`) and enhanced scanning (`enhancedFindings`) are both read.
//
// Waiving: add the finding (e.g. CVE-2026-12345) to infra/scan-waivers.json with a reason and an
// expiry date (YYYY-MM-DD); an expired waiver no longer counts. Review waivers in the PR adding them.
//
// Written against the aws CLI (present on GitHub's runners, authenticated by the workflow's OIDC
// step) rather than the AWS SDK, so the project installs no AWS SDK for one CI step.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const INDEX_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];
const IMAGE_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];

export interface Waiver {
  finding: string;
  reason: string;
  expires: string;
}

/** Reads the waiver file, naming the entry and field that is wrong. */
export function parseWaivers(text: string, file = "infra/scan-waivers.json"): Waiver[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON (${(error as Error).message})`);
  }
  const list = (doc as { waivers?: unknown }).waivers;
  if (!Array.isArray(list)) throw new Error(`${file}: "waivers" must be a list`);
  return list.map((entry, i) => {
    const w = entry as Partial<Record<keyof Waiver, unknown>>;
    for (const field of ["finding", "reason"] as const) {
      if (typeof w[field] !== "string" || w[field] === "") {
        throw new Error(`${file}: waivers[${i}].${field} must be a non-empty string`);
      }
    }
    if (typeof w.expires !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(w.expires)) {
      throw new Error(`${file}: waivers[${i}].expires must be a date YYYY-MM-DD`);
    }
    return w as Waiver;
  });
}

export interface PlatformImage {
  digest: string;
  platform: string;
}

/**
 * The scannable images behind a tag: the image itself, or each platform image of an index. Buildx
 * adds attestation manifests (platform unknown/unknown) to an index; ECR cannot scan them.
 */
export function platformImages(manifest: string, mediaType: string, digest: string): PlatformImage[] {
  const doc = JSON.parse(manifest) as {
    mediaType?: string;
    manifests?: {
      digest: string;
      platform?: { os?: string; architecture?: string; variant?: string };
      annotations?: Record<string, string>;
    }[];
  };
  const type = mediaType || doc.mediaType || "";
  if (!INDEX_TYPES.includes(type)) return [{ digest, platform: "single" }];
  return (doc.manifests ?? [])
    .filter((m) => m.annotations?.["vnd.docker.reference.type"] !== "attestation-manifest")
    .filter((m) => m.platform?.os !== "unknown")
    .map((m) => ({
      digest: m.digest,
      platform: [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join("/"),
    }));
}

export type ScanState =
  | { done: true; critical: string[] }
  | { done: false; waiting: boolean; status: string };

/** What a describe-image-scan-findings answer means for the gate. */
export function scanState(response: {
  imageScanStatus?: { status?: string; description?: string };
  imageScanFindings?: {
    findings?: { name?: string; severity?: string }[];
    enhancedFindings?: {
      severity?: string;
      title?: string;
      packageVulnerabilityDetails?: { vulnerabilityId?: string };
    }[];
  };
}): ScanState {
  const status = response.imageScanStatus?.status ?? "UNKNOWN";
  // ACTIVE: enhanced (continuous) scanning, whose findings are current as they are read.
  if (status === "COMPLETE" || status === "ACTIVE") {
    const basic = (response.imageScanFindings?.findings ?? [])
      .filter((f) => f.severity === "CRITICAL")
      .map((f) => f.name ?? "(unnamed finding)");
    const enhanced = (response.imageScanFindings?.enhancedFindings ?? [])
      .filter((f) => f.severity === "CRITICAL")
      .map((f) => f.packageVulnerabilityDetails?.vulnerabilityId ?? f.title ?? "(unnamed finding)");
    return { done: true, critical: [...new Set([...basic, ...enhanced])] };
  }
  const description = response.imageScanStatus?.description;
  return {
    done: false,
    waiting: status === "IN_PROGRESS" || status === "PENDING",
    status: description ? `${status}: ${description}` : status,
  };
}

export function isWaived(finding: string, waivers: Waiver[], today: string): boolean {
  return waivers.some((w) => w.finding === finding && w.expires >= today);
}

interface Options {
  stack: string;
  tag: string;
  project: string;
  waivers: string;
  timeoutSeconds: number;
  pollSeconds: number;
}

class AwsError extends Error {}

function aws(args: string[]): unknown {
  let out: string;
  try {
    out = execFileSync("aws", [...args, "--output", "json"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? "").trim();
    throw new AwsError(`aws ${args.slice(0, 2).join(" ")} failed: ${stderr || (error as Error).message}`);
  }
  return JSON.parse(out || "null");
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

async function waitForScan(repository: string, image: PlatformImage, options: Options): Promise<string[]> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  for (;;) {
    let state: ScanState;
    try {
      state = scanState(
        aws([
          "ecr",
          "describe-image-scan-findings",
          "--repository-name",
          repository,
          "--image-id",
          `imageDigest=${image.digest}`,
        ]) as Parameters<typeof scanState>[0],
      );
    } catch (error) {
      // Right after a push the scan may not exist yet.
      if (!(error instanceof AwsError && error.message.includes("ScanNotFoundException"))) throw error;
      state = { done: false, waiting: true, status: "not started" };
    }
    if (state.done) return state.critical;
    if (!state.waiting) {
      throw new Error(
        `${repository}@${image.digest} (${image.platform}): the scan did not complete (${state.status})`,
      );
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `${repository}@${image.digest} (${image.platform}): no scan result after ${options.timeoutSeconds} s (${state.status})`,
      );
    }
    await sleep(options.pollSeconds);
  }
}

/** The image components infra/index.ts builds, each in `<project>-<stack>-<component>`. */
export const COMPONENTS = ["sidecar", "server", "agent"] as const;

/** A release's tags: exactly the tag, or the tag with a suffix (the agent's carries its TTL). */
export const isReleaseTag = (candidate: string, tag: string) =>
  candidate === tag || candidate.startsWith(`${tag}-`);

export async function runGate(options: Options, log: (line: string) => void): Promise<boolean> {
  const waivers = parseWaivers(readFileSync(options.waivers, "utf8"), options.waivers);
  const today = new Date().toISOString().slice(0, 10);
  const wanted = COMPONENTS.map((c) => `${options.project}-${options.stack}-${c}`);
  const existing = new Set(
    aws(["ecr", "describe-repositories", "--query", "repositories[].repositoryName"]) as string[] | null,
  );
  // A stack running an existing server or agent image has no repository for it.
  const repositories = wanted.filter((name) => existing.has(name));
  if (repositories.length === 0)
    throw new Error(`no ECR repository ${wanted.join(", ")} (has the stack pushed its images?)`);
  let failed = false;
  for (const repository of repositories) {
    const details =
      (
        aws(["ecr", "describe-images", "--repository-name", repository, "--filter", "tagStatus=TAGGED"]) as {
          imageDetails?: { imageDigest: string; imageTags?: string[] }[];
        }
      ).imageDetails ?? [];
    const release = details.filter((d) => d.imageTags?.some((t) => isReleaseTag(t, options.tag)));
    if (release.length === 0)
      throw new Error(
        `${repository}: no image tagged ${options.tag} (or ${options.tag}-*); the gate runs after the images are pushed`,
      );
    for (const detail of release) {
      const label = `${repository}:${detail.imageTags?.find((t) => isReleaseTag(t, options.tag))}`;
      const answer = aws([
        "ecr",
        "batch-get-image",
        "--repository-name",
        repository,
        "--image-ids",
        `imageDigest=${detail.imageDigest}`,
        "--accepted-media-types",
        ...INDEX_TYPES,
        ...IMAGE_TYPES,
      ]) as {
        images?: {
          imageManifest: string;
          imageManifestMediaType?: string;
          imageId: { imageDigest: string };
        }[];
        failures?: { failureCode?: string; failureReason?: string }[];
      };
      const found = answer.images?.[0];
      if (!found) {
        const why = answer.failures?.[0];
        throw new Error(
          `${label}: manifest not readable (${why?.failureCode ?? "no image"}: ${why?.failureReason ?? "-"})`,
        );
      }
      const images = platformImages(
        found.imageManifest,
        found.imageManifestMediaType ?? "",
        found.imageId.imageDigest,
      );
      if (images.length === 0) throw new Error(`${label}: the index lists no platform image`);
      for (const image of images) {
        const critical = await waitForScan(repository, image, options);
        log(`== ${label} ${image.platform} ${image.digest}: ${critical.length} CRITICAL`);
        for (const finding of critical) {
          if (isWaived(finding, waivers, today)) log(`  waived: ${finding}`);
          else {
            log(`  CRITICAL: ${finding}`);
            failed = true;
          }
        }
      }
    }
  }
  log(
    failed
      ? "vulnerability gate: CRITICAL findings (waive one in infra/scan-waivers.json with a reason and an expiry)"
      : "vulnerability gate: no unwaived CRITICAL findings",
  );
  return !failed;
}

function seconds(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`--${name} must be a number of seconds >= 0, got "${value}"`);
  return n;
}

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      options: {
        stack: { type: "string" },
        tag: { type: "string" },
        project: { type: "string", default: "mcp-sidecar" },
        waivers: { type: "string", default: new URL("../infra/scan-waivers.json", import.meta.url).pathname },
        "timeout-seconds": { type: "string", default: "900" },
        "poll-seconds": { type: "string", default: "10" },
      },
    });
    if (!values.stack) throw new Error("--stack is required (the Pulumi stack whose images to check)");
    if (!values.tag)
      throw new Error("--tag is required (the release tag just pushed, e.g. git-0123456789ab)");
    const passed = await runGate(
      {
        stack: values.stack,
        tag: values.tag,
        project: values.project,
        waivers: values.waivers,
        timeoutSeconds: seconds("timeout-seconds", values["timeout-seconds"]),
        pollSeconds: seconds("poll-seconds", values["poll-seconds"]),
      },
      (line) => console.log(line),
    );
    process.exitCode = passed ? 0 : 1;
  } catch (error) {
    console.error(`ecr-scan-gate: ${(error as Error).message}`);
    process.exitCode = 2;
  }
}
