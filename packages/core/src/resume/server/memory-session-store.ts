import { StaleOwnerError } from '../../engine/errors.js';
import { type Digest, digestBytes, digestOf } from './digest.js';
import type { SessionMetadata, SessionStore, StoredMessage, StoredSession } from './session-store.js';

/**
 * A session as this store holds it: a {@link StoredSession} whose token digests are one-byte
 * strings ({@link Digest}, ~0.17 KB less per session than byte arrays), given out as bytes.
 */
interface HeldSession {
  readonly id: string;
  tokenHash: Digest;
  retiredTokenHash: Digest | null;
  tokenConfirmed: boolean;
  readonly createdAt: number;
  expiresAt: number | null;
  lastSent: number;
  peerAcked: number;
  received: number;
  delivered: number;
  /** Unacknowledged messages, oldest first; made on the first append (an idle session has none: ~0.03 KB). */
  replay: StoredMessage[] | undefined;
  epoch: number;
  cursor: string | null;
}

/**
 * The default {@link SessionStore}: a map in this process. Sessions die with the process, so a
 * client whose server restarted takes the `unknown-session` path (a `lost` event listing its
 * unacknowledged messages, then a new session). Fenced like the durable stores, so servers in
 * one process can share it.
 *
 * @example
 * ```ts
 * const store = new MemorySessionStore();
 * const server = createResumeServer({ store });
 * ```
 * @see SessionStore
 */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, HeldSession>();

  /** Sessions held. */
  get size(): number {
    return this.sessions.size;
  }

  /**
   * `{ size }` for `JSON.stringify` and loggers (and `util.inspect` once a server was made): the
   * records hold token digests and messages.
   */
  toJSON(): object {
    return { size: this.size };
  }

  async load(id: string): Promise<StoredSession | undefined> {
    const session = this.sessions.get(id);
    return session && record(session);
  }

  async save(session: StoredSession): Promise<void> {
    this.sessions.set(session.id, held(session));
  }

  async update(id: string, metadata: Partial<SessionMetadata>, epoch?: number): Promise<void> {
    const session = this.fence(id, epoch);
    if (!session) return;
    if (metadata.tokenHash !== undefined) session.tokenHash = digestOf(metadata.tokenHash);
    if (metadata.retiredTokenHash !== undefined)
      session.retiredTokenHash =
        metadata.retiredTokenHash === null ? null : digestOf(metadata.retiredTokenHash);
    if (metadata.tokenConfirmed !== undefined) session.tokenConfirmed = metadata.tokenConfirmed;
    if (metadata.expiresAt !== undefined) session.expiresAt = metadata.expiresAt;
  }

  async append(id: string, messages: readonly StoredMessage[], epoch?: number): Promise<void> {
    const session = this.fence(id, epoch);
    if (!session) return;
    for (const message of messages) {
      if (message.seq <= session.lastSent) continue;
      if (session.replay === undefined) session.replay = [message];
      else session.replay.push(message);
      session.lastSent = message.seq;
      if (message.cursor !== undefined) session.cursor = message.cursor;
    }
  }

  async acknowledge(
    id: string,
    watermarks: { readonly peerAcked?: number; readonly received?: number; readonly delivered?: number },
    epoch?: number,
  ): Promise<void> {
    const session = this.fence(id, epoch);
    if (!session) return;
    if (watermarks.delivered !== undefined && watermarks.delivered > session.delivered)
      session.delivered = watermarks.delivered;
    if (watermarks.received !== undefined && watermarks.received > session.received)
      session.received = watermarks.received;
    const peerAcked = watermarks.peerAcked;
    if (peerAcked !== undefined && peerAcked > session.peerAcked) {
      session.peerAcked = peerAcked;
      const replay = session.replay;
      if (replay !== undefined) {
        let drop = 0;
        while (drop < replay.length && replay[drop]!.seq <= peerAcked) drop++;
        // All acknowledged: the list goes with them, as an idle session holds none.
        if (drop === replay.length) session.replay = undefined;
        else if (drop > 0) replay.splice(0, drop);
      }
    }
  }

  async expire(now: number): Promise<string[]> {
    const expired: string[] = [];
    for (const [id, session] of this.sessions) {
      if (session.expiresAt !== null && session.expiresAt <= now) {
        this.sessions.delete(id);
        expired.push(id);
      }
    }
    return expired;
  }

  async delete(id: string, epoch?: number): Promise<void> {
    if (this.fence(id, epoch)) this.sessions.delete(id);
  }

  async claim(id: string, knownEpoch?: number): Promise<number | undefined> {
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (knownEpoch !== undefined && session.epoch === knownEpoch) return knownEpoch;
    session.epoch += 1;
    return session.epoch;
  }

  /** The session, if held; throws {@link StaleOwnerError} when `epoch` is given and is not the session's. */
  private fence(id: string, epoch: number | undefined): HeldSession | undefined {
    const session = this.sessions.get(id);
    if (session && epoch !== undefined && session.epoch !== epoch) {
      throw new StaleOwnerError(id, epoch, session.epoch);
    }
    return session;
  }
}

/**
 * A copy of `session` to hold, with its own replay list, built field by field: an object spread
 * (`{ ...session }`) gives every copy a hidden class of its own (~0.8 KB per session held,
 * `pnpm bench server`).
 */
function held(session: StoredSession): HeldSession {
  return {
    id: session.id,
    tokenHash: digestOf(session.tokenHash),
    retiredTokenHash: session.retiredTokenHash === null ? null : digestOf(session.retiredTokenHash),
    tokenConfirmed: session.tokenConfirmed,
    createdAt: session.createdAt,
    expiresAt: session.expiresAt,
    lastSent: session.lastSent,
    peerAcked: session.peerAcked,
    received: session.received,
    delivered: session.delivered ?? 0,
    replay: session.replay.length > 0 ? [...session.replay] : undefined,
    epoch: session.epoch ?? 0,
    cursor: session.cursor ?? null,
  };
}

/** A copy of a held session to give out, field by field as {@link held}, with its digests as bytes. */
function record(session: HeldSession): StoredSession {
  return {
    id: session.id,
    tokenHash: digestBytes(session.tokenHash),
    retiredTokenHash: session.retiredTokenHash === null ? null : digestBytes(session.retiredTokenHash),
    tokenConfirmed: session.tokenConfirmed,
    createdAt: session.createdAt,
    expiresAt: session.expiresAt,
    lastSent: session.lastSent,
    peerAcked: session.peerAcked,
    received: session.received,
    delivered: session.delivered,
    replay: session.replay === undefined ? [] : session.replay.map(plain),
    epoch: session.epoch,
    cursor: session.cursor,
  };
}

/**
 * A held message as plain data: the server hands this store frame-backed messages whose `kind`
 * and `payload` are getters (see `ServerSession.toStored`), and what the store gives out must
 * survive a spread, `structuredClone` or `JSON.stringify` like any stored record.
 */
function plain(message: StoredMessage): StoredMessage {
  const copy: { seq: number; kind: 'text' | 'binary'; payload: Uint8Array; cursor?: string } = {
    seq: message.seq,
    kind: message.kind,
    payload: message.payload,
  };
  if (message.cursor !== undefined) copy.cursor = message.cursor;
  return copy;
}
