import { ClientSessionStoreError } from '../../engine/errors.js';
import type { OutgoingMessage } from '../endpoint/session-endpoint.js';
import { isBinaryData } from '../wire/resume-frame.js';
import type {
  ClientSessionChange,
  ClientSessionStore,
  StoredOutgoingMessage,
} from './client-session-store.js';

interface PendingChange {
  reset: boolean;
  identity: { id: Uint8Array; token: Uint8Array } | undefined;
  append: StoredOutgoingMessage[];
  peerAcked: number;
  received: number;
  delivered: number;
}

/**
 * Batches a resumable client's store writes: every change made within one tick joins one
 * `store.write()`, and changes made while a write is in flight join the next one, so a stream
 * costs one write per tick (or per write's duration, whichever is longer), not one per message.
 * Each promise resolves once the write that carried its change resolved. A failed write fails
 * every change after it: the caller reports it once through `onFailed`.
 */
export class ClientSessionWriter {
  private pending: PendingChange | undefined;
  private waiting: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  private writing = false;
  private scheduled = false;
  private failure: ClientSessionStoreError | undefined;
  private idle: (() => void)[] = [];
  /** Released ({@link suspend}): changes wait here, unwritten, until {@link reopen}. */
  private suspended = false;

  constructor(
    private readonly store: ClientSessionStore,
    private readonly onFailed: (error: ClientSessionStoreError) => void,
  ) {}

  get failed(): ClientSessionStoreError | undefined {
    return this.failure;
  }

  /** Joins `change` to the next write; resolves once it is stored. */
  write(change: ClientSessionChange): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    this.merge(change);
    const done = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.schedule();
    return done;
  }

  /** {@link write} for a change nobody waits for (a failure still reaches `onFailed`). */
  post(change: ClientSessionChange): void {
    if (this.failure) return;
    this.merge(change);
    this.schedule();
  }

  /** Resolves once nothing is waiting to be written (or a write failed). */
  settled(): Promise<void> {
    if ((!this.writing && (!this.pending || this.suspended)) || this.failure) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * The store is being let go (its `close()` follows): from now on changes wait unwritten, so no
   * write reaches a store that is no longer ours (a file store refuses it, and its failure would
   * poison this writer). Resolves once the write in flight, if any, settled.
   */
  suspend(): Promise<void> {
    this.suspended = true;
    return this.settled();
  }

  /**
   * The store is ours again (opened anew). `keep`: write what waited (the in-memory session goes
   * on); otherwise drop it, rejecting its waiters with `error` (it belonged to a session that is over).
   */
  reopen(keep: boolean, error?: unknown): void {
    this.suspended = false;
    if (!keep) {
      this.pending = undefined;
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    }
    if (this.pending) this.schedule();
  }

  private merge(change: ClientSessionChange): PendingChange {
    // A reset forgets what waited before it in this batch; the first change starts a batch.
    if (change.reset || !this.pending) {
      this.pending = {
        reset: change.reset === true,
        identity: undefined,
        append: [],
        peerAcked: 0,
        received: 0,
        delivered: 0,
      };
    }
    const pending = this.pending;
    if (change.identity) pending.identity = change.identity;
    if (change.append) for (const message of change.append) pending.append.push(message);
    pending.peerAcked = Math.max(pending.peerAcked, change.peerAcked ?? 0);
    pending.received = Math.max(pending.received, change.received ?? 0);
    pending.delivered = Math.max(pending.delivered, change.delivered ?? 0);
    return pending;
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return;
    this.scheduled = true;
    // One write per tick: what the rest of this tick changes joins it.
    queueMicrotask(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const pending = this.pending;
    if (!pending || this.writing || this.failure || this.suspended) return;
    this.pending = undefined;
    const waiting = this.waiting;
    this.waiting = [];
    const change: {
      -readonly [K in keyof ClientSessionChange]: ClientSessionChange[K];
    } = {};
    if (pending.reset) change.reset = true;
    if (pending.identity) change.identity = pending.identity;
    if (pending.append.length > 0) change.append = pending.append;
    if (pending.peerAcked > 0) change.peerAcked = pending.peerAcked;
    if (pending.received > 0) change.received = pending.received;
    if (pending.delivered > 0) change.delivered = pending.delivered;
    this.writing = true;
    let written: Promise<void>;
    try {
      written = this.store.write(change);
    } catch (error) {
      written = Promise.reject(error);
    }
    written.then(
      () => {
        this.writing = false;
        for (const waiter of waiting) waiter.resolve();
        if (this.pending && !this.suspended) this.flush();
        else for (const resolve of this.idle.splice(0)) resolve();
      },
      (error: unknown) => {
        this.writing = false;
        const failure =
          error instanceof ClientSessionStoreError
            ? error
            : new ClientSessionStoreError('write-failed', `a write failed: ${String(error)}`, {
                cause: error,
              });
        this.failure = failure;
        this.pending = undefined;
        for (const waiter of [...waiting, ...this.waiting.splice(0)]) waiter.reject(failure);
        for (const resolve of this.idle.splice(0)) resolve();
        this.onFailed(failure);
      },
    );
  }
}

/**
 * An outgoing message as a store keeps it: a copy of its payload bytes. The frame may be a view of
 * the shared slab (`encodeData`'s `pooled`) or of an oversized buffer; a store may keep it past the
 * window or structured-clone it (IndexedDB copies a view's whole `ArrayBuffer`).
 */
export function toStoredOutgoing(message: OutgoingMessage): StoredOutgoingMessage {
  const { frame, payloadOffset } = message;
  return {
    seq: message.seq,
    kind: isBinaryData(frame) ? 'binary' : 'text',
    // A copy (a Buffer frame's own `slice` would be a view of the slab: see `useFrameViews`).
    payload: new Uint8Array(frame.subarray(payloadOffset)),
  };
}
