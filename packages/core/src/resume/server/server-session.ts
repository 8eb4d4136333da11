import { Observable, Subject } from 'rxjs';
import {
  ClosedByUserError,
  ProtocolError,
  SessionLostError,
  type SessionLostReason,
  type UnacknowledgedMessage,
} from '../../engine/errors.js';
import type { LinkData } from '../../engine/link.js';
import {
  type DeliverySink,
  type FrameWriter,
  type OutgoingMessage,
  SessionEndpoint,
  type SessionEndpointOptions,
  type SessionEndpointStats,
} from '../endpoint/session-endpoint.js';
import { encodeClose, encodeData, type ResumeFrame, ResumeFrameType } from '../wire/resume-frame.js';
import { isFencedSessionStore } from './fenced-session-store.js';
import type { SessionStore, StoredMessage, StoredSession } from './session-store.js';

/** A message from the client, with what an idempotent handler needs: its sequence number in the session. */
export interface SessionMessage {
  readonly seq: number;
  /** Text as a string, binary as bytes. */
  readonly data: string | Uint8Array;
}

/** What happens to a server session. */
export type ServerSessionEvent =
  | { readonly type: 'connect' }
  | { readonly type: 'resume'; readonly takeover: boolean }
  | { readonly type: 'detach'; readonly error: unknown }
  | { readonly type: 'expire'; readonly unacknowledged: readonly UnacknowledgedMessage[] }
  | {
      readonly type: 'close';
      readonly by: 'server' | 'client' | 'store';
      readonly unacknowledged: readonly UnacknowledgedMessage[];
      /** By `'store'`: the store's error (`SessionStoreError`, or `StaleOwnerError` when another server took the session). */
      readonly error?: unknown;
    };

/** Options of {@link ServerSession.send}. */
export interface SessionSendOptions {
  /**
   * The upstream position after this message, stored with it when it is appended. A server that
   * takes the session over (after a crash, on another replica) reads the last one as
   * {@link ServerSession.resumeCursor} and continues the upstream right after it.
   * @default none
   * @see docs/durable-sessions.md
   */
  cursor?: string;
}

/** The physical link a session is on, as the server sees it. */
export interface SessionLinkHandle {
  write(frame: Uint8Array): void;
  /** `abrupt`: the peer is presumed gone, so no closing handshake is waited for. */
  close(code: number, reason: string, abrupt?: boolean): void;
}

/**
 * One client's session on the server, whatever link it is on at the moment. `messages$` delivers
 * the client's messages exactly once and in order; `send()` resolves when the client acknowledged.
 *
 * @example
 * ```ts
 * server.sessions$.subscribe((session) => {
 *   session.messages$.subscribe(({ seq, data }) => session.send(`echo ${seq}: ${data}`));
 * });
 * ```
 * @see createResumeServer
 */
export class ServerSession {
  readonly id: string;
  readonly messages$: Observable<SessionMessage>;
  readonly events$: Observable<ServerSessionEvent>;
  private readonly endpoint: SessionEndpoint;
  private readonly incoming = new Subject<SessionMessage>();
  private readonly events = new Subject<ServerSessionEvent>();
  private subscribers = 0;
  private link: SessionLinkHandle | undefined;
  private ended = false;
  private peerAckedToStore = 0;
  private peerAckFlush = false;
  private readonly sink: DeliverySink;
  private readonly cursors = new Map<number, string>();
  /**
   * For a session this process took over from the store (after a restart, from another replica, or
   * after a store error): the cursor of the last message appended before, so the application
   * continues its upstream right after it. `undefined` for a new session, or when no appended
   * message carried a cursor. Appended messages the client has not acknowledged are replayed by
   * the protocol; nothing after this cursor ever reached the client.
   * @see docs/durable-sessions.md
   */
  resumeCursor: string | undefined;
  /** @internal The owner epoch this process holds in a fencing store (`undefined`: writes are not fenced). */
  epoch: number | undefined;

  /** @internal Created by the resume server. */
  constructor(
    id: string,
    private readonly store: SessionStore,
    options: SessionEndpointOptions,
    private readonly onEnd: (session: ServerSession) => void,
  ) {
    this.id = id;
    this.endpoint = new SessionEndpoint(options, {
      persist: (messages) =>
        this.store.append(
          this.id,
          messages.map((message) => this.toStored(message)),
          this.epoch,
        ),
      persistReceived: (received) => this.store.acknowledge(this.id, { received }, this.epoch),
      peerAcked: (ack) => this.storePeerAck(ack),
      storeFailed: (error) => this.storeFailed(error),
      // On a store shared by replicas, another one may have claimed the session while this one
      // still holds a (half-open) link: a fenced write, issued after the messages arrived and
      // before they are delivered, proves the session is still ours. It stores nothing new
      // (`received` only rises; `ackable` is stored already, whereas `delivered` may be ahead of
      // answers not stored yet), and a refusal drops this copy without delivering.
      confirmOwner: isFencedSessionStore(store)
        ? () => this.store.acknowledge(this.id, { received: this.endpoint.ackable }, this.epoch)
        : undefined,
    });
    const incoming = this.incoming;
    const session = this;
    this.sink = {
      get ready() {
        return session.subscribers > 0;
      },
      deliver: (data, seq) => incoming.next({ seq, data }),
    };
    this.messages$ = new Observable<SessionMessage>((subscriber) => {
      const inner = incoming.subscribe(subscriber);
      this.subscribers++;
      // Messages that waited for a subscriber are delivered (and only then acknowledged) now.
      this.endpoint.pump();
      return () => {
        this.subscribers--;
        inner.unsubscribe();
      };
    });
    this.events$ = this.events.asObservable();
  }

  /** Whether a link is attached. */
  get connected(): boolean {
    return this.link !== undefined;
  }
  /** Whether the session is over (closed or expired). */
  get closed(): boolean {
    return this.ended;
  }
  /** Messages sent and not yet acknowledged by the client. */
  get pending(): number {
    return this.endpoint.pending;
  }
  /** The last client sequence number delivered to `messages$`. */
  get lastReceived(): number {
    return this.endpoint.delivered;
  }
  get stats(): SessionEndpointStats {
    return this.endpoint.stats;
  }

  /**
   * Sends a message to the client. Resolves when the client acknowledged it, across reconnects;
   * rejects with {@link SessionLostError} if the session expires or closes first. `cursor` is the
   * upstream position after this message (see {@link resumeCursor}).
   */
  send(data: LinkData, options?: SessionSendOptions): Promise<void> {
    const seq = this.endpoint.lastSent + 1;
    // Recorded first: the endpoint may append the message before send() returns.
    if (options?.cursor !== undefined) this.cursors.set(seq, options.cursor);
    const sent = this.endpoint.send(data);
    // A refused send takes no sequence number.
    if (this.endpoint.lastSent !== seq) this.cursors.delete(seq);
    return sent;
  }

  /** Ends the session: a CLOSE frame if a link is attached; unacknowledged sends reject with {@link ClosedByUserError}. */
  close(reason = ''): void {
    if (this.ended) return;
    this.link?.write(encodeClose(0, reason));
    this.end('server', undefined, undefined, 1000, reason);
  }

  /** @internal The endpoint, for the handshake's checks. */
  get state(): SessionEndpoint {
    return this.endpoint;
  }

  /** @internal A link finished the handshake for this session: WELCOME goes out as the preamble. */
  attachLink(
    link: SessionLinkHandle,
    peerLastReceived: number,
    welcome: Uint8Array,
    event: ServerSessionEvent,
  ): void {
    const previous = this.link;
    this.link = link;
    // A link still attached is presumed half-open: the client would not resume otherwise.
    if (previous && previous !== link) previous.close(1001, 'session taken over by a new link', true);
    const writer: FrameWriter = (frame) => link.write(frame);
    this.endpoint.connect(writer, peerLastReceived, this.sink, welcome);
    this.events.next(event);
  }

  /** @internal The link is gone (closed, failed, idle, or broke the protocol). */
  detachLink(link: SessionLinkHandle, error: unknown): boolean {
    if (this.link !== link) return false;
    this.link = undefined;
    this.endpoint.disconnect();
    this.events.next({ type: 'detach', error });
    return true;
  }

  /** @internal Handles a DATA, ACK or CLOSE frame on the attached link; returns the error that must close it. */
  receive(frame: ResumeFrame): ProtocolError | undefined {
    switch (frame.type) {
      case 'data':
        return this.endpoint.receiveData(frame.seq, frame.ack, frame.data);
      case 'ack':
        return this.endpoint.receiveAck(frame.ack);
      case 'close':
        this.end('client', 'closed-by-peer', undefined, 1000, 'session closed by the client');
        return undefined;
      default:
        return new ProtocolError(`unexpected ${frame.type.toUpperCase()} frame after the handshake`);
    }
  }

  /** @internal Loads the state of a session this process did not create (a durable store, after a restart). */
  restore(record: StoredSession): void {
    this.epoch = record.epoch;
    this.resumeCursor = record.cursor ?? undefined;
    this.endpoint.restore({
      peerAcked: record.peerAcked,
      received: record.received,
      messages: record.replay.map((stored) => fromStored(stored, record.received)),
    });
  }

  /** @internal The detached session outlived its time-to-live. */
  expire(): void {
    this.end('expire', 'expired');
  }

  /**
   * @internal The server is closing: the session ends in this process (pending sends reject with
   * {@link ClosedByUserError}) but stays in the store, where a durable store keeps it resumable.
   */
  shutdown(): void {
    this.end('server', undefined, undefined, 1001, 'server closing', true);
  }

  /**
   * @internal A store write failed (whether it happened is unknown) or was fenced (another server
   * owns the session now): this process drops its copy, leaving the store's record untouched, and
   * closes the link with 1011 so the client resumes from what the store holds.
   */
  storeFailed(error: unknown): void {
    this.end('store', 'store-failed', error, 1011, 'session store failed', true);
  }

  private end(
    by: 'server' | 'client' | 'store' | 'expire',
    reason: SessionLostReason | undefined,
    cause?: unknown,
    code = 1011,
    closeReason = '',
    keepStored = false,
  ): void {
    if (this.ended) return;
    this.ended = true;
    const link = this.link;
    this.link = undefined;
    const list = this.endpoint.end((unacknowledged) =>
      reason === undefined
        ? new ClosedByUserError(keepStored ? 'resume server closed' : 'session closed by the server')
        : new SessionLostError(reason, this.id, unacknowledged, { cause }),
    );
    this.cursors.clear();
    link?.close(code, closeReason);
    // Fenced: a copy that lost the session to another server must not delete the owner's record.
    // A delete that fails (the store is down, or fenced by a newer owner) leaves a record that the
    // store's TTL sweep removes anyway; the session is over for this server either way.
    if (!keepStored) void this.store.delete(this.id, this.epoch).catch(() => {});
    this.onEnd(this);
    this.events.next(
      by === 'expire'
        ? { type: 'expire', unacknowledged: list }
        : by === 'store'
          ? { type: 'close', by, unacknowledged: list, error: cause }
          : { type: 'close', by, unacknowledged: list },
    );
    this.events.complete();
    this.incoming.complete();
  }

  /** Acks are stored lazily and coalesced: a resume re-sends the client's position anyway. */
  private storePeerAck(ack: number): void {
    this.peerAckedToStore = ack;
    if (this.peerAckFlush) return;
    this.peerAckFlush = true;
    queueMicrotask(() => {
      this.peerAckFlush = false;
      if (this.ended) return;
      this.store.acknowledge(this.id, { peerAcked: this.peerAckedToStore }, this.epoch).catch((error) => {
        this.storeFailed(error);
      });
    });
  }

  private toStored(message: OutgoingMessage): StoredMessage {
    const { frame, payloadOffset } = message.encoded;
    const stored: StoredMessage = {
      seq: message.seq,
      kind: frame[0] === ResumeFrameType.DataText ? 'text' : 'binary',
      payload: frame.subarray(payloadOffset),
    };
    const cursor = this.cursors.get(message.seq);
    if (cursor === undefined) return stored;
    this.cursors.delete(message.seq);
    return { ...stored, cursor };
  }
}

const settled = () => {};

function fromStored(stored: StoredMessage, ack: number): OutgoingMessage {
  const encoded = encodeData(stored.seq, ack, stored.payload);
  if (stored.kind === 'text') encoded.frame[0] = ResumeFrameType.DataText;
  // Whoever awaited this message lived in the process that stored it: nothing waits here.
  return { seq: stored.seq, size: stored.payload.length, encoded, resolve: settled, reject: settled };
}
