#!/usr/bin/env node
// Entry point of the `mcp-sidecar` command. In a checkout it runs the TypeScript source through
// Node's type stripping (Node >= 22.18); installed from npm it runs the JavaScript that `prepack`
// compiled into dist/, because Node does not strip types under node_modules.
//
//   mcp-sidecar [--upstream URL ...]         the sidecar (proxy/cli.ts)
//   mcp-sidecar healthcheck [--url URL]      its container health check (proxy/cli.ts)
//   mcp-sidecar agent-emulator ...           the Secrets Manager Agent emulator (agent/emulator/):
//                                            a dev tool, dispatched here so that the product's
//                                            modules never import it
//
// Node's compile cache (in the OS temp dir, or NODE_COMPILE_CACHE): from the second start on, modules
// load already stripped and compiled, which is most of the start-up time.
import { enableCompileCache } from "node:module";

enableCompileCache();
const compiled = import.meta.url.includes("/node_modules/");
if (process.argv[2] === "agent-emulator") {
  const { agentEmulatorMain } = await import(
    compiled ? "../dist/agent/emulator/cli.js" : "../agent/emulator/cli.ts"
  );
  process.exit(await agentEmulatorMain(process.argv.slice(3)));
}
await import(compiled ? "../dist/proxy/cli.js" : "../proxy/cli.ts");
