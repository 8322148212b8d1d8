// Runs one policy pack rule on one resource's properties, as the analyzer would, and returns the
// violations it reports.
import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";

export function check(
  policy: ResourceValidationPolicy,
  type: string,
  props: Record<string, unknown>,
): string[] {
  const violations: string[] = [];
  const report: ReportViolation = (message: string) => {
    violations.push(message);
  };
  const args = {
    type,
    props,
    urn: `urn:pulumi:dev::mcp-sidecar::${type}::test`,
    name: "test",
    opts: {},
  } as unknown as ResourceValidationArgs;
  const validate = policy.validateResource;
  for (const fn of Array.isArray(validate) ? validate : [validate]) if (fn) void fn(args, report);
  return violations;
}
