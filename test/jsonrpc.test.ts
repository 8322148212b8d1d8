import { describe, expect, it } from "vitest";
import {
  decodeMcpHeaderValue,
  describeJsonRpc,
  SIDECAR_JSONRPC_ERROR_CODE,
  sidecarErrorBody,
} from "../proxy/protocol/jsonrpc.ts";

describe("describeJsonRpc", () => {
  it("reads a tools/call request", () => {
    const info = describeJsonRpc(
      Buffer.from(
        JSON.stringify({
          jsonrpc: "2.0",
          id: 7,
          method: "tools/call",
          params: { name: "slow", arguments: {} },
        }),
      ),
    );
    expect(info).toEqual({ ids: [7], method: "tools/call", name: "slow", hasRequest: true, batch: false });
  });

  it("names resources/read by uri and keeps string ids", () => {
    const info = describeJsonRpc(
      JSON.stringify({ jsonrpc: "2.0", id: "a", method: "resources/read", params: { uri: "file:///x" } }),
    );
    expect(info?.name).toBe("file:///x");
    expect(info?.ids).toEqual(["a"]);
  });

  it("sees a notification as no request", () => {
    const info = describeJsonRpc(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
    expect(info).toMatchObject({ ids: [], method: "notifications/initialized", hasRequest: false });
  });

  it("reads a batch", () => {
    const info = describeJsonRpc(
      JSON.stringify([
        { jsonrpc: "2.0", id: 1, method: "ping" },
        { jsonrpc: "2.0", method: "notifications/x" },
        { jsonrpc: "2.0", id: 2, method: "tools/list" },
      ]),
    );
    expect(info).toMatchObject({ ids: [1, 2], method: "ping", batch: true });
  });

  it.each(["", "not json", "{}", '{"jsonrpc":"1.0","id":1,"method":"x"}', "[1,2]", "null"])(
    "is undefined for %j",
    (body) => {
      expect(describeJsonRpc(body)).toBeUndefined();
    },
  );
});

describe("sidecarErrorBody", () => {
  const data = { code: "MCP_SIDECAR_UPSTREAM_UNREACHABLE", status: 502 };

  it("answers a JSON-RPC request with a JSON-RPC error carrying its id", () => {
    const body = JSON.parse(
      sidecarErrorBody(describeJsonRpc('{"jsonrpc":"2.0","id":42,"method":"tools/call"}'), data, "down"),
    );
    expect(body).toEqual({
      jsonrpc: "2.0",
      id: 42,
      error: { code: SIDECAR_JSONRPC_ERROR_CODE, message: "down", data },
    });
  });

  it("answers a batch with an array", () => {
    const info = describeJsonRpc(
      '[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"b","method":"c"}]',
    );
    const body = JSON.parse(sidecarErrorBody(info, data, "down")) as { id: unknown }[];
    expect(body.map((item) => item.id)).toEqual([1, "b"]);
  });

  it("answers anything else with a plain JSON error", () => {
    expect(JSON.parse(sidecarErrorBody(undefined, data, "down"))).toEqual({
      error: { ...data, message: "down" },
    });
    const notification = describeJsonRpc('{"jsonrpc":"2.0","method":"notifications/x"}');
    expect(JSON.parse(sidecarErrorBody(notification, data, "down"))).toHaveProperty("error.code", data.code);
  });
});

describe("decodeMcpHeaderValue", () => {
  it("passes ASCII values and decodes the base64 form", () => {
    expect(decodeMcpHeaderValue("tools/call")).toBe("tools/call");
    expect(decodeMcpHeaderValue(`=?base64?${Buffer.from("outil-été").toString("base64")}?=`)).toBe(
      "outil-été",
    );
    expect(decodeMcpHeaderValue(undefined)).toBeUndefined();
  });
});
