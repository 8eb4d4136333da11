import type { Subscriber, Subscription, TeardownLogic } from 'rxjs';
// From their modules: the server's import graph stays clear of rxjs's index (see engine/clock.ts).
import { Observable } from 'rxjs/internal/Observable';
import { Subject } from 'rxjs/internal/Subject';
import {
  ClosedByUserError,
  InvalidOptionError,
  ProtocolError,
  SessionLostError,
  type SessionLostReason,
  type UnacknowledgedMessage,
} from '../../engine/errors.js';
import { invalidMessageError, isLinkData, type LinkData } from '../../engine/link.js';
import { CloseCode } from '../../policy/close-codes.js';
import {
  type DeliverySink,
  type FrameWriter,
  type OutgoingMessage,
  outgoingMessage,
  type SessionEndpointHooks,
  type SessionEndpointOptions,
  type SessionEndpointStats,
  settlePromise,
} from '../endpoint/session-endpoint.js';
import {
  encodeClose,
  encodeData,
  isBinaryData,
  type ResumeFrame,
  ResumeFrameType,
} from '../wire/resume-frame.js';
import type { SessionAuth } from './digest.js';
import { ParkableEndpoint, type ParkedEndpoint } from './parkable-endpoint.js';
import type { SessionStore, StoredMessage, StoredSession } from './session-store.js';
import type { StoreLoad } from './store-load.js';

/** A message from the client, with what an idempotent handler needs: its sequence number in the session. */
export interface SessionMessage {
  readonly seq: number;
  /** Text as a string, binary as bytes. */
  readonly data: string | Uint8Array;
  /**
   * Whether an earlier server (a process that crashed or closed, another replica) may already
   * have handed this message to the application: its seq is at or below the "delivered"
   * watermark that server stored before delivering. `false` guarantees it was not, so only a
   * flagged message needs a look at the application's idempotency record. The same process never
   * delivers a message twice.
   * @see docs/protocol.md, "Processing guarantees"
   */
  readonly redelivered: boolean;
  /**
   * With `ack: 'manual'`: the application is done with this message (its effect is stored), so
   * the server may store it as received and acknowledge it to the client; until then a crash
   * redelivers it (flagged). Call it once the effect is durable. Without manual acknowledgement
   * it does nothing. Idempotent.
   */
  ack(): void;
}

/** How a session's deliveries become "received" (stored, then acknowledged to the client). */
export type SessionAckMode = 'auto' | 'manual';

/** What happens to a server session. */
export type ServerSessionEvent =
  | { readonly type: 'connect' }
  | { readonly type: 'resume'; readonly takeover: boolean }
  | { readonly type: 'detach'; readonly error: unknown }
  /**
   * A fire-and-forget {@link ServerSession.send} the session refused at once (larger than
   * `maxFrameBytes`, the replay window full under `onWindowFull: 'reject'` or its waiting sends at
   * their limit): the message was not taken. Sends the session took and could not deliver are
   * listed in the `unacknowledged` of its `close` or `expire` event instead.
   */
  | { readonly type: 'send-failed'; readonly error: unknown; readonly data: LinkData }
  | { readonly type: 'expire'; readonly unacknowledged: readonly UnacknowledgedMessage[] }
  | {
      readonly type: 'close';
      readonly by: 'server' | 'client' | 'store';
      readonly unacknowledged: readonly UnacknowledgedMessage[];
      /** By `'store'`: the store's error (`SessionStoreError`, or `StaleOwnerError` when another server took the session). */
      readonly error?: unknown;
    };

/** The options of a server session (the server's, see `ResumeServerOptions`). */
export interface ServerSessionOptions extends SessionEndpointOptions {
  /**
   * `'auto'`: a message counts as received (stored, then acknowledged to the client) once it was
   * handed to the application: a crash after the hand-over and before that write makes the next
   * server deliver it again, flagged `redelivered`. `'manual'`: only once the application
   * acknowledges it ({@link SessionMessage.ack} or {@link ServerSession.ack}), after its side
   * effect is done: a crash before the acknowledgement redelivers it (flagged), a crash after
   * never does. Unacknowledged messages stay in the client's replay window, so an application
   * that holds many slows its client down (and counts against `maxUnreadMessages`).
   * @default 'auto'
   * @see docs/protocol.md, "Processing guarantees"
   */
  ack?: SessionAckMode;
}

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
  /** The protocol version the link negotiated (GOAWAY needs 2). @default 1 */
  readonly version?: number;
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
  /** The endpoint, unless parked: see {@link endpoint}. */
  private live: ParkableEndpoint | undefined;
  /** While detached and idle: what the endpoint must keep, in place of it (~0.6 KB less). */
  private parked: ParkedEndpoint | undefined;
  private readonly options: ServerSessionOptions;
  /**
   * The subscribers of messages$, in subscription order: the first in a field, the others in a
   * list made for a second one. Not a Subject: one per session costs ~0.5 KB with its arrays.
   * No teardown per subscriber either (rxjs would keep it in an array of its own, ~0.2 KB): one
   * that unsubscribed is `closed`, and is dropped the next time the list is read.
   */
  private reader: Subscriber<SessionMessage> | undefined;
  private moreReaders: Subscriber<SessionMessage>[] | undefined;
  /** Created when someone watches events$ (until then an event reaches nobody). */
  private events: Subject<ServerSessionEvent> | undefined;
  private eventsView: Observable<ServerSessionEvent> | undefined;
  private link: SessionLinkHandle | undefined;
  private ended = false;
  /** The client sent CLOSE: the session ends once what arrived before it is delivered and acknowledged. */
  private closeRequested = false;
  private peerAckedToStore = 0;
  private peerAckFlush = false;
  private readonly sink: DeliverySink;
  /** Cursors of sends not appended yet, by seq; created on the first send that gives one. */
  private cursors: Map<number, string> | undefined;
  /** Client messages at or below this may have been handed to the application by an earlier server. */
  /** @internal */
  redeliverUpTo = 0;
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
  /**
   * @internal What the server checks this session's token against, set by the server as it
   * takes the session; a field here rather than an entry in a second map keyed by session id.
   */
  auth: SessionAuth | undefined = undefined;

  /** @internal Created by the resume server. */
  constructor(
    id: string,
    /** @internal */
    readonly store: SessionStore,
    options: ServerSessionOptions,
    private readonly onEnd: (session: ServerSession) => void,
  ) {
    this.id = id;
    const manualAck = options.ack === 'manual';
    if (options.ack !== undefined && options.ack !== 'auto' && !manualAck) {
      throw new InvalidOptionError(`ack must be 'auto' or 'manual', got ${String(options.ack)}`);
    }
    const bridge = new SessionBridge(this, manualAck);
    this.options = options;
    this.live = new ParkableEndpoint(options, bridge);
    this.sink = bridge;
    this.messages$ = new SessionMessages(this);
  }

  /**
   * The session's endpoint. A detached session with nothing under way keeps only a
   * {@link ParkedEndpoint} (the watermarks and the unacknowledged messages, with their promises);
   * whatever needs the endpoint (a resume, a send, an ack, a getter) builds it again from that.
   */
  private get endpoint(): ParkableEndpoint {
    let endpoint = this.live;
    if (endpoint === undefined) {
      endpoint = new ParkableEndpoint(this.options, this.sink as SessionBridge);
      endpoint.unpark(this.parked!);
      this.parked = undefined;
      this.live = endpoint;
    }
    return endpoint;
  }

  /** @internal Whether the endpoint is parked (for tests). */
  get isParked(): boolean {
    return this.live === undefined;
  }

  /** @internal A new subscriber of messages$ (see {@link SessionMessages}). */
  addReader(subscriber: Subscriber<SessionMessage>): void {
    // As a completed Subject does: a subscriber that comes after the end is completed at once.
    if (this.ended) {
      subscriber.complete();
      return;
    }
    this.pruneReaders();
    if (this.reader === undefined) this.reader = subscriber;
    else {
      this.moreReaders ??= [];
      this.moreReaders.push(subscriber);
    }
    // Messages that waited for a subscriber are delivered (and only then acknowledged) now. A
    // parked endpoint has none (undelivered messages are dropped with the link).
    this.live?.pump();
  }

  /** Drops the subscribers that unsubscribed, keeping the order of the others. */
  private pruneReaders(): void {
    const more = this.moreReaders;
    if (more !== undefined && more.length > 0) {
      let kept = 0;
      for (const reader of more) if (!reader.closed) more[kept++] = reader;
      more.length = kept;
    }
    while (this.reader?.closed) this.reader = this.moreReaders?.shift();
  }

  /** What happens to the session: connects, resumes, detaches, refused sends, and its end. */
  get events$(): Observable<ServerSessionEvent> {
    this.eventsView ??= this.eventSubject().asObservable();
    return this.eventsView;
  }

  private eventSubject(): Subject<ServerSessionEvent> {
    if (!this.events) {
      this.events = new Subject();
      if (this.ended) this.events.complete();
    }
    return this.events;
  }

  /** @internal Whether messages$ has a subscriber (delivery waits for one). */
  get reading(): boolean {
    if (this.reader?.closed) this.pruneReaders();
    return this.reader !== undefined;
  }

  /** @internal Hands a message to every subscriber of messages$, as a Subject would (a snapshot of them). */
  emit(message: SessionMessage): void {
    const more = this.moreReaders;
    if (more === undefined || more.length === 0) {
      this.reader?.next(message);
      return;
    }
    // A subscriber that unsubscribed is closed, and its next() does nothing.
    for (const reader of [this.reader, ...more]) reader?.next(message);
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
  /**
   * The last client sequence number counted as received: delivered (`ack: 'auto'`) or acknowledged
   * by the application in order (`ack: 'manual'`). It is stored, then acknowledged to the client.
   */
  get lastAcknowledged(): number {
    return this.endpoint.applicationAcked;
  }
  get stats(): SessionEndpointStats {
    return this.endpoint.stats;
  }
  /**
   * The public fields, for `JSON.stringify` and JSON loggers: `{ id, connected, closed, pending,
   * lastReceived, lastAcknowledged, resumeCursor }`. A session's other fields reach the store (every
   * session's records, with their token digests and messages) and the link: none of that is written out.
   * `util.inspect` shows the same (set by the server, see `setPrintViews`).
   */
  toJSON(): object {
    return {
      id: this.id,
      connected: this.connected,
      closed: this.closed,
      pending: this.pending,
      lastReceived: this.lastReceived,
      lastAcknowledged: this.lastAcknowledged,
      resumeCursor: this.resumeCursor,
    };
  }

  /**
   * Sends a message to the client, fire-and-forget: ignoring the returned promise is safe, it
   * never becomes an unhandled rejection. The outcome is reported by the session: a message
   * refused at once (too large, window full) by a `send-failed` event on {@link events$}; one
   * taken and never acknowledged (the client closed, the session expired or was lost) in the
   * `unacknowledged` list of the `close` or `expire` event. The promise still settles as
   * {@link sendAsync}'s does, for code that awaits it. `cursor` is the upstream position after
   * this message (see {@link resumeCursor}). Code that never looks at the promise can use
   * {@link post}, which makes none.
   *
   * @throws {InvalidMessageError} synchronously, when `data` is not a string or bytes (nothing is sent).
   * @example
   * ```ts
   * session.messages$.subscribe(({ data }) => session.send(`echo:${data}`));
   * ```
   */
  send(data: LinkData, options?: SessionSendOptions): Promise<void> {
    // A programming error, thrown where it was made rather than reported later on events$.
    if (!isLinkData(data)) throw invalidMessageError(data);
    // Quiet: why that is harmless, every failure is reported on events$ (a refusal below, or the
    // close or expire event listing the message), and a caller that awaits it still sees it reject.
    return this.sendPromised(data, options, true);
  }

  /**
   * {@link send} without a promise, for code that does not await its sends (a drop-in for
   * fire-and-forget `send()`): the message is numbered, stored (with a durable store), kept for
   * replay and written exactly as `send` does, and its outcome is reported the same way: a message
   * refused at once (larger than `maxFrameBytes`, the replay window full under `onWindowFull:
   * 'reject'`, or its waiting sends at their limit) by a `send-failed` event on {@link events$}
   * (in a microtask, not from inside this call); one taken and never acknowledged (the client
   * closed, the session expired or was lost) in the `unacknowledged` list of the `close` or
   * `expire` event. After the session ended nothing is taken and nothing more is reported (its
   * `close` or `expire` event was the report). Saves the promise and its resolving functions per
   * message: 0.2-0.3 KB less held per unacknowledged message than `send()` (`pnpm bench server`).
   *
   * @param data text (sent as UTF-8) or bytes (copied: the caller may reuse its buffer at once)
   * @param options `cursor`: the upstream position after this message (see {@link resumeCursor})
   * @throws {InvalidMessageError} synchronously, when `data` is not a string or bytes (nothing is sent).
   * @example
   * ```ts
   * session.messages$.subscribe(({ data }) => session.post(`echo:${data}`));
   * session.events$.subscribe((event) => event.type === 'send-failed' && log(event.error));
   * ```
   * @see docs/protocol.md, "Server sends"
   */
  post(data: LinkData, options?: SessionSendOptions): void {
    if (!isLinkData(data)) throw invalidMessageError(data);
    const seq = this.recordCursor(options);
    const refused = this.endpoint.post(data);
    if (refused === undefined) return;
    this.cursors?.delete(seq);
    if (this.ended) return;
    // In a microtask, as send()'s report is: a listener never runs inside the call that posted.
    queueMicrotask(() => this.events?.next({ type: 'send-failed', error: refused, data }));
  }

  /**
   * Sends a message to the client and resolves when the client acknowledged it, across
   * reconnects. Rejects with {@link SessionLostError} if the session expires or is lost first,
   * with `ClosedByUserError` if the server closes it, at once with `FrameTooLargeError` or
   * `ReplayWindowFullError` when the message cannot be taken, with `InvalidMessageError` when
   * `data` is not a string or bytes: handle the rejection (await it), or use {@link send}. `cursor` is the upstream position after this message (see
   * {@link resumeCursor}).
   */
  sendAsync(data: LinkData, options?: SessionSendOptions): Promise<void> {
    return this.sendPromised(data, options, false);
  }

  /** {@link sendAsync}, and `quiet`: {@link send}'s promise, never an unhandled rejection. */
  private sendPromised(
    data: LinkData,
    options: SessionSendOptions | undefined,
    quiet: boolean,
  ): Promise<void> {
    const seq = this.recordCursor(options);
    const deferred = new Deferred();
    const refused = this.endpoint.post(data, quiet ? settleQuietly : settlePromise, deferred);
    const sent = deferred.promise;
    // Refused at once: it took no sequence number.
    if (refused !== undefined) {
      this.cursors?.delete(seq);
      deferred.reject(refused);
      // Reported while the session lives (after it ended, its close event was the report). Also
      // what keeps a refused quiet send from being an unhandled rejection.
      if (!this.ended) sent.catch((error) => this.events?.next({ type: 'send-failed', error, data }));
      else if (quiet) sent.catch(noAck);
    }
    return sent;
  }

  /** Keeps a send's `cursor` for its append; returns the seq the send will have if taken. */
  private recordCursor(options: SessionSendOptions | undefined): number {
    const seq = this.endpoint.lastSent + 1;
    // Recorded first: the endpoint may append the message before send() returns.
    if (options?.cursor !== undefined) {
      this.cursors ??= new Map();
      this.cursors.set(seq, options.cursor);
    }
    return seq;
  }

  /**
   * With `ack: 'manual'`: the application is done with every delivered message up to `seq`
   * (cumulative, as {@link SessionMessage.ack} is for one message). Returns false when `seq` was
   * not delivered yet or the session acknowledges automatically.
   */
  ack(seq: number): boolean {
    return this.endpoint.applicationAck(seq, true);
  }

  /** Ends the session: a CLOSE frame if a link is attached; unacknowledged sends reject with {@link ClosedByUserError}. */
  close(reason = ''): void {
    if (this.ended) return;
    // What was delivered is acknowledged first, flagged "the ack may wait" or not: the client's
    // sends that reached us settle as delivered, not as lost with the session.
    this.endpoint.flushAck();
    this.link?.write(encodeClose(0, reason));
    this.end('server', undefined, undefined, CloseCode.NormalClosure, reason);
  }

  /** @internal The endpoint, for the handshake's checks. */
  get state(): ParkableEndpoint {
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
    if (previous && previous !== link)
      previous.close(CloseCode.GoingAway, 'session taken over by a new link', true);
    const writer: FrameWriter = (frame) => link.write(frame);
    this.endpoint.lazyLink_ = (link.version ?? 1) > 2;
    this.endpoint.connect(writer, peerLastReceived, this.sink, welcome);
    this.events?.next(event);
  }

  /** @internal The link is gone (closed, failed, idle, or broke the protocol). */
  detachLink(link: SessionLinkHandle, error: unknown): boolean {
    if (this.link !== link) return false;
    this.link = undefined;
    // Closed by the client: what arrived before its CLOSE is still delivered (the ACK owed goes
    // nowhere now; writes to a closed link are dropped). The server's TTL bounds a store that
    // never answers.
    if (this.closeRequested) return true;
    this.endpoint.disconnect();
    this.pruneReaders();
    this.park();
    this.events?.next({ type: 'detach', error });
    return true;
  }

  /**
   * @internal Detached with nothing under way (no store write pending, nothing waiting to be
   * stored or delivered): keeps what must survive in place of the endpoint. Called at the detach,
   * and by the server's sweep for a session that was busy then.
   */
  park(): void {
    const endpoint = this.live;
    if (endpoint === undefined || this.link !== undefined || this.ended) return;
    const parked = endpoint.park();
    if (parked === undefined) return;
    this.parked = parked;
    this.live = undefined;
  }

  /** @internal Handles a DATA, ACK or CLOSE frame on the attached link; returns the error that must close it. */
  receive(frame: ResumeFrame): ProtocolError | undefined {
    switch (frame.type) {
      case 'data':
        // Nothing follows a CLOSE: a peer that sends on has no promise left to keep.
        if (this.closeRequested) return undefined;
        return this.endpoint.receiveData(frame.seq, frame.ack, frame.data, frame.lazy);
      case 'ack':
        return this.endpoint.receiveAck(frame.ack);
      case 'close': {
        if (this.closeRequested) return undefined;
        // The DATA frames before the CLOSE may still wait for the store's "delivered" step:
        // ending now would drop them, unacknowledged, though the client wrote them before it
        // closed. They are delivered and acknowledged first, as a server's own close does.
        this.closeRequested = true;
        const endpoint = this.endpoint;
        endpoint.onProgress_ = () => this.endWhenDrained();
        this.endWhenDrained();
        return undefined;
      }
      default:
        return new ProtocolError(`unexpected ${frame.type.toUpperCase()} frame after the handshake`);
    }
  }

  /** Ends a session its client closed once what it sent before the CLOSE is delivered: the ACK owed first. */
  private endWhenDrained(): void {
    if (this.ended || !this.endpoint.drained(this.reading)) return;
    this.endpoint.flushAck();
    this.end('client', 'closed-by-peer', undefined, CloseCode.NormalClosure, 'session closed by the client');
  }

  /** @internal Loads the state of a session this process did not create (a durable store, after a restart). */
  restore(record: StoredSession): void {
    this.epoch = record.epoch;
    this.redeliverUpTo = Math.max(record.delivered ?? 0, record.received);
    this.resumeCursor = record.cursor ?? undefined;
    this.endpoint.restore({
      peerAcked: record.peerAcked,
      received: record.received,
      messages: record.replay.map((stored) => fromStored(stored, record.received)),
    });
  }

  /**
   * @internal The server is closing gracefully: delivers nothing more, waits until what was
   * delivered is stored as received, acknowledges it, and writes `goAway` on a link that speaks
   * version 2. Resolves once the link is gone (the client left), at once without a link or on a
   * version-1 link (the server closes those).
   */
  async handOff(goAway: Uint8Array): Promise<void> {
    await this.endpoint.freeze();
    // Closed by its client meanwhile: nothing more is delivered, the session ends now.
    if (this.closeRequested) this.endWhenDrained();
    const link = this.link;
    if (!link || this.ended || (link.version ?? 1) < 2) return;
    let watch: Subscription | undefined;
    const left = new Promise<void>((resolve) => {
      watch = this.eventSubject().subscribe({
        next: (event) => {
          if (event.type === 'detach') resolve();
        },
        complete: resolve,
      });
    });
    this.endpoint.flushAck();
    link.write(goAway);
    await left;
    watch?.unsubscribe();
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
    this.end('server', undefined, undefined, CloseCode.GoingAway, 'server closing', true);
  }

  /**
   * @internal A store write failed (whether it happened is unknown) or was fenced (another server
   * owns the session now): this process drops its copy, leaving the store's record untouched, and
   * closes the link with 1011 so the client resumes from what the store holds.
   */
  storeFailed(error: unknown): void {
    this.end('store', 'store-failed', error, CloseCode.InternalError, 'session store failed', true);
  }

  private end(
    by: 'server' | 'client' | 'store' | 'expire',
    reason: SessionLostReason | undefined,
    cause?: unknown,
    code = CloseCode.InternalError,
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
    this.cursors = undefined;
    link?.close(code, closeReason);
    // Fenced: a copy that lost the session to another server must not delete the owner's record.
    // A delete that fails (the store is down, or fenced by a newer owner) leaves a record that the
    // store's TTL sweep removes anyway; the session is over for this server either way.
    if (!keepStored) void this.store.delete(this.id, this.epoch).catch(() => {});
    this.onEnd(this);
    this.events?.next(
      by === 'expire'
        ? { type: 'expire', unacknowledged: list }
        : by === 'store'
          ? { type: 'close', by, unacknowledged: list, error: cause }
          : { type: 'close', by, unacknowledged: list },
    );
    this.events?.complete();
    const readers = [this.reader, ...(this.moreReaders ?? [])];
    this.reader = this.moreReaders = undefined;
    for (const reader of readers) if (reader && !reader.closed) reader.complete();
  }

  /** @internal Acks are stored lazily and coalesced: a resume re-sends the client's position anyway. */
  storePeerAck(ack: number): void {
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

  /**
   * @internal The message as the store is handed it: plain data ({@link StoredMessage}'s fields as
   * own data properties, which a store may spread, clone or serialise), except for this package's
   * MemorySessionStore, which gets a {@link StoredFrame} (see {@link StoreLoad.holdsFrames}).
   */
  toStored(message: OutgoingMessage): StoredMessage {
    const cursor = this.cursors?.get(message.seq);
    if (cursor !== undefined) this.cursors!.delete(message.seq);
    if ((this.store as Partial<StoreLoad>).holdsFrames === true) {
      return new StoredFrame(message.seq, message.frame, message.payloadOffset, cursor);
    }
    const frame = message.frame;
    const stored: { seq: number; kind: 'text' | 'binary'; payload: Uint8Array; cursor?: string } = {
      seq: message.seq,
      kind: isBinaryData(frame) ? 'binary' : 'text',
      payload: frame.subarray(message.payloadOffset),
    };
    if (cursor !== undefined) stored.cursor = cursor;
    return stored;
  }
}

/**
 * A sent message as the MemorySessionStore holds it, and only that store (whose `load()` gives
 * out plain copies): its payload is a view of the frame the session holds anyway, made when it is
 * read, not held beside the frame, which would be a second typed array per unacknowledged message
 * (~0.13 KB, `pnpm bench server`). Its `kind` and `payload` are prototype getters, which a spread,
 * `structuredClone` or `JSON.stringify` would lose: every other store gets plain data. One shape
 * whether or not a cursor is given.
 */
class StoredFrame implements StoredMessage {
  constructor(
    readonly seq: number,
    private readonly frame: Uint8Array,
    private readonly payloadOffset: number,
    readonly cursor: string | undefined,
  ) {}

  get kind(): 'text' | 'binary' {
    return isBinaryData(this.frame) ? 'binary' : 'text';
  }

  get payload(): Uint8Array {
    return this.frame.subarray(this.payloadOffset);
  }
}

const noAck = () => {};

/**
 * The promise of a `send()`, with its resolving functions: the token its message carries to
 * {@link settlePromise}. One object, and no executor closure per send (server-side, where
 * unacknowledged messages are many; `pnpm bench server`).
 */
class Deferred {
  readonly promise: Promise<void>;
  resolve: () => void = noAck;
  reject: (error: unknown) => void = noAck;
  constructor() {
    deferring = this;
    this.promise = new Promise<void>(captureResolvers);
  }
}

/** The {@link Deferred} under construction: the executor runs synchronously, inside its constructor. */
let deferring: Deferred | undefined;

function captureResolvers(resolve: () => void, reject: (error: unknown) => void): void {
  const deferred = deferring!;
  deferring = undefined;
  deferred.resolve = resolve;
  deferred.reject = reject;
}

/**
 * {@link settlePromise} for a fire-and-forget `send()`: the rejection is handled as it happens,
 * so it never becomes an unhandled rejection, and costs a reaction only then (not a derived
 * promise per send, held until the client acknowledges).
 */
function settleQuietly(error: unknown, token: object): void {
  if (error !== undefined) (token as Deferred).promise.catch(noAck);
  settlePromise(error, token);
}

/**
 * `messages$`: its subscribers are the session's own list (see {@link ServerSession.addReader}),
 * with no closure or teardown per session or subscriber.
 */
class SessionMessages extends Observable<SessionMessage> {
  constructor(private readonly session: ServerSession) {
    super();
  }

  /**
   * @internal What `new Observable(fn)` sets to `fn`: rxjs 7 calls it once per subscribe (the
   * subclass saves a closure and its context per session).
   */
  protected _subscribe(subscriber: Subscriber<SessionMessage>): TeardownLogic {
    this.session.addReader(subscriber);
    return undefined;
  }
}

/**
 * The endpoint's store hooks and delivery sink for one session: one object whose methods live on
 * the prototype, rather than an object literal with a closure per hook and a getter (which costs
 * a dictionary-mode object and about 0.8 KB per session; `pnpm bench server`).
 */
class SessionBridge implements SessionEndpointHooks, DeliverySink {
  constructor(
    private readonly session: ServerSession,
    readonly manualAck: boolean,
  ) {}

  persist(messages: readonly OutgoingMessage[]): Promise<void> {
    const session = this.session;
    return session.store.append(
      session.id,
      messages.map((message) => session.toStored(message)),
      session.epoch,
    );
  }

  persistReceived(received: number): Promise<void> {
    return this.session.store.acknowledge(this.session.id, { received }, this.session.epoch);
  }

  peerAcked(ack: number): void {
    this.session.storePeerAck(ack);
  }

  storeFailed(error: unknown): void {
    this.session.storeFailed(error);
  }

  // Written ahead of every delivery: the "delivered" watermark tells a later server which
  // messages this one may have handed the application (it flags them `redelivered`). On a
  // store shared by replicas, another one may have claimed the session while this one still
  // holds a (half-open) link: the write is fenced, issued after the messages arrived and before
  // they are delivered, so it also proves the session is still ours; a refusal drops this copy
  // without delivering.
  confirmOwner(upTo: number): Promise<void> {
    return this.session.store.acknowledge(this.session.id, { delivered: upTo }, this.session.epoch);
  }

  get ready(): boolean {
    return this.session.reading;
  }

  deliver(data: string | Uint8Array, seq: number): void {
    const session = this.session;
    session.emit({
      seq,
      data,
      redelivered: seq <= session.redeliverUpTo,
      ack: this.manualAck ? () => void session.state.applicationAck(seq, false) : noAck,
    });
  }
}

function fromStored(stored: StoredMessage, ack: number): OutgoingMessage {
  const encoded = encodeData(stored.seq, ack, stored.payload);
  if (stored.kind === 'text') encoded.frame[0] = ResumeFrameType.DataText;
  // Whoever awaited this message lived in the process that stored it: nothing waits here.
  return outgoingMessage(
    stored.seq,
    stored.payload.length,
    encoded.frame,
    encoded.payloadOffset,
    ack,
    undefined,
    undefined,
  );
}
