/** One unacknowledged server-to-client message, as stored: plain data, so any store can serialise it. */
export interface StoredMessage {
  readonly seq: number;
  readonly kind: 'text' | 'binary';
  /** The payload bytes (text as UTF-8). */
  readonly payload: Uint8Array;
  /** The application's upstream position after this message, if it gave one (`session.send(data, { cursor })`). */
  readonly cursor?: string;
}

/**
 * Everything a server needs to resume a session, as plain data (strings, numbers, byte arrays).
 * The token itself is never stored: only its SHA-256 digest.
 */
export interface StoredSession {
  /** 32 hex digits. */
  readonly id: string;
  /** SHA-256 of the current token. */
  tokenHash: Uint8Array;
  /**
   * SHA-256 of the previous token: the one the client last presented successfully (the only one it
   * is known to hold), good until the client confirms the current one, refused from then on.
   */
  retiredTokenHash: Uint8Array | null;
  /** Whether the client has used the current token (sent a frame after the WELCOME that carried it). */
  tokenConfirmed: boolean;
  /** Epoch ms. */
  readonly createdAt: number;
  /** Epoch ms after which a detached session may be dropped; `null` while a link is attached. */
  expiresAt: number | null;
  /** The highest sequence number the server assigned (appended). */
  lastSent: number;
  /** The client's cumulative acknowledgement of the server's messages. */
  peerAcked: number;
  /**
   * The server's cumulative acknowledgement of the client's messages: delivered to the
   * application (`ack: 'auto'`), or acknowledged by it (`ack: 'manual'`). Never delivered again.
   */
  received: number;
  /**
   * The highest client message a server may have handed the application, stored before the
   * hand-over (at or above `received`): a later server flags the messages up to it
   * `redelivered`. Absent in records of stores that predate it (nothing is flagged then).
   */
  delivered?: number;
  /** Unacknowledged messages, ascending by seq, all after `peerAcked`. */
  replay: StoredMessage[];
  /** The owner epoch, raised by {@link SessionStore.claim}; absent in stores that do not fence. */
  epoch?: number;
  /** The cursor of the last appended message that carried one; `null` (or absent) when none did. */
  cursor?: string | null;
}

/** The metadata a handshake or a detach changes (the same fields of {@link StoredSession}). */
export interface SessionMetadata {
  /** SHA-256 of the current token. */
  tokenHash: Uint8Array;
  /** SHA-256 of the previous token, good until the client confirms the current one. */
  retiredTokenHash: Uint8Array | null;
  /** Whether the client has used the current token. */
  tokenConfirmed: boolean;
  /** Epoch ms after which a detached session may be dropped; `null` while a link is attached. */
  expiresAt: number | null;
}

/**
 * Where a resume server keeps its sessions. Every method is asynchronous so that a store may
 * live elsewhere (SQLite, Redis); the in-memory default is {@link MemorySessionStore}.
 *
 * The server writes ahead of the wire: a message is appended before its frame is written, and
 * `received` is stored before the server acknowledges it. A message is appended when `send()`
 * accepts it (in the replay window or waiting for room), and `received` is written only after
 * every message sent before it resolved its append, so a crash never keeps a request
 * acknowledged and loses its answer. A durable store therefore lets sessions survive a server
 * restart.
 *
 * Fencing (optional, for stores shared by replicas): a store with {@link claim} serves one owner
 * at a time. Writes given an `epoch` apply only while it is the session's epoch, else they reject
 * with `StaleOwnerError` and change nothing; writes without one are not fenced. A write for a
 * session the store does not hold is ignored.
 *
 * @example
 * ```ts
 * const server = createResumeServer({ store: new MemorySessionStore() });
 * ```
 * @see docs/protocol.md
 */
export interface SessionStore {
  /** The stored session, or `undefined`. */
  load(id: string): Promise<StoredSession | undefined>;
  /** Creates or replaces a session record. */
  save(session: StoredSession): Promise<void>;
  /** Changes a session's metadata (token rotation, detach and attach). */
  update(id: string, metadata: Partial<SessionMetadata>, epoch?: number): Promise<void>;
  /**
   * Appends outgoing messages, in order, and raises `lastSent`; the session's cursor becomes the
   * last appended message's, if it carries one. Idempotent: messages at or below the stored
   * `lastSent` are ignored. Each message is plain data ({@link StoredMessage}'s fields as own
   * enumerable data properties; `cursor` only when given): a store may keep, spread, clone or
   * serialise it. Its `payload` may be a view into a larger buffer: copy the bytes the view
   * covers (`byteOffset`, `byteLength`), not its `buffer`.
   */
  append(id: string, messages: readonly StoredMessage[], epoch?: number): Promise<void>;
  /** Raises the watermarks; `peerAcked` drops the replay entries it covers. Lower values are ignored. */
  acknowledge(
    id: string,
    watermarks: { readonly peerAcked?: number; readonly received?: number; readonly delivered?: number },
    epoch?: number,
  ): Promise<void>;
  /**
   * Deletes the detached sessions whose `expiresAt` is at or before `now` (a durable store also
   * drops sessions idle past its own limit, whose server died attached); returns their ids.
   */
  expire(now: number): Promise<string[]>;
  delete(id: string, epoch?: number): Promise<void>;
  /**
   * Takes the session for the caller: raises its epoch atomically and returns the new one, unless
   * `knownEpoch` is still the session's epoch (the caller owns it already), which is returned
   * unchanged. `undefined` when the store does not hold the session. Optional: stores without it
   * do not fence.
   */
  claim?(id: string, knownEpoch?: number): Promise<number | undefined>;
  /**
   * Resolves once the store can serve (its database open, its schema in place); rejects with the
   * reason it cannot (a `SessionStoreError`). A server's `listen()` awaits it before it listens.
   */
  ready?(): Promise<void>;
  /** Releases the store's resources. */
  close?(): Promise<void>;
}
