// The memory scenario's load: hostile-plus-normal traffic, N requests at concurrency C, as a client
// process of its own (so its memory is not the sidecar's). Of every 20 requests: 13 small tools/call
// POSTs, 2 uploads of 512 KiB, and one each of a body declared over --max-body-size (413), a header
// over --max-header-size (431), an absolute-form target (400), an event stream dropped as soon as it
// opens, and an upload stalled mid-body then dropped. Prints {"requests","seconds","errors"}.
//
//   node bench/hostile-load.ts URL N C

import { connect } from "node:net";
import { Agent, request } from "undici";

const [url, total = "100000", concurrency = "50"] = process.argv.slice(2);
if (!url) {
  process.stderr.write("usage: node bench/hostile-load.ts URL N C\n");
  process.exit(2);
}
const target = new URL(url);
const N = Number(total);
const C = Number(concurrency);
const agent = new Agent({ connections: C * 2, keepAliveTimeout: 2000 });
const small = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "tools/call",
  params: { name: "echo", arguments: { message: "x".repeat(200) } },
});
const upload = Buffer.alloc(512 * 1024, 120);

/** Writes `text` on a connection of its own and waits for the server to end it. */
function raw(text: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect(Number(target.port), target.hostname);
    socket.on("error", () => resolve());
    socket.on("close", () => resolve());
    socket.on("data", () => {});
    socket.end(text);
  });
}

async function post(body: string | Buffer): Promise<void> {
  const response = await request(new URL("/mcp", target), {
    dispatcher: agent,
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body,
  });
  await response.body.dump();
}

async function one(n: number): Promise<void> {
  const kind = n % 20;
  if (kind < 13) return post(small);
  if (kind < 15) return post(upload);
  if (kind === 15) return raw("POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n");
  if (kind === 16) return raw(`GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`);
  if (kind === 17) return raw("GET http://elsewhere.example/x HTTP/1.1\r\nHost: x\r\n\r\n");
  if (kind === 18) {
    const abort = new AbortController();
    const response = await request(new URL("/sse", target), {
      dispatcher: agent,
      headers: { accept: "text/event-stream" },
      signal: abort.signal,
    });
    response.body.on("error", () => {});
    abort.abort();
    return;
  }
  return raw('POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"jsonrpc":');
}

let next = 0;
let errors = 0;
const started = performance.now();
await Promise.all(
  Array.from({ length: C }, async () => {
    while (next < N) {
      try {
        await one(next++);
      } catch {
        errors++;
      }
    }
  }),
);
await agent.close();
process.stdout.write(
  `${JSON.stringify({ requests: N, seconds: (performance.now() - started) / 1000, errors })}\n`,
);
