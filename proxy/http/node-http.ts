// node:http as the CommonJS module, not an ESM import: the ESM facade of node:http reads every
// export, and its WebSocket/MessageEvent getters load Node's internal undici (fetch and all). That
// was about 90 ms and 14 MB of the sidecar's start (start to ready, idle RSS; bench/run.ts).
// test/startup-footprint.test.ts checks that the proxy never loads it.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const http: typeof import("node:http") = require("node:http");

export const { createServer, STATUS_CODES } = http;
