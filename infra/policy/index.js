// The CrossGuard policy pack: `pulumi preview --policy-pack infra/policy` (the workflows run it).
//
// Plain JavaScript on purpose: Pulumi's policy runner (@pulumi/pulumi/cmd/run-policy-pack) always
// registers ts-node and `require`s this directory, and ts-node refuses the `.ts` import paths this
// project uses. package.json here makes this file the entry and an ES module, which Node 24 loads
// through require(esm); its import of rules.ts is then type-stripped by Node itself.
//
// Constructing a PolicyPack starts its gRPC server, so the rules live in rules.ts, where the tests
// reach them without starting anything.
import { PolicyPack } from "@pulumi/policy";
import { ALL_POLICIES } from "./rules.ts";

new PolicyPack("mcp-sidecar", { policies: [...ALL_POLICIES] });
