// The emulator's secrets file (JSON or YAML): parsed and validated with every problem reported at
// once, and serialised for the state file a rotation writes (secrets-source.ts). Two forms per
// secret:
//
//   secrets:
//     mcp/api-key: "a value"              # one version, AWSCURRENT
//     mcp/db:
//       arn: arn:aws:secretsmanager:...   # optional
//       versions:
//         - string: '{"password":"old"}'  # or binary: <base64>
//           stages: [AWSPREVIOUS]
//           id: 3f0c...                   # optional: derived from name and value when absent
//           created: 2026-11-01T10:00:00Z # optional
//         - string: '{"password":"new"}'
//           stages: [AWSCURRENT]

import { createHash } from "node:crypto";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { AWSCURRENT, type SecretVersion, type StoredSecret } from "./backend.ts";

export class SecretsFileError extends Error {
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[]) {
    super(`${file}: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.problems = problems;
  }
}

const NAME_PATTERN = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

/** A UUID-shaped id derived from the content, so reloading an unchanged file changes nothing. */
function derivedId(...parts: string[]): string {
  const hex = createHash("sha256").update(parts.join("\u0000")).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function defaultArn(name: string): string {
  const suffix = createHash("sha256").update(name).digest("base64url").replace(/[-_]/g, "x").slice(0, 6);
  return `arn:aws:secretsmanager:us-east-1:000000000000:secret:${name}-${suffix}`;
}

function parseCreated(raw: unknown, where: string, problems: string[]): number | undefined {
  if (raw === undefined) return undefined;
  const ms =
    raw instanceof Date ? raw.getTime() : typeof raw === "number" ? raw * 1000 : Date.parse(String(raw));
  if (!Number.isFinite(ms)) {
    problems.push(`${where}.created: "${String(raw)}" is not a date (ISO 8601) or epoch seconds`);
    return undefined;
  }
  return ms;
}

export function parseSecretsDocument(
  document: unknown,
  file = "secrets file",
  loadedMs = Date.now(),
): StoredSecret[] {
  const problems: string[] = [];
  const root = (document as { secrets?: unknown } | null)?.secrets;
  if (typeof root !== "object" || root === null || Array.isArray(root)) {
    throw new SecretsFileError(file, [
      'the top level must be "secrets:" mapping each secret name to a value or to {arn, versions}',
    ]);
  }
  const secrets: StoredSecret[] = [];
  for (const [name, spec] of Object.entries(root as Record<string, unknown>)) {
    const where = `secrets["${name}"]`;
    if (!NAME_PATTERN.test(name))
      problems.push(`${where}: not a valid secret name (letters, digits and /_+=.@- only)`);
    if (typeof spec === "string") {
      secrets.push({
        name,
        arn: defaultArn(name),
        versions: [
          { versionId: derivedId(name, spec), secretString: spec, stages: [AWSCURRENT], createdMs: loadedMs },
        ],
      });
      continue;
    }
    if (typeof spec !== "object" || spec === null || Array.isArray(spec)) {
      problems.push(`${where}: must be a string (the value) or a mapping with "versions"`);
      continue;
    }
    const { arn, versions } = spec as { arn?: unknown; versions?: unknown };
    if (arn !== undefined && (typeof arn !== "string" || !arn.startsWith("arn:")))
      problems.push(`${where}.arn: must be an ARN string`);
    if (!Array.isArray(versions) || versions.length === 0) {
      problems.push(`${where}.versions: must be a non-empty list`);
      continue;
    }
    const parsed: SecretVersion[] = [];
    const seenStages = new Map<string, number>();
    versions.forEach((raw, index) => {
      const at = `${where}.versions[${index}]`;
      const v = (raw ?? {}) as {
        id?: unknown;
        string?: unknown;
        binary?: unknown;
        stages?: unknown;
        created?: unknown;
      };
      const hasString = typeof v.string === "string";
      const hasBinary = typeof v.binary === "string";
      if (hasString === hasBinary) problems.push(`${at}: needs exactly one of "string" or "binary" (base64)`);
      if (hasBinary && !/^[A-Za-z0-9+/]*={0,2}$/.test(v.binary as string))
        problems.push(`${at}.binary: not base64`);
      const stages = v.stages ?? [];
      if (!Array.isArray(stages) || stages.some((s) => typeof s !== "string" || s === "")) {
        problems.push(`${at}.stages: must be a list of staging labels`);
        return;
      }
      for (const stage of stages as string[]) {
        if (seenStages.has(stage))
          problems.push(`${at}.stages: ${stage} is already on versions[${seenStages.get(stage)}]`);
        seenStages.set(stage, index);
      }
      if (v.id !== undefined && (typeof v.id !== "string" || v.id.length < 32 || v.id.length > 64)) {
        problems.push(`${at}.id: a VersionId is 32-64 characters`);
      }
      const content = hasString ? (v.string as string) : `binary:${String(v.binary)}`;
      parsed.push({
        versionId: typeof v.id === "string" ? v.id : derivedId(name, content, String(index)),
        secretString: hasString ? (v.string as string) : undefined,
        secretBinary: hasBinary ? Buffer.from(v.binary as string, "base64") : undefined,
        stages: [...(stages as string[])],
        // Secrets Manager always has a creation date: a version without one was created at load.
        createdMs: parseCreated(v.created, at, problems) ?? loadedMs,
      });
    });
    if (!seenStages.has(AWSCURRENT)) problems.push(`${where}: no version carries AWSCURRENT`);
    secrets.push({ name, arn: typeof arn === "string" ? arn : defaultArn(name), versions: parsed });
  }
  const arns = new Map<string, string>();
  for (const secret of secrets) {
    const other = arns.get(secret.arn);
    if (other !== undefined) problems.push(`secrets["${secret.name}"].arn: same ARN as secrets["${other}"]`);
    arns.set(secret.arn, secret.name);
  }
  if (problems.length > 0) throw new SecretsFileError(file, problems);
  return secrets;
}

/** Parses a secrets file's text: JSON when the name ends in .json, else YAML. */
export function parseSecretsText(text: string, file: string, loadedMs = Date.now()): StoredSecret[] {
  let document: unknown;
  try {
    document = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new SecretsFileError(file, [`cannot parse: ${(error as Error).message}`]);
  }
  return parseSecretsDocument(document, file, loadedMs);
}

export function serializeSecrets(secrets: readonly StoredSecret[], asJson: boolean): string {
  const document = {
    secrets: Object.fromEntries(
      secrets.map((secret) => [
        secret.name,
        {
          arn: secret.arn,
          versions: secret.versions.map((v) => ({
            id: v.versionId,
            ...(v.secretString !== undefined
              ? { string: v.secretString }
              : { binary: v.secretBinary?.toString("base64") }),
            stages: v.stages,
            ...(v.createdMs ? { created: new Date(v.createdMs).toISOString() } : {}),
          })),
        },
      ]),
    ),
  };
  return asJson ? `${JSON.stringify(document, null, 2)}\n` : stringifyYaml(document);
}
