import type { SessionStore } from './session-store.js';

/** The watermarks {@link SessionStore.acknowledge} raises. */
export interface SessionWatermarks {
  readonly peerAcked?: number;
  readonly received?: number;
  /** The highest client message a server may have handed its application (see `StoredSession.delivered`). */
  readonly delivered?: number;
}

/**
 * How long a durable store keeps a session nobody wrote to while no detach was recorded (its
 * server died with a client attached, and the client never came back): 24 h.
 */
export const DEFAULT_IDLE_TTL_MS = 86_400_000;

/**
 * A {@link SessionStore} that serves one owner at a time: {@link SessionStore.claim} is there. A
 * server that takes a session over (a resume on another replica, or after a restart) claims it,
 * which raises the session's epoch atomically; every later write carries that epoch, and the
 * store refuses a write whose epoch is not the session's with a `StaleOwnerError`, so a replica
 * that lost the session can never overwrite what the new owner wrote.
 *
 * @example
 * ```ts
 * const epoch = await store.claim(id); // this replica owns the session from now on
 * const record = await store.load(id); // after the claim: nothing stale can land any more
 * await store.append(id, messages, epoch); // rejects with StaleOwnerError once another replica claims
 * ```
 * @see docs/durable-sessions.md
 */
export interface FencedSessionStore extends SessionStore {
  claim(id: string, knownEpoch?: number): Promise<number | undefined>;
}

/**
 * Whether a store fences writers (has `claim`).
 *
 * @example
 * ```ts
 * const epoch = isFencedSessionStore(store) ? await store.claim(id) : undefined;
 * ```
 * @see FencedSessionStore
 */
export function isFencedSessionStore(store: SessionStore): store is FencedSessionStore {
  return typeof store.claim === 'function';
}
