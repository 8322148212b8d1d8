// The GitHub workflows, validated against the workflow schema (@action-validator/core, the
// action-validator CLI's engine) and checked for what they promise.
import { readdirSync, readFileSync } from "node:fs";
import { validateWorkflow } from "@action-validator/core";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { RELEASE_TAG_PREFIX } from "../infra/plan.ts";
import { parseWaivers } from "../scripts/ecr-scan-gate.ts";

const dir = new URL("../.github/workflows/", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir), "utf8");
type Step = { uses?: string; run?: string; name?: string; with?: Record<string, unknown> };
const steps = (name: string): Step[] => {
  const workflow = parseYaml(read(name)) as { jobs: Record<string, { steps: Step[] }> };
  return Object.values(workflow.jobs).flatMap((job) => job.steps);
};

describe(".github/workflows", () => {
  it.each(readdirSync(dir))("%s is a valid workflow", (name) => {
    const state = validateWorkflow(read(name));
    expect(state.errors).toEqual([]);
  });

  it("the validator rejects a broken workflow (it is not vacuous)", () => {
    const broken = "name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps: not-a-list\n";
    expect(validateWorkflow(broken).errors.length).toBeGreaterThan(0);
  });

  it("ci runs .ci/run (install, npm test, the container proof)", () => {
    expect(steps("ci.yml").some((s) => s.run?.includes("bash .ci/run"))).toBe(true);
  });

  it("preview comments a Pulumi preview on the PR, with AWS through OIDC, QEMU + buildx for arm64, and the policy pack", () => {
    const workflow = parseYaml(read("preview.yml")) as {
      permissions: Record<string, string>;
      on: Record<string, unknown>;
    };
    expect(workflow.permissions).toMatchObject({ "id-token": "write", "pull-requests": "write" });
    expect(Object.keys(workflow.on)).toEqual(["pull_request"]);
    const list = steps("preview.yml");
    const uses = list.map((s) => s.uses?.split("@")[0]);
    expect(uses).toEqual(
      expect.arrayContaining([
        "docker/setup-qemu-action",
        "docker/setup-buildx-action",
        "aws-actions/configure-aws-credentials",
        "pulumi/actions",
      ]),
    );
    expect(list.find((s) => s.uses?.startsWith("aws-actions/"))?.with?.["role-to-assume"]).toBeTruthy();
    expect(list.find((s) => s.uses?.startsWith("pulumi/actions"))?.with).toMatchObject({
      command: "preview",
      "comment-on-pr": true,
      policyPacks: "infra/policy",
    });
  });

  it("deploy holds the release on the ECR scan: images first, the gate, then the full up", () => {
    const list = steps("deploy.yml");
    const images = list.findIndex((s) => s.with?.target !== undefined);
    const gate = list.findIndex((s) => s.run?.includes("node scripts/ecr-scan-gate.ts"));
    const up = list.findIndex(
      (s, i) => i > gate && s.uses?.startsWith("pulumi/actions") && s.with?.command === "up",
    );
    expect(images).toBeGreaterThanOrEqual(0);
    expect(gate).toBeGreaterThan(images);
    expect(up).toBeGreaterThan(gate);
    // A first deploy has no repositories yet: a targeted up must create them with the images.
    const stackUrn = ["urn:pulumi:$", "{{ env.STACK }}::mcp-sidecar::"].join(""); // a GitHub expression
    expect(String(list[images]?.with?.target).split("\n").filter(Boolean)).toEqual([
      `${stackUrn}aws:ecr/repository:Repository::*`,
      `${stackUrn}docker-build:index:Image::*`,
    ]);
    // The gate's tag is the one infra/images.ts gives a CI build.
    expect(list[gate]?.run).toContain(`--tag "${RELEASE_TAG_PREFIX}\${GITHUB_SHA:0:12}"`);
    expect(
      parseWaivers(readFileSync(new URL("../infra/scan-waivers.json", import.meta.url), "utf8")),
    ).toEqual([]);
  });
});
