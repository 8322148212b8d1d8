// The CrossGuard policy pack: `pulumi preview --policy-pack infra/policy` (the PR workflow runs it).
// Constructing a PolicyPack starts its gRPC server, so the rules live in rules.ts, where the tests
// reach them without starting anything.
import { PolicyPack } from "@pulumi/policy";
import { ALL_POLICIES } from "./rules.ts";

new PolicyPack("mcp-sidecar", { policies: [...ALL_POLICIES] });
