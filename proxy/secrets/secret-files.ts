// The --secret-file delivery: each secret's current value kept in a file, replaced atomically (a new
// file beside the old, mode 0400, renamed over it), so a reader never sees half a value. A file is
// rewritten only when the version or key it holds changes.

import { randomUUID } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../telemetry/logger.ts";
import { type LoadedVersion, resolveValue, versionLabel } from "./secret-state.ts";
import type { FileDelivery } from "./spec.ts";

export class SecretFiles {
  readonly #logger: Logger;
  /** Per path: why its file is not what it should be (readiness reasons). */
  readonly #problems = new Map<string, string>();
  /** Per path: the version and key written last. */
  readonly #written = new Map<string, string>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  get problems(): Iterable<string> {
    return this.#problems.values();
  }

  /** Brings the file of `delivery` up to `current` (nothing yet loaded: nothing to write). */
  async write(delivery: FileDelivery, current: LoadedVersion | undefined): Promise<void> {
    if (!current) return;
    const resolved = resolveValue(current, delivery.ref.jsonKey, false);
    if (!resolved.ok) {
      this.#problems.set(
        delivery.path,
        `--secret-file ${delivery.path}=${delivery.ref.label} ${resolved.reason}`,
      );
      return;
    }
    const stamp = `${current.versionId}#${delivery.ref.jsonKey ?? ""}`;
    if (this.#written.get(delivery.path) === stamp) {
      this.#problems.delete(delivery.path);
      return;
    }
    const temp = `${delivery.path}.${randomUUID()}.tmp`;
    try {
      await mkdir(dirname(delivery.path), { recursive: true });
      await rm(temp, { force: true });
      await writeFile(temp, resolved.value, { mode: 0o400 });
      await rename(temp, delivery.path);
      this.#written.set(delivery.path, stamp);
      this.#problems.delete(delivery.path);
      this.#logger.info(
        { file: delivery.path, secret: delivery.ref.label, version: versionLabel(current.versionId) },
        "secret file written",
      );
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      this.#problems.set(delivery.path, `--secret-file ${delivery.path}: cannot write (${code})`);
      this.#logger.error({ file: delivery.path, code }, "secret file not written");
      await rm(temp, { force: true }).catch(() => {});
    }
  }
}
