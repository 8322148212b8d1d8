// The task's IAM documents: the task role reads exactly the secrets the task serves, the execution
// role exactly the SSRF token. Pure; the policy pack refuses a wildcard on either.

import { PlanError } from "../plan.ts";

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: { Sid: string; Effect: "Allow"; Action: string[]; Resource: string[] }[];
}

/** The task role (the agent's AWS identity): exactly the secrets it serves, and their KMS key. */
export function taskRolePolicy(secretArns: readonly string[], kmsKeyArn?: string): PolicyDocument {
  const unique = [...new Set(secretArns)].sort();
  if (unique.length === 0) throw new PlanError(["the task role needs at least one secret ARN"]);
  const problems = unique
    .filter((arn) => arn.includes("*") || !arn.startsWith("arn:"))
    .map((arn) => `secret ${arn} is not an exact ARN`);
  if (kmsKeyArn !== undefined && (kmsKeyArn.includes("*") || !kmsKeyArn.startsWith("arn:")))
    problems.push(`kmsKeyArn ${kmsKeyArn} is not an exact ARN`);
  if (problems.length > 0) throw new PlanError(problems);
  const statements: PolicyDocument["Statement"] = [
    {
      Sid: "ReadServedSecrets",
      Effect: "Allow",
      Action: ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
      Resource: unique,
    },
  ];
  if (kmsKeyArn)
    statements.push({
      Sid: "DecryptServedSecrets",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: [kmsKeyArn],
    });
  return { Version: "2012-10-17", Statement: statements };
}

/** The execution role reads the SSRF token (injected at container start through `secrets`). */
export function executionRoleSecretsPolicy(tokenSecretArn: string): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "InjectAgentToken",
        Effect: "Allow",
        Action: ["secretsmanager:GetSecretValue"],
        Resource: [tokenSecretArn],
      },
    ],
  };
}
