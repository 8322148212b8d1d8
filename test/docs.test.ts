// The README and docs/ are part of the interface: every flag is in the README's option table, every
// error code a user can meet in docs/forwarding.md, and every link between the pages resolves.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { envName, OPTIONS } from "../proxy/config.ts";
import { SIDECAR_ERRORS } from "../proxy/errors.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const DOCS = new URL("../docs/", import.meta.url);
const pages = readdirSync(DOCS).filter((name) => name.endsWith(".md"));
const forwarding = readFileSync(new URL("forwarding.md", DOCS), "utf8");

/** Table rows whose first cell is `first`, as trimmed cells. */
function rows(first: string, text = readme): string[][] {
  return text
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
      const found = rows(`\`${spec.code}\``, forwarding);
      expect(found, spec.code).toHaveLength(1);
      expect(found[0]?.[1]).toBe(String(spec.status));
    }
  });

  it("keeps to what a user needs first, with every other topic one link away, and no dead link", () => {
    expect(readme.split("\n").length).toBeLessThan(250);
    for (const page of pages) expect(readme, page).toContain(`(docs/${page})`);
    for (const [file, text] of [
      ["README.md", readme],
      ...pages.map((p) => [`docs/${p}`, readFileSync(new URL(p, DOCS), "utf8")]),
    ] as const) {
      const base = new URL(file.startsWith("docs/") ? "../docs/" : "../", import.meta.url);
      for (const match of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = match[1] as string;
        if (/^[a-z]+:/.test(target)) continue;
        expect(existsSync(new URL(target, base)), `${file} links to ${target}`).toBe(true);
      }
      // An in-page link names a heading of that page (GitHub's slugs).
      const slugs = new Set(
        [...text.matchAll(/^#+ (.+)$/gm)].map((m) =>
          (m[1] as string)
            .toLowerCase()
            .replace(/[^\w\s-]/g, "")
            .replace(/\s/g, "-"),
        ),
      );
      for (const match of text.matchAll(/\]\(#([^)]+)\)/g))
        expect(slugs.has(match[1] as string), `${file} links to #${match[1]}`).toBe(true);
    }
  });
});
