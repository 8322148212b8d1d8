#!/usr/bin/env node
// Entry point of the `mcp-sidecar` command. In a checkout it runs the TypeScript source through
// Node's type stripping (Node >= 22.18); installed from npm it runs the JavaScript that `prepack`
// compiled into dist/, because Node does not strip types under node_modules.
//
// Node's compile cache (in the OS temp dir, or NODE_COMPILE_CACHE): from the second start on, modules
// load already stripped and compiled, which is most of the start-up time.
import { enableCompileCache } from "node:module";

enableCompileCache();
const underNodeModules = import.meta.url.includes("/node_modules/");
await import(underNodeModules ? "../dist/proxy/cli.js" : "../proxy/cli.ts");
