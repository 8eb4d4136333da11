import { ClientSessionLockedError, ClientSessionStoreError } from '../../engine/errors.js';
import { bytesToHex, hexToBytes } from '../wire/session-token.js';

/**
 * One outgoing message the server has not acknowledged, as a client store keeps it: plain data,
 * so any store can serialise it (the same shape as the server's stored messages).
 */
export interface StoredOutgoingMessage {
  readonly seq: number;
  readonly kind: 'text' | 'binary';
  /** The payload bytes (text as UTF-8). */
  readonly payload: Uint8Array;
}

/**
 * Everything a client needs to resume its session after its process or page died: what a
 * {@link ClientSessionStore} returns from `open()`.
 */
export interface StoredClientSession {
  /** The session id, 16 bytes. */
  readonly id: Uint8Array;
  /** The session's secret token, 16 bytes: the latest one the client stored (see docs on rotation). */
  readonly token: Uint8Array;
  /** The server's cumulative acknowledgement of our messages, as last stored (may lag: a resume re-sends). */
  readonly peerAcked: number;
  /** The received watermark: every server message up to it was delivered and is acknowledged or may be. */
  readonly received: number;
  /**
   * Server messages up to this one may have reached the application (delivery waits for this
   * write), so after a crash those above `received` are delivered again: the window that repeats.
   */
  readonly delivered: number;
  /** The unacknowledged outgoing messages, in order, numbered from `peerAcked + 1` on. */
  readonly messages: readonly StoredOutgoingMessage[];
}

/**
 * One change to the stored session, applied atomically by {@link ClientSessionStore.write}. The
 * fields apply in this order: `reset`, `identity`, `append`, `peerAcked`, `received`, `delivered`.
 */
export interface ClientSessionChange {
  /** Forget the stored session (it ended, or was lost). */
  readonly reset?: boolean;
  /** A new session (with `reset`) or the session's rotated token. */
  readonly identity?: { readonly id: Uint8Array; readonly token: Uint8Array };
  /** Outgoing messages accepted since the last write, in order. */
  readonly append?: readonly StoredOutgoingMessage[];
  /** The server acknowledged up to here: drop the messages it covers. */
  readonly peerAcked?: number;
  readonly received?: number;
  readonly delivered?: number;
}

/**
 * Where a resumable client keeps its session so that a page reload, a crashed tab or a restarted
 * process resumes it (`resume({ store })`). Implementations: {@link MemoryClientSessionStore}
 * here, `FileClientSessionStore` in `@lifeline/node/client-store`, `IndexedDbClientSessionStore`
 * in `@lifeline/browser/client-store`, `DenoKvClientSessionStore`... A store serves one session
 * of one connection at a time; the connection calls `open()` once, then `write()` one call at a
 * time (never two in flight), then `close()`.
 * @see docs/durable-sessions.md
 */
export interface ClientSessionStore {
  /**
   * Takes ownership of the stored session and reads it: `undefined` when none is stored.
   * @throws {ClientSessionLockedError} another owner holds it (a store that does not wait).
   * @throws {ClientSessionStoreError} `'corrupt'` or `'unreadable'`.
   */
  open(): Promise<StoredClientSession | undefined>;
  /**
   * Applies `change` durably and atomically (all of it or nothing), then resolves.
   * @throws {ClientSessionStoreError} `'write-failed'`.
   */
  write(change: ClientSessionChange): Promise<void>;
  /** Releases ownership; the stored session stays for the next owner. Idempotent. */
  close(): Promise<void>;
}

/** What a connection restored from its store: `session.restored` (see {@link ResumeSession}). */
export interface RestoredClientSession {
  /** The session id, 32 hex digits. */
  readonly sessionId: string;
  /** Outgoing messages stored and not acknowledged: re-sent (exactly once) on the resume. */
  readonly pendingOutgoing: number;
  /** The highest outgoing sequence number stored: the next message sent is numbered after it. */
  readonly lastSent: number;
  /** The received watermark: the application gets exactly the server messages after it. */
  readonly lastReceived: number;
  /**
   * Server messages after `lastReceived` up to this one may have reached the application before
   * the restart: they are delivered again (the repeat window). Equal to `lastReceived` when none.
   */
  readonly deliveredUpTo: number;
  /**
   * The pending outgoing messages fill this connection's limits or are over them: its replay
   * window (`maxReplayMessages` / `maxReplayBytes`) and the sends that may wait for room behind it
   * (`maxWaitingMessages` / `maxWaitingBytes`) hold no more, as when they were stored by a process
   * with larger limits. None of them is dropped: they are all re-sent, a window at a time, but until the server
   * acknowledged enough of them a new send that would wait is refused with a
   * `ReplayWindowFullError` that says so. Start sending once `session.pending` is back under the
   * limits, or give the connection limits at least as large as the ones that stored the session.
   */
  readonly exceedsLimits: boolean;
}

/** {@link MemoryClientSessionStore}'s and the snapshot stores' state: applies one change. */
export function applyClientSessionChange(
  state: StoredClientSession | undefined,
  change: ClientSessionChange,
): StoredClientSession | undefined {
  let next = change.reset ? undefined : state;
  if (change.identity) {
    next = next
      ? { ...next, id: change.identity.id, token: change.identity.token }
      : {
          id: change.identity.id,
          token: change.identity.token,
          peerAcked: 0,
          received: 0,
          delivered: 0,
          messages: [],
        };
  }
  if (!next) return undefined;
  let messages = next.messages;
  if (change.append?.length) messages = messages.concat(change.append);
  const peerAcked = Math.max(next.peerAcked, change.peerAcked ?? 0);
  if (peerAcked > next.peerAcked) {
    let drop = 0;
    while (drop < messages.length && messages[drop]!.seq <= peerAcked) drop++;
    if (drop > 0) messages = messages.slice(drop);
  }
  const received = Math.max(next.received, change.received ?? 0);
  return {
    id: next.id,
    token: next.token,
    peerAcked,
    received,
    delivered: Math.max(next.delivered, received, change.delivered ?? 0),
    messages,
  };
}

/**
 * A client session store in memory: the session survives the connection (a new socket given the
 * same store resumes it), not the process. One owner at a time, like every store.
 */
export class MemoryClientSessionStore implements ClientSessionStore {
  // A #private field: console.log (util.inspect) and JSON.stringify of the store never show the
  // session's token. No inspect method: a computed class key keeps the class in every bundle.
  #state: StoredClientSession | undefined;
  private isOwned = false;
  /** Writes applied, for tests and the benchmark. */
  writes = 0;

  async open(): Promise<StoredClientSession | undefined> {
    if (this.isOwned) throw new ClientSessionLockedError('memory');
    this.isOwned = true;
    return this.#state;
  }

  async write(change: ClientSessionChange): Promise<void> {
    this.writes++;
    this.#state = applyClientSessionChange(this.#state, change);
  }

  async close(): Promise<void> {
    this.isOwned = false;
  }

  /** Whether a connection owns it (between its `open()` and `close()`). */
  get owned(): boolean {
    return this.isOwned;
  }

  /** The stored session, as the next `open()` would return it. */
  get stored(): StoredClientSession | undefined {
    return this.#state;
  }
}

const FORMAT = 'lifeline-client-session';
const MAX_STORED_MESSAGES = 1_048_576;

/**
 * A stored session as JSON text (the file and Deno stores keep this): ids in hex, payloads as text
 * or base64. {@link decodeClientSession} reads it back.
 */
export function encodeClientSession(state: StoredClientSession): string {
  const decoder = new TextDecoder();
  return JSON.stringify({
    format: FORMAT,
    version: 1,
    id: bytesToHex(state.id),
    token: bytesToHex(state.token),
    peerAcked: state.peerAcked,
    received: state.received,
    delivered: state.delivered,
    messages: state.messages.map((message) =>
      message.kind === 'text'
        ? [message.seq, 't', decoder.decode(message.payload)]
        : [message.seq, 'b', toBase64(message.payload)],
    ),
  });
}

/**
 * Reads what {@link encodeClientSession} wrote, checking every field.
 * @throws {ClientSessionStoreError} `'unsupported-version'`: a later format version; `'corrupt'`: not JSON, another format, a field out of range, messages out of order.
 */
export function decodeClientSession(text: string, location?: string): StoredClientSession {
  const corrupt = (why: string, cause?: unknown) =>
    new ClientSessionStoreError('corrupt', `the stored session is corrupt: ${why}`, { cause, location });
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Without the SyntaxError as its cause: V8's message quotes the text around the error, which
    // can be the token (tokens are never written out).
    throw corrupt('not JSON');
  }
  if (typeof raw !== 'object' || raw === null || raw.format !== FORMAT) throw corrupt('not a client session');
  if (typeof raw.version === 'number' && Number.isSafeInteger(raw.version) && raw.version > 1) {
    // A later version's session: refused untouched, and not called corrupt, since deleting it (the
    // advice for a corrupt one) would give up the messages it holds (see ClientSessionStoreError).
    throw new ClientSessionStoreError(
      'unsupported-version',
      `the stored session was written in format version ${raw.version} by a later version of Lifeline; this one reads version 1. Keep it for that version, or delete it to give up its session`,
      { location },
    );
  }
  if (raw.version !== 1) throw corrupt(`format version ${String(raw.version)} is not 1`);
  const id = typeof raw.id === 'string' ? hexToBytes(raw.id) : undefined;
  const token = typeof raw.token === 'string' ? hexToBytes(raw.token) : undefined;
  if (id?.length !== 16 || token?.length !== 16) throw corrupt('id and token must be 32 hex digits');
  const peerAcked = raw.peerAcked;
  const received = raw.received;
  const delivered = raw.delivered;
  if (!isCount(peerAcked) || !isCount(received) || !isCount(delivered) || delivered < received) {
    throw corrupt('watermarks must be integers >= 0, delivered >= received');
  }
  if (!Array.isArray(raw.messages) || raw.messages.length > MAX_STORED_MESSAGES) throw corrupt('messages');
  const encoder = new TextEncoder();
  const messages: StoredOutgoingMessage[] = [];
  let expected = peerAcked + 1;
  for (const entry of raw.messages as unknown[]) {
    if (
      !Array.isArray(entry) ||
      entry.length !== 3 ||
      entry[0] !== expected ||
      typeof entry[2] !== 'string'
    ) {
      throw corrupt(`message ${expected} is missing or malformed`);
    }
    if (entry[1] === 't') messages.push({ seq: expected, kind: 'text', payload: encoder.encode(entry[2]) });
    else if (entry[1] === 'b') {
      const payload = fromBase64(entry[2]);
      if (!payload) throw corrupt(`message ${expected} is not base64`);
      messages.push({ seq: expected, kind: 'binary', payload });
    } else throw corrupt(`message ${expected} has an unknown kind`);
    expected++;
  }
  return { id, token, peerAcked, received, delivered, messages };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}
