#!/usr/bin/env node
// Entry point of the `mcp-sidecar` command. In a checkout it runs the TypeScript source through
// Node's type stripping (Node >= 22.18); installed from npm it runs the JavaScript that `prepack`
// compiled into dist/, because Node does not strip types under node_modules.
const underNodeModules = import.meta.url.includes("/node_modules/");
await import(underNodeModules ? "../dist/proxy/cli.js" : "../proxy/cli.ts");
