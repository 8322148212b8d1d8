// A reference point: a naive node:http + undici proxy, about as short as one can
// be (no health, metrics, logs, drain or limits). The bench runs it beside the sidecar and nginx, so
// what the sidecar's features cost and what Node + undici cost by themselves show apart.
//
//   node bench/naive-proxy.ts <upstream origin> <port>
import { createServer } from "node:http";
import { Pool } from "undici";

const [upstream, port] = process.argv.slice(2);
if (!upstream || !port) {
  process.stderr.write("usage: node bench/naive-proxy.ts <upstream origin> <port>\n");
  process.exit(2);
}
const pool = new Pool(upstream, { pipelining: 1 });
createServer(async (req, res) => {
  if (req.url === "/health") {
    res.end("ok");
    return;
  }
  try {
    const { host: _host, connection: _connection, ...headers } = req.headers;
    const answer = await pool.request({
      path: req.url ?? "/",
      method: req.method as "POST",
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? null : req,
    });
    res.writeHead(answer.statusCode, answer.headers as Record<string, string>);
    answer.body.pipe(res);
  } catch {
    res.writeHead(502).end();
  }
}).listen(Number(port), "127.0.0.1");
