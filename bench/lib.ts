// Benchmark plumbing: processes, /proc readings, wrk runs, nginx configs. Loopback only.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

// The same free-port probe the tests use (it imports nothing test-only).
export { freePort } from "../test/helpers/net.ts";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
let work: string | undefined;
/**
 * The bench's scratch directory (nginx configs and temp paths, the compile cache, profiles): made on
 * first use, so importing this module has no effect, and removed when the process exits (see
 * stopOnSignals for Ctrl-C).
 */
export function workDir(): string {
  if (work === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "mcp-sidecar-bench-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    work = dir;
  }
  return work;
}
const DEV_NULL = openSync("/dev/null", "w");
const CLOCK_TICKS_PER_SECOND = 100;
const children = new Set<ChildProcess>();

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The allocator settings of the sidecar image (proxy/Dockerfile; a test keeps the two the same). */
export const SIDECAR_MALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";

/** Debian's jemalloc (package libjemalloc2) on this machine, if it is installed. */
export function jemallocPath(): string | undefined {
  const triplet = { x64: "x86_64-linux-gnu", arm64: "aarch64-linux-gnu" }[process.arch as string];
  const path = `/usr/lib/${triplet}/libjemalloc.so.2`;
  return triplet !== undefined && existsSync(path) ? path : undefined;
}

let warnedNoJemalloc = false;

/**
 * The sidecar runs as its image runs it: with Node's compile cache filled before it starts (the
 * image fills it at build time), so a start does not strip and compile every module again, and on
 * jemalloc when the machine has it (apt-get install libjemalloc2), as the image does.
 */
export function sidecarEnv(): Record<string, string> {
  const env: Record<string, string> = { NODE_COMPILE_CACHE: join(workDir(), "node-compile-cache") };
  const jemalloc = jemallocPath();
  if (jemalloc) return { ...env, LD_PRELOAD: jemalloc, MALLOC_CONF: SIDECAR_MALLOC_CONF };
  if (!warnedNoJemalloc)
    process.stderr.write(
      "bench: libjemalloc2 not found (apt-get install libjemalloc2): the sidecar runs on glibc's allocator, not the image's\n",
    );
  warnedNoJemalloc = true;
  return env;
}

/** The Node flags of the sidecar image's ENTRYPOINT (a test keeps the two the same). */
export const SIDECAR_NODE_FLAGS = ["--max-semi-space-size=4", "--heap-growing-percent=100"];

/** Fills the compile cache for the sidecar of the checkout at `root` (this one by default). */
export function fillCompileCache(root = ROOT): void {
  // With the sidecar's flags: V8's flags are part of the cache's key (--heap-growing-percent is).
  execFileSync(process.execPath, [...SIDECAR_NODE_FLAGS, join(root, "proxy/cli.ts"), "--version"], {
    cwd: root,
    env: { ...process.env, ...sidecarEnv() },
    stdio: "ignore",
  });
}

export function has(command: string): boolean {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin"])) {
    try {
      readFileSync(join(dir, command));
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/**
 * CPU pinning on a machine with 2+ CPUs: the proxy under test gets CPU 1 to itself; the load
 * generator and the upstream share CPU 0. Without it, the scheduler moving processes around on a
 * 2-core VM made CPU-per-request readings vary by 2x between identical runs.
 */
export const PIN = cpus().length >= 2 && has("taskset");
export const PROXY_CPU = "1";
export const LOAD_CPU = "0";

/** `command args` run on `cpu` when pinning is on (see PIN). */
export function pinned(cpu: string | undefined, command: string, args: string[]): [string, string[]] {
  return PIN && cpu !== undefined ? ["taskset", ["-c", cpu, command, ...args]] : [command, args];
}

/**
 * Starts a process whose output is discarded (a proxy writing logs costs the same to /dev/null);
 * its stderr is the bench's own, so a child's failure shows.
 */
export function startQuiet(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  cpu?: string,
): ChildProcess {
  const [file, argv] = pinned(cpu, command, args);
  const child = spawn(file, argv, {
    cwd: ROOT,
    stdio: ["ignore", DEV_NULL, "inherit"],
    env: { ...process.env, ...env },
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  // SIGTERM: nginx's master stops its workers (a SIGKILL would orphan them); the rest just exit.
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stop(child)));
}

/** Ctrl-C or SIGTERM: stop every child (nginx, the proxies), then exit, which removes the scratch dir. */
export function stopOnSignals(): void {
  const exitCodes = { SIGINT: 130, SIGTERM: 143 } as const;
  for (const [signal, code] of Object.entries(exitCodes))
    process.once(signal, () => void stopAll().finally(() => process.exit(code)));
}

export async function waitForHttp(url: string, wantStatus = 200, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      if (response.status === wantStatus) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`${url} did not answer ${wantStatus} within ${timeoutMs} ms`);
}

/** The fields of /proc/PID/stat after the command name (which may hold spaces): [11] is utime. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** utime + stime of the processes, in seconds. */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** CPU seconds of the processes `pid` has waited for (exited children, with what they waited for). */
export function reapedChildrenCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_SECOND;
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Runs a load generator to its end and parses the one JSON line it prints on stdout. */
export async function runForJson<T>(file: string, args: readonly string[]): Promise<T> {
  const child = spawn(file, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  const [code] = (await once(child, "exit")) as [number | null];
  try {
    return JSON.parse(output) as T;
  } catch {
    throw new Error(`${args.join(" ")} exited with ${code} and printed no JSON: ${output.slice(0, 200)}`);
  }
}

export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly p50ms: number;
  readonly p99ms: number;
}

let wrkScript: string | undefined;
/** wrk's Lua script: POSTs a tools/call and prints one RESULT line (written on first use). */
function wrkScriptFile(): string {
  if (wrkScript === undefined) {
    wrkScript = join(workDir(), "post.lua");
    writeFileSync(
      wrkScript,
      `wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"us":%d,"errors":%d,"non2xx":%d,"p50":%d,"p99":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
`,
    );
  }
  return wrkScript;
}

export async function wrk(url: string, seconds: number, connections: number): Promise<WrkResult> {
  const [file, args] = pinned(LOAD_CPU, "wrk", [
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "-s",
    wrkScriptFile(),
    url,
  ]);
  const child = spawn(file, args, {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  const [code] = (await once(child, "exit")) as [number];
  const line = output.split("\n").find((l) => l.startsWith("RESULT "));
  if (code !== 0 || !line) throw new Error(`wrk failed (${code}): ${output}`);
  const r = JSON.parse(line.slice(7)) as {
    requests: number;
    us: number;
    errors: number;
    non2xx: number;
    p50: number;
    p99: number;
  };
  const elapsed = r.us / 1e6;
  return {
    requests: r.requests,
    seconds: elapsed,
    rps: r.requests / elapsed,
    errors: r.errors,
    non2xx: r.non2xx,
    p50ms: r.p50 / 1000,
    p99ms: r.p99 / 1000,
  };
}

/** nginx as a keep-alive reverse proxy with buffering off, one worker (like the one Node thread). */
export function nginxProxyConfig(listen: number, upstreamPort: number): string {
  const work = workDir();
  return `worker_processes 1;
pid ${work}/nginx-proxy-${listen}.pid;
error_log /dev/null crit;
events { worker_connections 16384; }
http {
  access_log /dev/null;
  client_body_temp_path ${work}/body-${listen};
  proxy_temp_path ${work}/proxy-${listen};
  fastcgi_temp_path ${work}/fcgi-${listen};
  uwsgi_temp_path ${work}/uwsgi-${listen};
  scgi_temp_path ${work}/scgi-${listen};
  upstream mcp { server 127.0.0.1:${upstreamPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $proxy_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
    }
  }
}
`;
}

/** nginx answering a tools/call POST with a fixed JSON-RPC result: an upstream that costs ~nothing. */
export function nginxUpstreamConfig(listen: number): string {
  const work = workDir();
  return `worker_processes 1;
pid ${work}/nginx-upstream-${listen}.pid;
error_log /dev/null crit;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${work}/ubody-${listen};
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${listen};
    location / {
      default_type application/json;
      return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}';
    }
  }
}
`;
}

export async function startNginx(config: string, name: string, cpu?: string): Promise<ChildProcess> {
  const work = workDir();
  const file = join(work, `${name}.conf`);
  writeFileSync(file, config);
  const child = startQuiet("nginx", ["-p", work, "-c", file, "-g", "daemon off;"], {}, cpu);
  await new Promise((resolve) => setTimeout(resolve, 300));
  if (child.exitCode !== null) throw new Error(`nginx ${name} exited ${child.exitCode}`);
  return child;
}
