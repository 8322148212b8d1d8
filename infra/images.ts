// ECR repositories and multi-arch image builds (linux/amd64 + linux/arm64) with
// @pulumi/docker-build: pushed, cached in ECR, tagged from the git commit, and referenced by
// digest so a task definition pins exactly what was built. awsx.ecr.Image builds one platform
// only, hence docker-build.

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as aws from "@pulumi/aws";
import * as dockerbuild from "@pulumi/docker-build";
import * as pulumi from "@pulumi/pulumi";
import { CACHE_TAG, ecrLifecyclePolicy, RELEASE_TAG_PREFIX } from "./plan.ts";

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The release tag: the commit, with `-dirty` and a timestamp when the work tree has changes (tags
 * are immutable, so an edited tree must not reuse the commit's tag). CI passes GITHUB_SHA.
 */
export function releaseTag(explicit?: string): string {
  if (explicit) return explicit;
  if (process.env.GITHUB_SHA) return process.env.GITHUB_SHA.slice(0, 12);
  try {
    const sha = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
      cwd: REPO_ROOT,
      encoding: "utf8",
    }).trim();
    const dirty =
      execFileSync("git", ["status", "--porcelain"], { cwd: REPO_ROOT, encoding: "utf8" }).trim() !== "";
    return dirty ? `${sha}-dirty-${Date.now()}` : sha;
  } catch {
    return `local-${Date.now()}`;
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
