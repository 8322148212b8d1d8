// Where the emulator's "Secrets Manager" lives on disk: the secrets file the user writes, which is
// a template that `rotate` never rewrites (its comments stay, and a tracked file such as
// compose/secrets.yaml is never dirtied), and beside it the state file that `rotate` writes
// (secrets.yaml -> secrets.state.yaml), whose secrets override the template's of the same name.
//
// Both are read before each lookup (they are small) and parsed again when either text changed:
// what was written before a request arrived is what that request sees, so "rotate, then use the
// new version" holds with no wait. A watcher alone cannot promise that: watchFile polls (every
// 200 ms here); measured with the watcher only, 10 of 10 refreshNow=true GETs sent as soon as
// `rotate` returned got the old version, for 44-174 ms. The content is compared rather than the
// files' stat identity (inode, size, mtime): file times are coarse (a kernel tick, a few ms), so a
// same-size edit in place within one tick would look unchanged. Only "Secrets Manager" changes
// this way; the agent's cache in front of it (agent-cache.ts) still serves a cached version until
// ttl_seconds or refreshNow, as the agent does.

import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { SecretsBackend, type SecretVersion, type StoredSecret } from "./backend.ts";
import { parseSecretsText, serializeSecrets } from "./secrets-file.ts";

/** The state file beside a secrets file: `secrets.yaml` -> `secrets.state.yaml`. */
export function stateFileFor(file: string): string {
  const extension = extname(file);
  return join(dirname(file), `${basename(file, extension)}.state${extension}`);
}

/** The file's text, or undefined when it does not exist. */
function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

export type SourceCheck =
  | { readonly kind: "unchanged" }
  | { readonly kind: "reloaded"; readonly secrets: StoredSecret[] }
  | { readonly kind: "unreadable"; readonly error: Error };

export class SecretsSource {
  readonly file: string;
  readonly stateFile: string;
  /** "Created at load" for versions without a date, kept across reloads so CreatedDate is stable. */
  readonly #loadedMs: number;
  /** The two texts last read, parsed or not. */
  #seen: readonly [string, string | undefined] | undefined;
  #stateNames: ReadonlySet<string> = new Set();

  constructor(file: string, now: () => number = Date.now) {
    this.file = file;
    this.stateFile = stateFileFor(file);
    this.#loadedMs = now();
  }

  /** Names of the secrets the state file holds (those rotated at least once). */
  get stateNames(): ReadonlySet<string> {
    return this.#stateNames;
  }

  /** Reads both files. Throws SecretsFileError, or the I/O error, when they cannot be used. */
  load(): StoredSecret[] {
    return this.#parse(this.#read());
  }

  /**
   * Reloads when either file changed since the last read. A change that cannot be read or parsed
   * (an editor's half-written save) is reported once and remembered, so the previous secrets stay
   * until the next change.
   */
  check(): SourceCheck {
    let texts: readonly [string, string | undefined];
    try {
      texts = this.#read();
    } catch (error) {
      return { kind: "unreadable", error: error as Error };
    }
    if (this.#seen && texts[0] === this.#seen[0] && texts[1] === this.#seen[1]) return { kind: "unchanged" };
    try {
      return { kind: "reloaded", secrets: this.#parse(texts) };
    } catch (error) {
      this.#seen = texts;
      return { kind: "unreadable", error: error as Error };
    }
  }

  #read(): readonly [string, string | undefined] {
    return [readFileSync(this.file, "utf8"), readOptional(this.stateFile)];
  }

  #parse(texts: readonly [string, string | undefined]): StoredSecret[] {
    const [templateText, stateText] = texts;
    const template = parseSecretsText(templateText, this.file, this.#loadedMs);
    const state = stateText === undefined ? [] : parseSecretsText(stateText, this.stateFile, this.#loadedMs);
    const rotated = new Map(state.map((secret) => [secret.name, secret]));
    const names = new Set(template.map((secret) => secret.name));
    const secrets = [
      ...template.map((secret) => rotated.get(secret.name) ?? secret),
      ...state.filter((secret) => !names.has(secret.name)),
    ];
    this.#seen = texts;
    this.#stateNames = new Set(rotated.keys());
    return secrets;
  }
}

/**
 * `rotate`: a new AWSCURRENT for `secretId` (the old one becomes AWSPREVIOUS), written to the state
 * file only. Undefined when there is no such secret.
 */
export function rotateSecret(
  file: string,
  secretId: string,
  value?: string,
): { version: SecretVersion; stateFile: string } | undefined {
  const source = new SecretsSource(file);
  const backend = new SecretsBackend(source.load());
  const secret = backend.find(secretId);
  if (!secret) return undefined;
  const version = backend.rotate(secretId, value);
  const keep = new Set([...source.stateNames, secret.name]);
  const state = backend.secrets.filter((s) => keep.has(s.name));
  const asJson = source.stateFile.endsWith(".json");
  const header = asJson
    ? ""
    : `# Written by "mcp-sidecar agent-emulator rotate": these secrets override ${basename(file)}.\n# Delete this file to serve the values of ${basename(file)} again.\n`;
  // As readable as the template: under docker compose the emulator (uid 65532) reads both through
  // a bind mount, where a 0600 file of the host user is unreadable; a private template (npm start
  // writes its own 0600) keeps a private state.
  const mode = statSync(file).mode & 0o666;
  // Temp file and rename in the same directory: a reader, or a container that mounts the
  // directory, sees the old file or the new one, never half of one.
  const temp = `${source.stateFile}.tmp-${process.pid}`;
  writeFileSync(temp, header + serializeSecrets(state, asJson), { mode });
  chmodSync(temp, mode);
  renameSync(temp, source.stateFile);
  return { version, stateFile: source.stateFile };
}
