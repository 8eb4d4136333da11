import { MemorySessionStore } from './memory-session-store.js';
import type { SessionMetadata, SessionStore, StoredMessage, StoredSession } from './session-store.js';

/**
 * The application's store as the server and its sessions use it: every operation is counted while
 * it is pending, with the time it started, so that the server can tell when the store (or its own
 * event loop, which settles the store's promises) falls behind and refuse new handshakes before
 * the operations it already issued reach the store's timeout. One per server, shared by its
 * sessions; it adds nothing per operation but a map entry. `claim` exists only if the store has it
 * (fencing is detected by its presence).
 */
export class StoreLoad implements SessionStore {
  /** Pending operations by ticket, in the order they started: the first is the oldest. */
  private readonly started = new Map<number, number>();
  private ticket = 0;
  claim?: (id: string, knownEpoch?: number) => Promise<number | undefined>;
  /**
   * @internal Whether `append()` reaches this package's MemorySessionStore's own `append` (not a
   * subclass's, nor a wrapper's): only then are messages handed as frame-backed objects instead of
   * plain data (see `ServerSession.toStored`).
   */
  readonly holdsFrames: boolean;

  constructor(
    private readonly inner: SessionStore,
    private readonly now: () => number,
  ) {
    this.holdsFrames = inner.append === MemorySessionStore.prototype.append;
    if (typeof inner.claim === 'function') {
      const claim = inner.claim.bind(inner);
      this.claim = (id, knownEpoch) => this.run(() => claim(id, knownEpoch));
    }
  }

  /** Operations issued and not settled. */
  get pending(): number {
    return this.started.size;
  }

  /** How long the oldest pending operation has waited, in ms (0: none pending). */
  oldestAge(now: number): number {
    for (const start of this.started.values()) return Math.max(0, now - start);
    return 0;
  }

  load(id: string): Promise<StoredSession | undefined> {
    return this.run(() => this.inner.load(id));
  }

  save(session: StoredSession): Promise<void> {
    return this.run(() => this.inner.save(session));
  }

  update(id: string, metadata: Partial<SessionMetadata>, epoch?: number): Promise<void> {
    return this.run(() => this.inner.update(id, metadata, epoch));
  }

  append(id: string, messages: readonly StoredMessage[], epoch?: number): Promise<void> {
    return this.run(() => this.inner.append(id, messages, epoch));
  }

  acknowledge(
    id: string,
    watermarks: Parameters<SessionStore['acknowledge']>[1],
    epoch?: number,
  ): Promise<void> {
    return this.run(() => this.inner.acknowledge(id, watermarks, epoch));
  }

  expire(now: number): Promise<string[]> {
    return this.run(() => this.inner.expire(now));
  }

  delete(id: string, epoch?: number): Promise<void> {
    return this.run(() => this.inner.delete(id, epoch));
  }

  private run<T>(operation: () => Promise<T>): Promise<T> {
    const ticket = ++this.ticket;
    this.started.set(ticket, this.now());
    let result: Promise<T>;
    try {
      result = operation();
    } catch (error) {
      this.started.delete(ticket);
      return Promise.reject(error);
    }
    const done = () => {
      this.started.delete(ticket);
    };
    // The caller handles the rejection of the promise returned; this bookkeeping branch must not
    // report it a second time.
    result.then(done, done);
    return result;
  }
}
