// Sessions re-created on this task, by the token the client still holds: the client's next requests
// (and those of clients that do not adopt the new token) reach the same re-created session, and a
// burst of requests with one old token re-creates it once. Bounded: the oldest mapping goes first.

import type { SessionClaims } from "../../sessions/session-token.ts";

export interface ReplayedSession {
  /** The token this task issued for the re-created session. */
  readonly token: string;
  readonly claims: SessionClaims;
}

export const MAX_REPLAYED_SESSIONS = 10_000;

export class ReplayedSessions {
  readonly #done = new Map<string, ReplayedSession>();
  readonly #underway = new Map<string, Promise<ReplayedSession>>();
  readonly #max: number;

  constructor(max = MAX_REPLAYED_SESSIONS) {
    this.#max = max;
  }

  get(oldToken: string): ReplayedSession | undefined {
    return this.#done.get(oldToken);
  }

  /** The re-created session for `oldToken`: the one made already or under way, else `create()`'s. */
  getOrCreate(oldToken: string, create: () => Promise<ReplayedSession>): Promise<ReplayedSession> {
    const done = this.#done.get(oldToken);
    if (done !== undefined) return Promise.resolve(done);
    const underway = this.#underway.get(oldToken);
    if (underway !== undefined) return underway;
    const creating = create().then(
      (session) => {
        this.#underway.delete(oldToken);
        this.#remember(oldToken, session);
        return session;
      },
      (error: unknown) => {
        this.#underway.delete(oldToken);
        throw error;
      },
    );
    this.#underway.set(oldToken, creating);
    return creating;
  }

  /** The session was deleted: forget whichever token led to it. */
  forget(token: string): void {
    this.#done.delete(token);
    for (const [old, session] of this.#done) if (session.token === token) this.#done.delete(old);
  }

  #remember(oldToken: string, session: ReplayedSession): void {
    if (this.#done.size >= this.#max) {
      const oldest = this.#done.keys().next().value as string;
      this.#done.delete(oldest);
    }
    this.#done.set(oldToken, session);
  }
}
