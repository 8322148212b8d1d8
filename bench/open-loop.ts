// An open-loop load generator: requests go out at a fixed rate whatever the answers do, and each
// latency is measured from when the request was due, not from when it went out, so a stall shows
// as the latency it caused (no coordinated omission). Prints one JSON line.
//
//   node bench/open-loop.ts URL RATE SECONDS [CONNECTIONS]
import { Pool } from "undici";

const [url = "", rateArg = "1000", secondsArg = "5", connectionsArg = "64"] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const target = new URL(url);
const pool = new Pool(target.origin, { connections: Number(connectionsArg), pipelining: 1 });
const body =
  '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}';
const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };

const total = Math.round(rate * seconds);
const latencies: number[] = [];
let errors = 0;
let sent = 0;
let done = 0;
const started = performance.now();
const finished = Promise.withResolvers<void>();

function fire(dueAt: number): void {
  pool
    .request({ path: target.pathname, method: "POST", headers, body })
    .then(async (response) => {
      await response.body.dump();
      if (response.statusCode === 200) latencies.push(performance.now() - dueAt);
      else errors++;
    })
    .catch(() => {
      errors++;
    })
    .finally(() => {
      if (++done === total) finished.resolve();
    });
}

const timer = setInterval(() => {
  const elapsed = performance.now() - started;
  const due = Math.min(total, Math.floor((elapsed * rate) / 1000));
  while (sent < due) {
    fire(started + (sent * 1000) / rate);
    sent++;
  }
  if (sent >= total) clearInterval(timer);
}, 1);

await finished.promise;
await pool.close();
latencies.sort((a, b) => a - b);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? Number.NaN;
process.stdout.write(
  `${JSON.stringify({ sent, ok: latencies.length, errors, p50: pct(50), p90: pct(90), p99: pct(99), max: latencies.at(-1) })}\n`,
);
