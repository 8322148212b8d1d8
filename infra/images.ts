// ECR repositories and multi-arch image builds (linux/amd64 + linux/arm64) with
// @pulumi/docker-build: pushed, cached in ECR, tagged from the git commit, and referenced by
// digest so a task definition pins exactly what was built. awsx.ecr.Image builds one platform
// only, hence docker-build.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as aws from "@pulumi/aws";
import * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { CACHE_TAG, ecrLifecyclePolicy, RELEASE_TAG_PREFIX } from "./plan.ts";

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The release tag: the commit, plus `-dirty-` and a hash of the changes when the work tree has any
 * (tags are immutable, so an edited tree must not reuse the commit's tag; the same edits give the
 * same tag, so a second preview does not rebuild). CI passes GITHUB_SHA.
 */
export function releaseTag(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.GITHUB_SHA) return process.env.GITHUB_SHA.slice(0, 12);
  const git = (...args: string[]) => execFileSync("git", args, { cwd: REPO_ROOT, encoding: "buffer" });
  try {
    const sha = git("rev-parse", "--short=12", "HEAD").toString().trim();
    if (git("status", "--porcelain").length === 0) return sha;
    const changes = createHash("sha256").update(git("diff", "HEAD", "--binary"));
    const untracked = git("ls-files", "--others", "--exclude-standard", "-z").toString().split("\0");
    for (const file of untracked.filter(Boolean)) {
      changes.update(file).update(readFileSync(`${REPO_ROOT}${file}`));
    }
    return `${sha}-dirty-${changes.digest("hex").slice(0, 8)}`;
  } catch (error) {
    throw new Error(
      `imageTag: not set, and no git commit to tag the images with (${(error as Error).message})`,
    );
  }
}

export interface Repository {
  readonly repository: aws.ecr.Repository;
}

/** Immutable tags (the build-cache tag excepted), scan on push, and a lifecycle that keeps releases. */
export function createRepository(
  name: string,
  keepReleases: number,
  opts?: pulumi.CustomResourceOptions,
): aws.ecr.Repository {
  const repository = new aws.ecr.Repository(
    name,
    {
      name,
      imageTagMutability: "IMMUTABLE_WITH_EXCLUSION",
      imageTagMutabilityExclusionFilters: [{ filter: `${CACHE_TAG}*`, filterType: "WILDCARD" }],
      imageScanningConfiguration: { scanOnPush: true },
      encryptionConfigurations: [{ encryptionType: "AES256" }],
      forceDelete: false,
    },
    opts,
  );
  new aws.ecr.LifecyclePolicy(
    name,
    { repository: repository.name, policy: JSON.stringify(ecrLifecyclePolicy(keepReleases)) },
    opts,
  );
  return repository;
}

export interface BuiltImage {
  readonly image: dockerbuild.Image;
  /** `<repository>@sha256:...`: what the task definition runs. */
  readonly ref: pulumi.Output<string>;
}

export function buildImage(
  name: string,
  repository: aws.ecr.Repository,
  dockerfile: string,
  tag: string,
  buildArgs: Record<string, string> = {},
  opts?: pulumi.CustomResourceOptions,
): BuiltImage {
  const auth = aws.ecr.getAuthorizationTokenOutput({ registryId: repository.registryId }, opts);
  const cache = pulumi.interpolate`${repository.repositoryUrl}:${CACHE_TAG}`;
  const image = new dockerbuild.Image(
    name,
    {
      context: { location: REPO_ROOT },
      dockerfile: { location: `${REPO_ROOT}${dockerfile}` },
      platforms: [dockerbuild.Platform.Linux_amd64, dockerbuild.Platform.Linux_arm64],
      push: true,
      tags: [pulumi.interpolate`${repository.repositoryUrl}:${RELEASE_TAG_PREFIX}${tag}`],
      registries: [{ address: repository.repositoryUrl, username: auth.userName, password: auth.password }],
      buildArgs,
      cacheFrom: [{ registry: { ref: cache } }],
      // ECR needs the cache as an image manifest with OCI media types.
      cacheTo: [
        {
          registry: { ref: cache, imageManifest: true, ociMediaTypes: true, mode: dockerbuild.CacheMode.Max },
        },
      ],
    },
    opts,
  );
  return { image, ref: pulumi.interpolate`${repository.repositoryUrl}@${image.digest}` };
}
