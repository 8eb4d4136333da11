/** One unacknowledged server-to-client message, as stored: plain data, so any store can serialise it. */
export interface StoredMessage {
  readonly seq: number;
  readonly kind: 'text' | 'binary';
  /** The payload bytes (text as UTF-8). */
  readonly payload: Uint8Array;
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
  /** SHA-256 of the last token the client confirmed before the current one; refused once the current one is confirmed. */
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
  /** The server's cumulative acknowledgement of the client's messages (delivered to the application). */
  received: number;
  /** Unacknowledged messages, ascending by seq, all after `peerAcked`. */
  replay: StoredMessage[];
}

/** The metadata a handshake or a detach changes. */
export type SessionMetadata = Pick<
  StoredSession,
  'tokenHash' | 'retiredTokenHash' | 'tokenConfirmed' | 'expiresAt'
>;

/**
 * Where a resume server keeps its sessions. Every method is asynchronous so that a store may
 * live elsewhere (SQLite, Redis); the in-memory default is {@link MemorySessionStore}.
 *
 * The server writes ahead of the wire: a message is appended before its frame is written, and
 * `received` is stored before the server acknowledges it. A durable store therefore lets
 * sessions survive a server restart.
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
  update(id: string, metadata: Partial<SessionMetadata>): Promise<void>;
  /**
   * Appends outgoing messages, in order, and raises `lastSent`. Idempotent: messages at or below
   * the stored `lastSent` are ignored.
   */
  append(id: string, messages: readonly StoredMessage[]): Promise<void>;
  /** Raises the watermarks; `peerAcked` drops the replay entries it covers. Lower values are ignored. */
  acknowledge(
    id: string,
    watermarks: { readonly peerAcked?: number; readonly received?: number },
  ): Promise<void>;
  /** Deletes the detached sessions whose `expiresAt` is at or before `now`; returns their ids. */
  expire(now: number): Promise<string[]>;
  delete(id: string): Promise<void>;
  /** Releases the store's resources. */
  close?(): Promise<void>;
}
