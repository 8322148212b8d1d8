// The README is part of the interface: every flag and every error code a user can meet is there.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { envName, OPTIONS } from "../proxy/config.ts";
import { SIDECAR_ERRORS } from "../proxy/errors.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

/** Table rows whose first cell is `first`, as trimmed cells. */
function rows(first: string): string[][] {
  return readme
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .map((line) =>
      line
        .split("|")
        .slice(1, -1)
        .map((cell) => cell.trim()),
    )
    .filter((cells) => cells[0] === first);
}

describe("README", () => {
  it("starts with the two commands: install + local stack, and the tests", () => {
    const firstBlock = readme.split("```")[1] ?? "";
    expect(firstBlock).toContain("npm ci && npm start");
    expect(firstBlock).toContain("npm test");
  });

  it("documents every option with its env var and default", () => {
    for (const option of OPTIONS) {
      const found = rows(`\`--${option.flag}\``);
      expect(found, `README row for --${option.flag}`).toHaveLength(1);
      expect(found[0]?.[1]).toBe(`\`${envName(option.flag)}\``);
      if (option.default !== undefined) expect(found[0]?.[2]).toContain(`\`${option.default}\``);
    }
  });

  it("documents every error code once; codes and statuses are unique per code", () => {
    const codes = Object.values(SIDECAR_ERRORS).map((spec) => spec.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const spec of Object.values(SIDECAR_ERRORS)) {
      const found = rows(`\`${spec.code}\``);
      expect(found, spec.code).toHaveLength(1);
      expect(found[0]?.[1]).toBe(String(spec.status));
    }
  });
});
