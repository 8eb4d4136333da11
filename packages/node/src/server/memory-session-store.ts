import type { SessionMetadata, SessionStore, StoredMessage, StoredSession } from './session-store.js';

/**
 * The default {@link SessionStore}: a map in this process. Sessions die with the process, so a
 * client whose server restarted takes the `unknown-session` path (a `lost` event listing its
 * unacknowledged messages, then a new session).
 *
 * @example
 * ```ts
 * const store = new MemorySessionStore();
 * const server = createResumeServer({ store });
 * ```
 * @see SessionStore
 */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, StoredSession>();

  /** Sessions held. */
  get size(): number {
    return this.sessions.size;
  }

  async load(id: string): Promise<StoredSession | undefined> {
    const session = this.sessions.get(id);
    return session && { ...session, replay: [...session.replay] };
  }

  async save(session: StoredSession): Promise<void> {
    this.sessions.set(session.id, { ...session, replay: [...session.replay] });
  }

  async update(id: string, metadata: Partial<SessionMetadata>): Promise<void> {
    const session = this.sessions.get(id);
    if (session) Object.assign(session, metadata);
  }

  async append(id: string, messages: readonly StoredMessage[]): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return;
    for (const message of messages) {
      if (message.seq <= session.lastSent) continue;
      session.replay.push(message);
      session.lastSent = message.seq;
    }
  }

  async acknowledge(
    id: string,
    watermarks: { readonly peerAcked?: number; readonly received?: number },
  ): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return;
    if (watermarks.received !== undefined && watermarks.received > session.received)
      session.received = watermarks.received;
    const peerAcked = watermarks.peerAcked;
    if (peerAcked !== undefined && peerAcked > session.peerAcked) {
      session.peerAcked = peerAcked;
      let drop = 0;
      while (drop < session.replay.length && session.replay[drop]!.seq <= peerAcked) drop++;
      if (drop > 0) session.replay.splice(0, drop);
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

  async delete(id: string): Promise<void> {
    this.sessions.delete(id);
  }
}
