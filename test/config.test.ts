import { describe, expect, it } from "vitest";
import {
  defaultLabel,
  envName,
  helpText,
  OPTIONS,
  parseConfig,
  parseDuration,
  parseSize,
} from "../proxy/config.ts";

const UPSTREAM = ["--upstream", "http://127.0.0.1:3000"];

function config(argv: string[], env: Record<string, string> = {}) {
  const result = parseConfig(argv, env);
  if (result.kind !== "config") throw new Error(JSON.stringify(result));
  return result.config;
}

function errors(argv: string[], env: Record<string, string> = {}) {
  const result = parseConfig(argv, env);
  if (result.kind !== "errors") throw new Error(`expected errors, got ${result.kind}`);
  return result.errors;
}

describe("parseConfig", () => {
  it("applies the documented defaults", () => {
    const c = config(UPSTREAM);
    expect(c.upstream?.origin).toBe("http://127.0.0.1:3000");
    expect(c.port).toBe(8080);
    expect(c.host).toBe("0.0.0.0");
    expect(c.sseKeepaliveMs).toBe(15_000);
    expect(c.maxBodyBytes).toBe(4 * 1024 * 1024);
    expect(c.drainTimeoutMs).toBe(25_000);
    expect(c.drainDelayMs).toBe(0);
    expect(c.readyProbe).toBe("mcp");
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("reads every option from its environment variable, and flags win over env", () => {
    const c = config(["--port", "9000"], {
      MCP_SIDECAR_UPSTREAM: "http://server:3000",
      MCP_SIDECAR_PORT: "7000",
      MCP_SIDECAR_SSE_KEEPALIVE: "0",
      MCP_SIDECAR_MAX_BODY_SIZE: "64KiB",
    });
    expect(c.upstream?.host).toBe("server:3000");
    expect(c.port).toBe(9000);
    expect(c.sseKeepaliveMs).toBe(0);
    expect(c.maxBodyBytes).toBe(65_536);
  });

  it("accepts --name=value", () => {
    expect(config([...UPSTREAM, "--drain-timeout=40s"]).drainTimeoutMs).toBe(40_000);
  });

  it("reports every problem at once, each naming its flag and env var", () => {
    const list = errors([
      "--upstream",
      "ftp://x",
      "--port",
      "99999",
      "--sse-keepalive",
      "soon",
      "--bogus",
      "1",
      "--log-level",
    ]);
    expect(list).toEqual(
      expect.arrayContaining([
        expect.stringContaining("unknown option --bogus"),
        expect.stringContaining("--log-level needs a value"),
        expect.stringMatching(/--upstream \(MCP_SIDECAR_UPSTREAM\).*http: or https:/),
        expect.stringMatching(/--port \(MCP_SIDECAR_PORT\).*out of range/),
        expect.stringMatching(/--sse-keepalive \(MCP_SIDECAR_SSE_KEEPALIVE\).*not a duration/),
      ]),
    );
    expect(list).toHaveLength(5);
  });

  it("names the env var when the bad value came from the environment", () => {
    expect(errors([], { MCP_SIDECAR_UPSTREAM: "http://x:1", MCP_SIDECAR_MAX_BODY_SIZE: "lots" })).toEqual([
      expect.stringMatching(/^MCP_SIDECAR_MAX_BODY_SIZE: "lots" is not a size/),
    ]);
  });

  it("requires --upstream", () => {
    expect(errors([])).toEqual([expect.stringContaining("--upstream (or MCP_SIDECAR_UPSTREAM) is required")]);
  });

  it.each([
    ["http://127.0.0.1:3000/mcp", "origin only"],
    ["http://u:p@127.0.0.1:3000", "credentials"],
    ["not a url", "not a URL"],
  ])("rejects upstream %s", (upstream, message) => {
    expect(errors(["--upstream", upstream])[0]).toContain(message);
  });

  it("rejects an upstream that is the sidecar itself", () => {
    expect(errors(["--upstream", "http://127.0.0.1:8080"])[0]).toContain("requests would loop");
  });

  it("rejects a drain delay that does not fit in the drain timeout", () => {
    expect(errors([...UPSTREAM, "--drain-delay", "30s"])[0]).toContain("--drain-delay");
  });

  it("rejects equal health and ready paths, and paths that are not paths", () => {
    expect(errors([...UPSTREAM, "--ready-path", "/health"])[0]).toContain("must differ");
    expect(errors([...UPSTREAM, "--health-path", "health"])[0]).toContain("must start with /");
  });

  it("rejects a repeated flag", () => {
    expect(errors([...UPSTREAM, "--port", "1", "--port", "2"])[0]).toContain("more than once");
  });

  it("returns help for --help", () => {
    expect(parseConfig(["--help"], {}).kind).toBe("help");
  });
});

describe("secret options", () => {
  it("parse deliveries, repeatable flags, and comma-separated env lists", () => {
    const c = config(
      [
        ...UPSTREAM,
        "--auth-secret",
        "mcp/api-key",
        "--inject-header",
        "X-A=mcp/a",
        "--inject-header",
        "X-B=mcp/b#k",
      ],
      {
        MCP_SIDECAR_SECRET_FILE: "/run/a=mcp/a, /run/b=mcp/b#k",
      },
    );
    expect(c.authSecret).toEqual({ secretId: "mcp/api-key", jsonKey: undefined, label: "mcp/api-key" });
    expect(c.injectHeaders.map((d) => d.header)).toEqual(["X-A", "X-B"]);
    expect(c.secretFiles.map((d) => [d.path, d.ref.jsonKey])).toEqual([
      ["/run/a", undefined],
      ["/run/b", "k"],
    ]);
    expect(c.secretsAgent.origin).toBe("http://127.0.0.1:2773");
    expect(c.refreshIntervalMs).toBe(30_000);
    expect(config(UPSTREAM).injectHeaders).toEqual([]);
    expect(config(UPSTREAM).authSecret).toBeUndefined();
  });

  it("names each bad delivery and a non-loopback agent", () => {
    const list = errors([
      ...UPSTREAM,
      "--inject-header",
      "Host=mcp/x",
      "--inject-header",
      "X-A=mcp/a",
      "--inject-header",
      "x-a=mcp/b",
      "--secret-file",
      "relative=mcp/x",
      "--auth-secret",
      "not valid",
      "--secrets-agent",
      "http://localhost:2773",
    ]);
    expect(list).toEqual([
      expect.stringMatching(/^--secrets-agent .*use 127\.0\.0\.1, not localhost/),
      expect.stringMatching(/^--auth-secret .*not a secret name/),
      expect.stringMatching(/^--inject-header .*managed by HTTP/),
      expect.stringMatching(/^--secret-file .*not an absolute path/),
    ]);
    expect(errors([...UPSTREAM, "--inject-header", "X-A=mcp/a", "--inject-header", "x-a=mcp/b"])).toEqual([
      "--inject-header: x-a is given more than once",
    ]);
    expect(errors([...UPSTREAM, "--secrets-agent", "http://10.0.0.5:2773"])[0]).toContain(
      "only accepts loopback",
    );
  });
});

describe("helpText", () => {
  it("documents every option with its env var and default", () => {
    const help = helpText();
    for (const option of OPTIONS) {
      expect(help).toContain(`--${option.flag} ${option.valueName}`);
      expect(help).toContain(`env ${envName(option.flag)}; default: ${defaultLabel(option)}`);
    }
  });

  it("has defaults that parse", () => {
    for (const option of OPTIONS)
      if (option.default !== undefined) expect(() => option.parse(option.default as string)).not.toThrow();
  });
});

describe("value parsers", () => {
  it.each([
    ["500ms", 500],
    ["15s", 15_000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["30", 30_000],
    ["0", 0],
    ["1.5s", 1500],
  ])("duration %s = %d ms", (raw, ms) => expect(parseDuration(raw)).toBe(ms));

  it.each(["", "-1s", "5 minutes", "1d", "s"])("duration %j is rejected", (raw) =>
    expect(() => parseDuration(raw)).toThrow(),
  );

  it.each([
    ["65536", 65_536],
    ["64KiB", 65_536],
    ["4MiB", 4_194_304],
    ["1MB", 1_000_000],
    ["16k", 16_384],
  ])("size %s = %d bytes", (raw, bytes) => expect(parseSize(raw)).toBe(bytes));

  it.each(["0", "4XB", "-1", "1.5MiB", ""])("size %j is rejected", (raw) =>
    expect(() => parseSize(raw)).toThrow(),
  );
});

describe("a stdio server (--stdio)", () => {
  it("splits the command line with no shell: quotes and backslashes, and nothing else", () => {
    expect(
      config(["--stdio", `node server.js --name 'my server' "a \\"b\\"" c\\ d`]).stdioCommandLine,
    ).toEqual(["node", "server.js", "--name", "my server", 'a "b"', "c d"]);
    // Shell syntax is only characters of an argument: nothing runs but the command.
    expect(config(["--stdio", "srv; rm -rf / | cat $(id) &&"]).stdioCommandLine).toEqual([
      "srv;",
      "rm",
      "-rf",
      "/",
      "|",
      "cat",
      "$(id)",
      "&&",
    ]);
    expect(
      config(["--stdio-command", "/opt/my server", "--stdio-arg", "a b", "--stdio-arg", "c"])
        .stdioCommandLine,
    ).toEqual(["/opt/my server", "a b", "c"]);
    expect(errors(["--stdio", "node 'unclosed"])[0]).toMatch(
      /--stdio \(MCP_SIDECAR_STDIO\).*unclosed ' quote/,
    );
    expect(errors(["--stdio", "   "])[0]).toContain("is empty");
  });

  it("takes exactly one server to front, and the stdio flags only with --stdio", () => {
    expect(config(["--stdio", "srv"]).upstream).toBeUndefined();
    expect(errors(["--stdio", "srv", "--upstream", "http://127.0.0.1:3000"])).toEqual([
      "--upstream and --stdio are both set: the sidecar fronts one server",
    ]);
    expect(errors(["--stdio", "a", "--stdio-command", "b"])[0]).toContain(
      "--stdio and --stdio-command are both set",
    );
    expect(errors([...UPSTREAM, "--stdio-env", "X=1", "--secret-env", "K=mcp/k"])).toEqual([
      "--stdio-env is for a stdio server: set --stdio too",
      "--secret-env is for a stdio server: set --stdio too",
    ]);
    expect(errors(["--stdio", "srv", "--stdio-arg", "x"])[0]).toContain("--stdio-arg needs --stdio-command");
  });

  it("gives the children PATH, HOME, LANG, TZ and what --stdio-env names, never the sidecar's own variables", () => {
    const env = {
      PATH: "/usr/bin",
      HOME: "/home/u",
      LANG: "C.UTF-8",
      SHELL: "/bin/bash",
      NODE_EXTRA_CA_CERTS: "/ca.pem",
      AWS_TOKEN: "s3cr3t-token",
    };
    const c = config(
      ["--stdio", "srv", "--stdio-env", "NODE_EXTRA_CA_CERTS", "--stdio-env", "MODE=test"],
      env,
    );
    expect(c.stdioBaseEnv).toEqual({
      PATH: "/usr/bin",
      HOME: "/home/u",
      LANG: "C.UTF-8",
      NODE_EXTRA_CA_CERTS: "/ca.pem",
    });
    expect(c.stdioEnv).toEqual([
      { name: "NODE_EXTRA_CA_CERTS", value: undefined },
      { name: "MODE", value: "test" },
    ]);
    expect(errors(["--stdio", "srv", "--stdio-env", "MISSING"], env)[0]).toContain(
      "--stdio-env MISSING: MISSING is not set in the sidecar's environment",
    );
    for (const own of ["AWS_TOKEN", "MCP_SIDECAR_AUTH_SECRET", "AWS_CONTAINER_AUTHORIZATION_TOKEN"])
      expect(errors(["--stdio", "srv", "--stdio-env", `${own}=x`], env)[0]).toContain(
        "never given to a child",
      );
    expect(errors(["--stdio", "srv", "--stdio-env", "K=1", "--secret-env", "K=mcp/k"], env)[0]).toContain(
      "K is given more than once",
    );
    expect(errors(["--stdio", "srv", "--stdio-env", "1BAD=x"])[0]).toContain(
      "is not an environment variable name",
    );
    expect(config(["--stdio", "srv", "--secret-env", "API_KEY=mcp/upstream#key"]).secretEnv).toEqual([
      { name: "API_KEY", ref: { secretId: "mcp/upstream", jsonKey: "key", label: "mcp/upstream#key" } },
    ]);
  });
});
