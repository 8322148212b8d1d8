// How the child answered each request of a session, until the request's exchange asks (its
// summary reads the call's outcome for metrics and logs). A legacy HTTP+SSE POST is answered 202
// and its call ends later, on the stream: its exchange waits here to hear how.

import type { RequestId } from "@modelcontextprotocol/sdk/types.js";
import type { Answer } from "../../protocol/outcome.ts";
import { requestKey as key } from "./messages.ts";

/** Answers kept for summaries not yet asked (one per request in flight, in practice). */
export const MAX_KEPT_ANSWERS = 256;

export class CallAnswers {
  readonly #kept = new Map<string, Answer>();
  readonly #awaiting = new Map<string, (answer: Answer | undefined) => void>();
  #over = false;

  /** How request `id` was answered, once it has been; taken once. */
  take(id: RequestId): Answer | undefined {
    const answer = this.#kept.get(key(id));
    this.#kept.delete(key(id));
    return answer;
  }

  /** Calls `then` once request `id` is answered, with how; with undefined if the session ends first. */
  onAnswer(id: RequestId, then: (answer: Answer | undefined) => void): void {
    const kept = this.take(id);
    if (kept !== undefined || this.#over) {
      then(kept);
      return;
    }
    // A client that reused an id still in flight: its earlier call will not hear of an answer
    // (which one the child's answer belongs to is unknowable), and must not wait forever.
    this.#awaiting.get(key(id))?.(undefined);
    this.#awaiting.set(key(id), then);
  }

  /**
   * Request `id` was answered. Kept until asked; answers nobody asks for (a batch's later
   * requests, the summary reads the first) go, oldest first, past a bound.
   */
  answered(id: RequestId, answer: Answer): void {
    const waiting = this.#awaiting.get(key(id));
    if (waiting !== undefined) {
      this.#awaiting.delete(key(id));
      waiting(answer);
      return;
    }
    this.#kept.set(key(id), answer);
    if (this.#kept.size > MAX_KEPT_ANSWERS) this.#kept.delete(this.#kept.keys().next().value as string);
  }

  /** The client cancelled request `id`: whoever waits for its answer hears there will be none. */
  cancelled(id: RequestId): void {
    const waiting = this.#awaiting.get(key(id));
    this.#awaiting.delete(key(id));
    waiting?.(undefined);
  }

  /** The session is over: whoever still waits hears there will be no answer. */
  end(): void {
    this.#over = true;
    for (const waiting of this.#awaiting.values()) waiting(undefined);
    this.#awaiting.clear();
  }
}
