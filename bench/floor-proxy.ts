// The floor of any Node proxy, for the bench's overhead scenario: how close to nginx Node itself
// can go, and so what stands in the way. It moves bytes between keep-alive sockets and reads only
// what it must to find where a message ends: no HTTP library, no header rewriting, Content-Length
// framing only. Not a proxy anyone should run: it exists to measure what Node's event loop and
// sockets cost by themselves, so the cost of node:http, undici and the sidecar shows apart.
//
//   node bench/floor-proxy.ts <upstream origin> <port>
import { connect, createServer, type Socket } from "node:net";

const [upstream, port] = process.argv.slice(2);
if (!upstream || !port) {
  process.stderr.write("usage: node bench/floor-proxy.ts <upstream origin> <port>\n");
  process.exit(2);
}
const { hostname, port: upstreamPort } = new URL(upstream);
const HEALTH = Buffer.from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
const idle: Socket[] = [];

/**
 * The length of the complete message at the start of `data` (head + Content-Length body), -1 while
 * it is incomplete. Throws for a body framed any other way (chunked, or a response ended by close):
 * this proxy cannot find its end, and a wrong guess would hand the next exchange stale bytes.
 */
function messageLength(data: Buffer, response: boolean): number {
  const headEnd = data.indexOf("\r\n\r\n");
  if (headEnd < 0) return -1;
  const head = data.toString("latin1", 0, headEnd);
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  // Without Content-Length only a request, or a 1xx/204/304 response, is known to have no body.
  if (
    !length &&
    (/\r\ntransfer-encoding:/i.test(head) || (response && !/^HTTP\/1\.[01] (1\d\d|204|304) /.test(head)))
  )
    throw new Error("floor-proxy: only Content-Length framing is supported");
  const total = headEnd + 4 + Number(length?.[1] ?? 0);
  return data.length >= total ? total : -1;
}

/** messageLength, or undefined (after saying why on stderr) for a message this proxy cannot frame. */
function framed(data: Buffer, response: boolean): number | undefined {
  try {
    return messageLength(data, response);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return undefined;
  }
}

function upstreamSocket(): Socket {
  const reused = idle.pop();
  if (reused) return reused;
  const socket = connect(Number(upstreamPort), hostname.replace(/^\[|\]$/g, "")).setNoDelay(true);
  socket.on("error", () => socket.destroy());
  socket.on("close", () => {
    const at = idle.indexOf(socket);
    if (at >= 0) idle.splice(at, 1);
  });
  return socket;
}

/** One request at a time per client connection, as wrk sends them (no pipelining). */
function exchange(client: Socket, request: Buffer): void {
  const socket = upstreamSocket();
  let answer: Buffer | undefined;
  // An upstream that fails mid-exchange fails the client too, rather than leaving it waiting.
  const onClose = () => client.destroy();
  const onData = (chunk: Buffer) => {
    answer = answer ? Buffer.concat([answer, chunk]) : chunk;
    const length = framed(answer, true);
    if (length === undefined) socket.destroy();
    if (length === undefined || length < 0) return;
    socket.off("data", onData).off("close", onClose);
    idle.push(socket);
    client.write(answer);
  };
  socket.on("data", onData).on("close", onClose);
  socket.write(request);
}

createServer((client) => {
  client.setNoDelay(true);
  let pending: Buffer | undefined;
  client.on("data", (chunk: Buffer) => {
    pending = pending ? Buffer.concat([pending, chunk]) : chunk;
    const length = framed(pending, false);
    if (length === undefined) client.destroy();
    if (length === undefined || length < 0) return;
    const request = pending.subarray(0, length);
    pending = undefined;
    if (request.toString("latin1", 0, 11) === "GET /health") client.write(HEALTH);
    else exchange(client, request);
  });
  client.on("error", () => client.destroy());
}).listen(Number(port), "127.0.0.1");
