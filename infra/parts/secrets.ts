// The task's secrets: the SSRF token the agent and the sidecar share, the clients' API key
// (created with a random value, an existing secret, or none), and the session token key when the
// tasks route sessions.

import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { AuthSetting } from "../plan.ts";

export interface TaskSecrets {
  readonly tokenSecret: aws.secretsmanager.Secret;
  /** Undefined when auth is disabled. */
  readonly apiKeySecretArn: pulumi.Output<string> | undefined;
  /** The session token key's secret, when the tasks route sessions (plan/routing.ts). */
  readonly sessionKeySecretArn: pulumi.Output<string> | undefined;
  /** The secret versions: the tasks must not start before them. */
  readonly prerequisites: pulumi.Resource[];
}

export function createTaskSecrets(
  name: string,
  auth: AuthSetting,
  opts: pulumi.CustomResourceOptions,
  sessionRouting = false,
): TaskSecrets {
  const prerequisites: pulumi.Resource[] = [];
  const randomSecret = (suffix: string, length: number, args: aws.secretsmanager.SecretArgs) => {
    const value = new random.RandomPassword(`${name}-${suffix}`, { length, special: false }, opts);
    const secret = new aws.secretsmanager.Secret(`${name}-${suffix}`, args, opts);
    prerequisites.push(
      new aws.secretsmanager.SecretVersion(
        `${name}-${suffix}`,
        { secretId: secret.id, secretString: value.result },
        opts,
      ),
    );
    return secret;
  };
  const tokenSecret = randomSecret("agent-token", 48, {
    description: "SSRF token shared by the Secrets Manager Agent and mcp-sidecar in one task",
    recoveryWindowInDays: 0,
  });
  let apiKeySecretArn: pulumi.Output<string> | undefined;
  if (auth.mode === "create") {
    apiKeySecretArn = randomSecret("api-key", 40, {
      description:
        "Clients of this MCP service send it as Authorization: Bearer <value>; rotate it and the running tasks follow",
    }).arn;
  } else if (auth.mode === "existing") {
    apiKeySecretArn = pulumi.output(auth.secretArn);
  }
  // Every task seals and opens session tokens with it (HKDF-SHA256 of the value): 64 random
  // characters. Rotating it loses no session: the sidecars accept AWSCURRENT and AWSPREVIOUS.
  const sessionKeySecretArn = sessionRouting
    ? randomSecret("session-key", 64, {
        description:
          "mcp-sidecar session token key: the tasks seal and open each other's session tokens with it",
        recoveryWindowInDays: 0,
      }).arn
    : undefined;
  return { tokenSecret, apiKeySecretArn, sessionKeySecretArn, prerequisites };
}

/**
 * The command that prints the API key (never a stack output itself). It names the stack's region:
 * the CLI would otherwise look in the caller's default region, where the secret is not.
 */
export function readApiKeyCommand(
  apiKeySecretArn: pulumi.Output<string> | undefined,
  opts: pulumi.InvokeOutputOptions,
): pulumi.Output<string | undefined> {
  if (!apiKeySecretArn) return pulumi.output(undefined);
  const region = aws.getRegionOutput({}, opts).region;
  return pulumi.interpolate`aws secretsmanager get-secret-value --region ${region} --secret-id ${apiKeySecretArn} --query SecretString --output text`;
}
