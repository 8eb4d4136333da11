import { type Observable, Observable as RxObservable, type SchedulerLike, type Subscription } from 'rxjs';
import type { DiagnosticsOptions } from '../../diagnostics/diagnostics.js';
import { unawaited } from '../../engine/attach.js';
import { monotonicScheduler } from '../../engine/clock.js';
import { type SessionDiagnosticsPort, sessionDiagnosticsFor } from '../../engine/diagnostics-hook.js';
import {
  ClientSessionStoreError,
  ClosedByUserError,
  FrameTooLargeError,
  GoAwayError,
  LifelineError,
  LinkClosedError,
  LinkFailedError,
  MalformedFrameError,
  ProtocolError,
  SessionLostError,
  type SessionLostReason,
  SessionRejectedError,
  type UnacknowledgedMessage,
} from '../../engine/errors.js';
import type { Link, LinkData, LinkReader, Transport } from '../../engine/link.js';
import { MessageFanout } from '../../engine/message-fanout.js';
import { DEFAULT_QUEUE_MAX_BYTES, QUEUE_ENTRY_OVERHEAD_BYTES } from '../../engine/outgoing-queue.js';
import { reportException } from '../../engine/report-exception.js';
import { CloseCode } from '../../policy/close-codes.js';
import { LinkOutput, type LinkOutputPort, outputHighWaterOf } from '../endpoint/link-output.js';
import {
  DEFAULT_MAX_UNREAD_MESSAGES,
  type DeliverySink,
  type FrameWriter,
  type OutgoingMessage,
  outgoingMessage,
  SessionEndpoint,
  type SessionEndpointHooks,
  type SessionEndpointOptions,
  type SessionEndpointStats,
} from '../endpoint/session-endpoint.js';
import { checkResumableOptions } from '../option-checks.js';
import {
  dataHeaderLength,
  decodeServerSent,
  encodeAck,
  encodeClose,
  encodeDataFrame,
  encodeHello,
  encodePing,
  encodePong,
  frameBytes,
  MIN_RESUME_PROTOCOL_VERSION,
  RESUME_PROTOCOL_VERSION,
  type ResumeFrame,
  ResumeFrameType,
} from '../wire/resume-frame.js';
import { bytesToHex } from '../wire/session-token.js';
import type {
  ClientSessionChange,
  ClientSessionStore,
  RestoredClientSession,
  StoredClientSession,
  StoredOutgoingMessage,
} from './client-session-store.js';
import { ClientSessionWriter, toStoredOutgoing } from './client-session-writer.js';

/**
 * Options of {@link resumable}. On the client, `maxWaitingMessages` defaults to
 * {@link CLIENT_MAX_WAITING_MESSAGES} (32,768) and `maxWaitingBytes` to 16 MiB, the bounds of
 * `attach`'s outgoing queue, so what it held through an outage fits when it is flushed.
 */
export interface ResumableOptions extends SessionEndpointOptions, DiagnosticsOptions {
  /**
   * A link whose WELCOME (or REJECT) does not arrive within this time is closed and the open fails
   * with a recoverable {@link LinkFailedError} (`ETIMEDOUT`), so `attach` reopens. In ms, from 1
   * to 2^31 - 1.
   * @default 10_000
   */
  handshakeTimeoutMs?: number;
  /**
   * Runs after a session was lost and a new one started, before `open()` hands out the new link:
   * re-subscribe, re-authenticate. Sends made here go first on the new session. If it throws, the
   * open fails with that error and the hook runs again on the next open.
   * @default none
   */
  renegotiate?: (context: RenegotiateContext) => void | Promise<void>;
  /**
   * Keeps the session where it survives this connection: a page reload, a crashed tab, a
   * restarted process (`FileClientSessionStore` from `@lifeline/node/client-store`,
   * `IndexedDbClientSessionStore` from `@lifeline/browser/client-store`,
   * {@link MemoryClientSessionStore}). The first open reads it and resumes the stored session
   * (`session.restored` tells what came back); from then on the session's id and token, every
   * outgoing message until the server acknowledges it, and the received watermark are written,
   * batched one write per tick: a message is written to the network only once stored, and a
   * received message is acknowledged only once its watermark is stored. A send made while no
   * link is up (an outage, before the first link) is taken by the session at once and stored, so
   * a process that dies during an outage keeps it; from then on it cannot be withdrawn
   * (`signal`, `clearQueue()`), like a send written on a link. One store serves one
   * connection at a time. A failed write closes the connection with a
   * {@link ClientSessionStoreError}. See docs/durable-sessions.md for the repeat window.
   * @default none (the session lives in memory and ends with the connection)
   */
  store?: ClientSessionStore;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * How long a link reads on after our CLOSE for the server's last ACK and its close of the link,
 * in ms: the WebSocket link's `closeLingerMs` default. A server that acknowledges and closes
 * answers within a store write; one that never does costs the sends still unacknowledged.
 */
const CLOSE_LINGER_MS = 2_000;

/**
 * `resumable()`'s default `maxWaitingMessages` (the server keeps 1,024): as many as `attach`'s
 * outgoing queue can hold at its defaults (16 MiB at 512 B per message), with
 * `maxWaitingBytes` defaulting to that queue's 16 MiB, so a queue flushed after an outage fits.
 */
export const CLIENT_MAX_WAITING_MESSAGES = DEFAULT_QUEUE_MAX_BYTES / QUEUE_ENTRY_OVERHEAD_BYTES;

/**
 * The handshake timeout a connection should give its resume sessions when the user set none:
 * the handshake is part of connecting, so it is bounded by the connect timeout, and by the
 * heartbeat's timeout when one runs (a HELLO sent into a black hole must be given up about one
 * heartbeat after the network returns, not a fixed 10 s later).
 */
export function handshakeTimeoutFor(options: {
  readonly connectTimeoutMs?: number | undefined;
  readonly heartbeat?: false | { readonly timeoutMs?: number | undefined } | undefined;
}): number {
  const heartbeat = options.heartbeat ? (options.heartbeat.timeoutMs ?? 30_000) : Infinity;
  return Math.min(options.connectTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS, heartbeat);
}

/** What {@link ResumableOptions.renegotiate} is given. */
export interface RenegotiateContext {
  /** The new session's link: send on it, read from it. */
  readonly link: Link<LinkData, LinkData>;
  /** The new session. */
  readonly session: SessionSnapshot;
  /** The lost session's id and the messages it never got acknowledged, in order. */
  readonly lostSessionId: string;
  readonly lost: readonly UnacknowledgedMessage[];
  /** Aborted when the open is abandoned. */
  readonly signal: AbortSignal | undefined;
}

/** The client's view of its session. */
export interface SessionSnapshot {
  /** 32 hex digits. Never the token. */
  readonly id: string;
  /** The highest sequence number sent. */
  readonly lastSent: number;
  /** The server's cumulative acknowledgement of our messages. */
  readonly peerAcked: number;
  /**
   * The last sequence number delivered to `messages$`. Read inside a `messages$` callback, it is
   * the sequence number of the message being delivered (for idempotent processing).
   */
  readonly lastReceived: number;
  /** Messages sent and not yet acknowledged. */
  readonly pending: number;
  /** Whether a link is up and the handshake done. */
  readonly connected: boolean;
}

/** What happens to the session, as it happens. */
export type SessionEvent =
  | { readonly type: 'new'; readonly sessionId: string }
  | { readonly type: 'resumed'; readonly sessionId: string; readonly resumes: number }
  | {
      readonly type: 'lost';
      readonly sessionId: string;
      readonly reason: SessionLostReason;
      /** Every outgoing message never acknowledged, in order, with its sequence number and payload. */
      readonly unacknowledged: readonly UnacknowledgedMessage[];
      readonly error: SessionLostError;
    }
  | { readonly type: 'closed'; readonly sessionId: string; readonly by: 'local' | 'peer' }
  /**
   * The server is going away (GOAWAY, protocol version 2): the link is dropped and the session
   * resumes after `delayMs` (no backoff), at `url` when the server named one and the transport can
   * go there (see `Transport.redirect`).
   */
  | {
      readonly type: 'goaway';
      readonly sessionId: string;
      readonly url: string | undefined;
      readonly delayMs: number;
    };

/** Counters of a resumable transport. */
export interface ResumableStats extends SessionEndpointStats {
  /** Handshakes completed: new sessions plus resumes. */
  readonly handshakes: number;
  readonly resumes: number;
  readonly sessionsLost: number;
}

/**
 * Where a resumable session stands: `'connecting'` before its first handshake (and after a loss,
 * until the new session is welcomed), `'open'` with a link up and the handshake done,
 * `'resuming'` between links (the session is kept for a resume), `'closed'` once ended on
 * purpose by either side, until a new session starts.
 */
export type ResumeSessionState = 'connecting' | 'open' | 'resuming' | 'closed';

/**
 * The session under a resuming connection (`HAWebSocket`'s and `haWebSocket()`'s `session`): read
 * at any time, each field is the current value. There from the constructor on whenever `resume`
 * is on, before the first handshake too.
 */
export interface ResumeSession {
  /** The session id, 32 hex digits (never the token); `undefined` while no session is established. */
  readonly id: string | undefined;
  readonly state: ResumeSessionState;
  /** The highest sequence number sent. */
  readonly lastSent: number;
  /** The server's cumulative acknowledgement of our messages. */
  readonly peerAcked: number;
  /**
   * The last sequence number delivered. Read inside a message listener, it is the sequence
   * number of the message being delivered (for idempotent processing).
   */
  readonly lastReceived: number;
  /** Messages sent and not yet acknowledged. */
  readonly pending: number;
  /** Counters over the connection's life: handshakes, resumes, sessions lost, frames, bytes. */
  readonly stats: ResumableStats;
  /** Session events as they happen: new, resumed, lost (with the unacknowledged messages), closed. */
  readonly events$: Observable<SessionEvent>;
  /**
   * What the connection's `store` gave back when it started (set before the first `open` event,
   * so read it there, before sending): the session id, how many outgoing messages were pending
   * (they are re-sent once), the watermarks, whether they are over this connection's limits.
   * `undefined` without a store or when none was stored. The same transport opened again after
   * its connection gave up (attached again) goes on with the session it holds in memory and
   * leaves this as it was; it changes only if another owner continued the stored session
   * meanwhile (then the store is read again, as on a first start).
   */
  readonly restored: RestoredClientSession | undefined;
}

/** A transport whose links belong to one resumable session. */
export interface ResumableTransport extends Transport<LinkData, LinkData> {
  /** Session events: new, resumed, lost (with the unacknowledged messages), closed. */
  readonly session$: Observable<SessionEvent>;
  /** The current session, if one was established. */
  readonly session: SessionSnapshot | undefined;
  readonly stats: ResumableStats;
  /** The same session as one flat, read-only view (what `HAWebSocket.session` shows). */
  readonly handle: ResumeSession;
  /** What the `store` gave back on the first open (see {@link ResumeSession.restored}). */
  readonly restored: RestoredClientSession | undefined;
  /**
   * Ends the session on purpose. With a link up: a CLOSE frame after the sends already written,
   * then the link is read on for acknowledgements until the server closes it (having delivered
   * and acknowledged what came before the CLOSE) or 2 s pass, then closed with `code` and
   * `reason`; sends acknowledged meanwhile resolve. At that end (at once without a link) the
   * session emits `closed` and every send still unacknowledged rejects with
   * {@link ClosedByUserError}. The state reads `'closed'` at once. The next `open()` starts a new session.
   * @see docs/protocol.md, "Data, acknowledgements and replay" (CLOSE)
   */
  close(code?: number, reason?: string): void;
}

/**
 * Makes a transport's links resumable: exactly-once, in-order delivery both ways across
 * reconnects (see docs/protocol.md). Each `open()` opens a link of `transport`, resumes the
 * session (or starts one) and returns a virtual link whose `send()` resolves when the server
 * acknowledged the message, surviving link failures. `attach` reopens; this resumes.
 *
 * @example
 * ```ts
 * const transport = resumable(wsTransport('ws://127.0.0.1:8080'), {
 *   renegotiate: async ({ link }) => { await link.send(JSON.stringify({ subscribe: 'prices' })); },
 * });
 * transport.session$.subscribe((event) => event.type === 'lost' && report(event.unacknowledged));
 * const conn = attach(transport, { heartbeat: { intervalMs: 5_000, timeoutMs: 15_000 } });
 * await conn.send('exactly once');
 * ```
 * @see createResumeServer in `@lifeline/node/server`
 */
export function resumable(
  transport: Transport<LinkData, Uint8Array>,
  options: ResumableOptions = {},
): ResumableTransport {
  return new ResumableSession(transport, options);
}

/** What `util.inspect` calls (Node, Deno and Bun honour it): no token in a printed session. */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/** {@link ResumeSession} over a session: getters, so every read is current. */
class SessionHandle implements ResumeSession {
  private readonly session_: ResumableSession;

  constructor(session: ResumableSession) {
    this.session_ = session;
  }

  get id(): string | undefined {
    return this.session_.idHex_ || undefined;
  }
  get state(): ResumeSessionState {
    const session = this.session_;
    if (session.ended_) return 'closed';
    if (!session.key_) return 'connecting';
    return session.current_?.phase_ === 'open' ? 'open' : 'resuming';
  }
  get lastSent(): number {
    return this.session_.endpoint_.lastSent;
  }
  get peerAcked(): number {
    return this.session_.endpoint_.peerAcked;
  }
  get lastReceived(): number {
    return this.session_.endpoint_.delivered;
  }
  get pending(): number {
    return this.session_.endpoint_.pending;
  }
  get stats(): ResumableStats {
    return this.session_.stats;
  }
  get events$(): Observable<SessionEvent> {
    return this.session_.session$;
  }
  get restored(): RestoredClientSession | undefined {
    return this.session_.restored;
  }
  /** The public fields: a session's token is never written out (`JSON.stringify`, loggers). */
  toJSON(): object {
    return { id: this.id, state: this.state, lastSent: this.lastSent, peerAcked: this.peerAcked };
  }
  /** Node's, Deno's and Bun's `console.log` / `util.inspect` show {@link toJSON}'s fields only. */
  [INSPECT](): object {
    return this.toJSON();
  }
}

/** One session generation: a lost or closed session's links reject sends with its end error. */
interface Epoch {
  ended_: unknown;
}

/** @internal What {@link resumable} returns; `resume()` makes it with the connection's handshake timeout. */
class ResumableSession implements ResumableTransport {
  readonly endpoint_: SessionEndpoint;
  /** `resume()` sets the connection's own when the options have none. */
  handshakeTimeoutMs_: number;
  // A fan-out, not a Subject: the last Subject of the client, so rxjs's Subject stays out of
  // the bundle of an app with resume() (about 0.65 KiB min+gz), and no Subject per session.
  // Made on the first `session$`: events before anyone subscribed reach no one anyway (hot).
  private events_: MessageFanout<SessionEvent> | undefined;
  /** Told of each event before `session$`'s subscribers (no subscription of its own). */
  private readonly diagnostics_: SessionDiagnosticsPort | undefined;
  /** `endpoint.stats.replayed` at the last event told to diagnostics. */
  private replayedSeen_ = 0;
  /**
   * The session's id and token (16 bytes each) as one string of their char codes, `''` while
   * there is none: one flat 32-char string of 48 B (the id in hex and the token apart took 80 B,
   * the WELCOME's views about 0.3 KB). The bytes are made again for each HELLO.
   */
  key_ = '';
  epoch_: Epoch = { ended_: undefined };
  /** The version our HELLOs announce: lowered to the minimum by a server that refuses ours. */
  helloVersion_ = RESUME_PROTOCOL_VERSION;
  current_: ActiveLink | undefined;
  pendingRenegotiation_: { lostSessionId: string; lost: readonly UnacknowledgedMessage[] } | undefined;
  // Counters as fields, not an object of their own.
  handshakes_ = 0;
  resumes_ = 0;
  sessionsLost_ = 0;
  /** Ended on purpose (either side) and not opened since. */
  ended_ = false;
  readonly handle: ResumeSession = new SessionHandle(this);
  // The key (the session's token) is a field: what is printed or serialised is the handle's view.
  toJSON(): object {
    return (this.handle as SessionHandle).toJSON();
  }
  [INSPECT](): object {
    return this.toJSON();
  }
  /** With a `store`: its batched writer, the load in progress or done, and what it restored. */
  readonly writer_: ClientSessionWriter | undefined;
  private loading_: Promise<void> | undefined;
  restored: RestoredClientSession | undefined;
  /** With a `store`: the stored session was read, so sends can be numbered after it. */
  private loaded_ = false;
  /** Sends {@link hold} took before the store was read, in order: numbered once it is. */
  private early_: { data: LinkData; resolve: () => void; reject: (error: unknown) => void }[] | undefined;

  readonly inner_: Transport<LinkData, Uint8Array>;
  readonly options_: ResumableOptions;

  constructor(inner: Transport<LinkData, Uint8Array>, options: ResumableOptions) {
    this.inner_ = inner;
    this.options_ = options;
    this.handshakeTimeoutMs_ = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    let endpointOptions = clientEndpointOptions.get(options);
    if (endpointOptions === undefined) {
      // Checked once per options object (their limits are read once too: see SessionEndpoint).
      checkResumableOptions(options);
      // What `attach`'s outgoing queue took during an outage is flushed into the session at once
      // when it resumes: the session must be able to hold it (the queue is the bound), or a long
      // outage would turn into sends refused right after recovery.
      endpointOptions = {
        maxWaitingMessages: CLIENT_MAX_WAITING_MESSAGES,
        maxWaitingBytes: DEFAULT_QUEUE_MAX_BYTES,
        ...options,
      };
      clientEndpointOptions.set(options, endpointOptions);
    }
    const store = options.store;
    this.writer_ = store ? new ClientSessionWriter(store, (error) => this.storeFailed_(error)) : undefined;
    this.endpoint_ = new SessionEndpoint(
      endpointOptions,
      // Frames are cut from the shared slab: a client's frames are acknowledged in order.
      this.writer_ ? storeHooks(this.writer_) : POOLED,
    );
    const diagnostics = sessionDiagnosticsFor(options);
    this.diagnostics_ = diagnostics?.enabled ? diagnostics : undefined;
  }

  get session$(): Observable<SessionEvent> {
    this.events_ ??= new MessageFanout();
    return this.events_.observable;
  }

  /**
   * Tells diagnostics, then `session$`'s subscribers, of an event; diagnostics get the messages
   * each resume re-sent (the endpoint replays synchronously when the link connects, before
   * `resumed` is emitted). A throw from a logger is reported, as from a subscriber.
   */
  emit_(event: SessionEvent): void {
    const diagnostics = this.diagnostics_;
    if (diagnostics) {
      const now = this.endpoint_.stats.replayed;
      const replayed = now - this.replayedSeen_;
      this.replayedSeen_ = now;
      try {
        diagnostics.session(event, replayed);
      } catch (error) {
        reportException(error);
      }
    }
    this.events_?.next(event);
  }

  /** The session's id in hex, `''` while there is none. */
  get idHex_(): string {
    return bytesToHex(charsToBytes(this.key_.slice(0, 16)));
  }

  get session(): SessionSnapshot | undefined {
    if (!this.key_) return undefined;
    const endpoint = this.endpoint_;
    return {
      id: this.idHex_,
      lastSent: endpoint.lastSent,
      peerAcked: endpoint.peerAcked,
      lastReceived: endpoint.delivered,
      pending: endpoint.pending,
      connected: this.current_?.phase_ === 'open',
    };
  }

  get stats(): ResumableStats {
    return {
      ...this.endpoint_.stats,
      handshakes: this.handshakes_,
      resumes: this.resumes_,
      sessionsLost: this.sessionsLost_,
    };
  }

  async open(signal?: AbortSignal): Promise<Link<LinkData, LinkData>> {
    signal?.throwIfAborted();
    if (this.writer_) {
      // The stored session is read once, before the first link: sends wait in the connection's
      // queue until then, so they are numbered after the restored ones.
      this.loading_ ??= this.load();
      await this.loading_;
      if (this.writer_.failed) throw this.writer_.failed;
      // Closed while the store was read (a lock waited for): this open is abandoned.
      signal?.throwIfAborted();
    }
    this.ended_ = false;
    // One physical link per session at a time: a newer open supersedes whatever came before.
    this.current_?.drop_(new LinkFailedError('superseded by a newer link'), CloseCode.NormalClosure);
    const active = new ActiveLink(this);
    this.current_ = active;
    await active.connect(signal);
    return active.virtual_;
  }

  /**
   * A send made while no link is up (`attach` asks before queueing it): with a store, the session
   * takes it at once, so it is numbered and stored now (at the next batched write) and survives
   * the process dying during an outage; it is written on the next link. Sends made before the
   * store was read wait here and are numbered after the restored ones. Without a store, or while
   * a lost session's `renegotiate` has yet to run (its sends go first on the new session), it
   * takes nothing: the send waits in `attach`'s queue as before.
   */
  hold(data: LinkData): Promise<void> | undefined {
    const writer = this.writer_;
    if (!writer || writer.failed || this.ended_ || this.pendingRenegotiation_) return undefined;
    if (this.loaded_) return this.endpoint_.send(data);
    return new Promise<void>((resolve, reject) => {
      this.early_ ??= [];
      this.early_.push({ data, resolve, reject });
    });
  }

  /** The store was read (or could not be): number what {@link hold} took meanwhile, or fail it. */
  private releaseEarly_(error?: unknown): void {
    const early = this.early_;
    this.early_ = undefined;
    for (const send of early ?? []) {
      if (error === undefined) this.endpoint_.send(send.data).then(send.resolve, send.reject);
      else send.reject(error);
    }
  }

  /** Reads the store and takes the stored session over: its identity, its unacknowledged messages, its watermarks. */
  private async load(): Promise<void> {
    try {
      await this.loadStored_();
    } catch (error) {
      this.releaseEarly_(error);
      throw error;
    }
    this.loaded_ = true;
    this.releaseEarly_();
  }

  private async loadStored_(): Promise<void> {
    let stored: StoredClientSession | undefined;
    try {
      const store = this.options_.store!;
      await releasing.get(store);
      stored = await store.open();
    } catch (error) {
      // A store that cannot be read must not be written over: every open fails with its error.
      // The lock's error by code: ClientSessionLockedError stays out of bundles (only the stores make it).
      throw error instanceof ClientSessionStoreError ||
        (error instanceof LifelineError && error.code === 'ERR_SESSION_LOCKED')
        ? error
        : new ClientSessionStoreError('unreadable', `reading the stored session failed: ${String(error)}`, {
            cause: error,
          });
    }
    // A second load on this object (attached again after it gave up): the session in memory is
    // the newest copy of the stored one, unless another owner continued that since (see `holds`).
    // What it changed after the release waited in the writer: written now, the store catches up.
    // (A session that received anything has an id; one that only sent may not have one yet.)
    const live = this.key_ !== '' || this.endpoint_.lastSent > 0;
    const keep = live && this.holds_(stored);
    const stale = new LinkClosedError(undefined, 'stored session moved on');
    // Out of date: anything still waiting on it rejects, and the store is read as on a first start.
    if (live && !keep) this.finishSession_(() => stale);
    this.writer_!.reopen(keep, stale);
    if (keep || !stored) return;
    this.key_ = String.fromCharCode(...stored.id, ...stored.token);
    this.endpoint_.restore({
      peerAcked: stored.peerAcked,
      received: stored.received,
      messages: stored.messages.map((message) => fromStoredOutgoing(message, stored.received)),
    });
    const last = stored.messages[stored.messages.length - 1];
    this.restored = {
      sessionId: this.idHex_,
      pendingOutgoing: stored.messages.length,
      lastSent: last ? last.seq : stored.peerAcked,
      lastReceived: stored.received,
      deliveredUpTo: Math.max(stored.delivered, stored.received),
      exceedsLimits: this.endpoint_.waitingFull,
    };
  }

  /**
   * Whether `stored` is the session in memory as this object left it on release: the same token
   * (128 random bits: the same session, and no other owner resumed it, which rotates the token)
   * and no message past ours (another owner may have appended some without reaching the server).
   * Nothing stored while memory has an identity: another owner ended it, or it was deleted.
   */
  private holds_(stored: StoredClientSession | undefined): boolean {
    if (!stored) return !this.key_;
    return (
      String.fromCharCode(...stored.id, ...stored.token) === this.key_ &&
      (stored.messages[stored.messages.length - 1]?.seq ?? stored.peerAcked) <= this.endpoint_.lastSent
    );
  }

  /** A store write failed: the session can no longer keep its promise; the connection closes with the error. */
  private storeFailed_(error: ClientSessionStoreError): void {
    this.current_?.drop_(error, CloseCode.NormalClosure);
  }

  close(code = CloseCode.NormalClosure, reason = ''): void {
    const active = this.current_;
    // Already closing: the link lingers for the server's last ACK.
    if (active?.closing_) return;
    this.ended_ = true;
    if (!active) {
      this.closed_();
      return;
    }
    // Dropped, the link reads as our close and ends the session (see drop_).
    active.closing_ = true;
    const drop = () => active.drop_(undefined, code, reason);
    if (active.phase_ === 'open') {
      // The server acknowledges what it received before our CLOSE, then closes the link: read
      // it until then (bounded, from now: a store that never answers included), so the sends it
      // took resolve rather than reject.
      active.linger_ = this.scheduler_().schedule(drop, CLOSE_LINGER_MS);
      // With a store a send is written to the link once stored: the CLOSE waits for the writes
      // under way (the server ignores DATA after it), one store write at a time. A link dropped
      // meanwhile writes nothing (the linger's bound holds either way).
      const write = (): unknown =>
        this.endpoint_.durable_?.persisting_
          ? this.writer_!.settled().then(write)
          : active.write_(encodeClose(0, reason));
      write();
    } else drop();
  }

  /** @internal The handshake timeout's and the close linger's scheduler. */
  scheduler_(): SchedulerLike {
    return this.options_.scheduler ?? monotonicScheduler;
  }

  /** @internal Closed by us, the link dropped: what the server did not acknowledge rejects. */
  closed_(): void {
    if (this.key_) this.emit_({ type: 'closed', sessionId: this.idHex_, by: 'local' });
    this.finishSession_(() => new ClosedByUserError('session closed'));
    this.releaseStore_();
  }

  /**
   * The connection gave up (or failed irrecoverably) rather than being closed: the session stays
   * in the store (the next start re-sends what it holds) but its ownership is released, so a new
   * connection in this process, or another process, can open the store.
   */
  release(): void {
    this.releaseStore_();
  }

  /**
   * Closed on purpose, or given up (see {@link release}): once the store holds that the session is over, ownership is released (the
   * next process or tab may take it at once); a later open reads the store again.
   */
  private releaseStore_(): void {
    const loading = this.loading_;
    const writer = this.writer_;
    if (!loading || !writer) return;
    this.loading_ = undefined;
    this.loaded_ = false;
    const store = this.options_.store!;
    // A load that failed (another owner) owns nothing to release; a failed close has no one to tell.
    const released = loading
      .then(() => writer.settled())
      // Changes made from here on wait in the writer: the store is no longer ours to write.
      .then(() => writer.suspend())
      .then(
        () => store.close(),
        () => {},
      )
      .catch(() => {});
    // A new connection given the same store (in the `close` event of this one) opens it once released.
    releasing.set(store, released);
  }

  /** The session is over (closed or lost): reject what is pending, forget it, number from 1 again. */
  finishSession_(
    errorFor: (list: readonly UnacknowledgedMessage[]) => unknown,
  ): readonly UnacknowledgedMessage[] {
    let ended: unknown;
    const list = this.endpoint_.end((unacknowledged) => {
      ended = errorFor(unacknowledged);
      return ended;
    });
    this.epoch_.ended_ = ended;
    this.epoch_ = { ended_: undefined };
    this.endpoint_.restart();
    this.key_ = '';
    // The stored session is over too: a restart must not resume it.
    this.writer_?.post({ reset: true });
    return list;
  }

  /** The session is lost: report it (event and rejections with the exact list), forget it. */
  lose_(reason: SessionLostReason, cause?: unknown): void {
    const sessionId = this.idHex_;
    let lostError: SessionLostError | undefined;
    const list = this.finishSession_((unacknowledged) => {
      lostError = new SessionLostError(reason, sessionId, unacknowledged, { cause });
      return lostError;
    });
    this.sessionsLost_++;
    this.pendingRenegotiation_ = { lostSessionId: sessionId, lost: list };
    this.emit_({ type: 'lost', sessionId, reason, unacknowledged: list, error: lostError! });
  }
}

/** `storing`: welcomed, writing the session's identity to the client store before confirming it. */
type Phase = 'opening' | 'handshake' | 'storing' | 'open' | 'dead';

/**
 * One physical link of the session, from open through handshake to its end; the physical link's
 * reader ({@link Link.read_}) where it has the seam.
 */
class ActiveLink implements LinkReader<LinkData>, LinkOutputPort {
  phase_: Phase = 'opening';
  /** Set by a deliberate close, so the link's end reads as that close whatever the peer does. */
  closing_ = false;
  readonly virtual_: VirtualLink;
  /** The session generation this link serves; moves on when a loss starts a new session on it. */
  epoch_: Epoch;
  private inner_: Link<LinkData, Uint8Array> | undefined;
  private subscription_: Subscription | undefined;
  private writer_: FrameWriter | undefined;
  /** Whether this link's HELLO resumed the session (its id is the session's until the WELCOME). */
  private resuming_ = false;
  private settle_: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  /** What ended this link (read by its virtual link, for a reader that comes after the end). */
  downError_: unknown;
  private onDown_: ((error: unknown) => void) | undefined;
  /** Frames that arrived while the identity was being stored (bounded by `maxUnreadMessages`). */
  private held_: ResumeFrame[] | undefined;
  /** After our CLOSE: the timer that drops the link if the server does not close it. */
  linger_: Subscription | undefined;

  private readonly session_: ResumableSession;

  constructor(session: ResumableSession) {
    this.session_ = session;
    this.epoch_ = session.epoch_;
    this.virtual_ = new VirtualLink(session, this);
  }

  async connect(signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.establish_(signal);
    } catch (error) {
      // Whatever failed (the open, the handshake, the hook), this link is done; the session is not.
      this.drop_(error, CloseCode.NormalClosure);
      throw error;
    }
  }

  private async establish_(signal: AbortSignal | undefined): Promise<void> {
    const session = this.session_;
    const inner = await session.inner_.open(signal);
    if (this.phase_ === 'dead') {
      inner.close();
      throw this.downError_;
    }
    this.inner_ = inner;
    // A server that does not read must not grow our output: PONGs and ACKs are coalesced and a
    // link above the high-water mark is dropped (the session resumes on the next one). This link
    // is the output's port and is dropped through `drop_` on an overflow: no port object, overflow
    // closure and context per link (an idle connection keeps them for its whole life).
    this.writer_ = new LinkOutput(this, outputHighWaterOf(session.options_)).writer;
    this.phase_ = 'handshake';
    const handshake = new Promise<void>((resolve, reject) => {
      this.settle_ = { resolve, reject };
    });
    const timeoutMs = session.handshakeTimeoutMs_;
    const timer = session.scheduler_().schedule(() => {
      this.drop_(
        new LinkFailedError(`no WELCOME within ${timeoutMs} ms`, {
          syscallCode: 'ETIMEDOUT',
        }),
        CloseCode.NormalClosure,
      );
    }, timeoutMs);
    const onAbort = () =>
      this.drop_(signal?.reason ?? new LinkFailedError('open aborted'), CloseCode.NormalClosure);
    signal?.addEventListener('abort', onAbort, { once: true });
    // Read directly where the link has the seam: no subscriber, observer and teardown per link.
    if (inner.read_) inner.read_(this);
    else {
      this.subscription_ = inner.messages$.subscribe({
        next: (message) => this.receive_(message),
        error: (error) => this.drop_(error),
        complete: () => this.linkEnded_(),
      });
    }
    try {
      this.hello_();
      await handshake;
    } finally {
      timer.unsubscribe();
      signal?.removeEventListener('abort', onAbort);
      this.settle_ = undefined;
    }
    const renegotiation = session.pendingRenegotiation_;
    if (!renegotiation) return;
    const hook = session.options_.renegotiate;
    if (hook) {
      const context: RenegotiateContext = {
        link: this.virtual_,
        session: session.session!,
        lostSessionId: renegotiation.lostSessionId,
        lost: renegotiation.lost,
        signal,
      };
      // The hook's own sends wait for acks that need this link: if it dies, fail the open rather
      // than wait forever (the hook runs again on the next open).
      await new Promise<void>((resolve, reject) => {
        this.onDown_ = reject;
        Promise.resolve()
          .then(() => hook(context))
          .then(resolve, reject);
      }).finally(() => {
        this.onDown_ = undefined;
      });
    }
    if (session.pendingRenegotiation_ === renegotiation) session.pendingRenegotiation_ = undefined;
  }

  /** A resume frame, through the output's rules ({@link write} is the output's own, raw write). */
  write_(frame: Uint8Array): void {
    this.writer_?.(frame);
  }

  /** @internal {@link LinkOutputPort}: the bytes the physical link has not yet handed to the network. */
  get bufferedAmount(): number {
    return this.inner_?.bufferedAmount ?? 0;
  }

  /**
   * @internal {@link LinkOutputPort}: acks confirm delivery, so a link that can write without
   * confirming each frame is cheaper. A failed write reaches the link's reader either way.
   */
  write(frame: Uint8Array): void {
    const inner = this.inner_!;
    if (inner.write) inner.write(frame);
    else inner.send(frame).then(undefined, noop);
  }

  /**
   * @internal {@link LinkOutputPort}: without a promise where the link can confirm a write without
   * one (`sendWith`: one confirmation per tick on Node's `ws`): a client writes an ACK for every
   * few messages it reads.
   */
  writeConfirmed(frame: Uint8Array, done: () => void): void {
    const inner = this.inner_!;
    if (inner.sendWith) inner.sendWith(frame, callToken, done);
    else inner.send(frame).then(done, done);
  }

  /** @internal A frame from the physical link (see {@link LinkReader}). */
  linkMessage_(message: LinkData): void {
    this.receive_(message);
  }

  /** @internal The physical link's own pongs: the session's liveness is its own PING/PONG and ACK frames. */
  linkPong_(): void {}

  /** @internal */
  linkFailed_(error: unknown): void {
    this.drop_(error);
  }

  /** @internal */
  linkEnded_(): void {
    this.drop_(new LinkFailedError('the link ended', { syscallCode: 'ECONNRESET' }));
  }

  /** Ends this link (not the session). Idempotent. `abandon`: the physical link is presumed dead, drop it without a closing handshake. */
  drop_(error: unknown, code?: number, reason?: string, abandon = false): void {
    if (this.phase_ === 'dead') return;
    // The peer may answer our CLOSE by closing the link inside the write: that is still our close.
    if (this.closing_) error = new ClosedByUserError('session closed');
    const wasOpen = this.phase_ === 'open';
    this.phase_ = 'dead';
    this.downError_ = error;
    this.writer_ = undefined;
    this.subscription_?.unsubscribe();
    this.subscription_ = undefined;
    this.inner_?.read_?.(undefined);
    if (abandon && this.inner_?.abandon) this.inner_.abandon();
    else this.inner_?.close(code ?? closeCodeFor(error), reason ?? '');
    if (this.session_.current_ === this) {
      this.session_.current_ = undefined;
      if (wasOpen) this.session_.endpoint_.disconnect();
    }
    this.settle_?.reject(error);
    this.onDown_?.(error);
    this.virtual_.down_(error);
    this.linger_?.unsubscribe();
    if (this.closing_) this.session_.closed_();
  }

  private hello_(): void {
    const session = this.session_;
    const key = charsToBytes(session.key_);
    this.resuming_ = key.length > 0;
    const resume = this.resuming_ ? { id: key.subarray(0, 16), token: key.subarray(16) } : undefined;
    this.write_(encodeHello(resume, resume ? session.endpoint_.delivered : 0, session.helloVersion_));
  }

  private receive_(message: unknown): void {
    let frame: ResumeFrame;
    try {
      // Flagged DATA only once a WELCOME of version 3 came (before it, the previous link's
      // version: DATA is refused there anyway, as out of place).
      const endpoint = this.session_.endpoint_;
      frame = decodeServerSent(
        frameBytes(message),
        endpoint.limits_.maxFrameBytes_,
        endpoint.lazyLink_ ? 3 : 2,
      );
    } catch (error) {
      this.drop_(error);
      return;
    }
    if (this.phase_ === 'open') this.onFrame_(frame);
    else if (this.phase_ === 'handshake') this.onHandshakeFrame_(frame);
    else if (this.phase_ === 'storing') {
      // The server replays right after its WELCOME; we confirm only once the new token is stored.
      this.held_ ??= [];
      const held = this.held_;
      if (held.length >= (this.session_.options_.maxUnreadMessages ?? DEFAULT_MAX_UNREAD_MESSAGES)) {
        this.drop_(new ProtocolError('the server sent past the unread limit during the handshake'));
      } else held.push(frame);
    }
  }

  private onFrame_(frame: ResumeFrame): void {
    const endpoint = this.session_.endpoint_;
    // After our CLOSE only acks count (they settle our sends as delivered): the session is over
    // for the application, and the server drops the rest (listed in its close event).
    if (this.closing_) {
      // A bad ack is ignored: the link ends anyway.
      if ('ack' in frame) endpoint.receiveAck(frame.ack);
      return;
    }
    switch (frame.type) {
      case 'data': {
        const problem = endpoint.receiveData(frame.seq, frame.ack, frame.data, frame.lazy);
        if (problem) this.drop_(problem);
        return;
      }
      case 'ack': {
        const problem = endpoint.receiveAck(frame.ack);
        if (problem) this.drop_(problem);
        else this.virtual_.pong_();
        return;
      }
      case 'ping':
        this.write_(encodePong());
        return;
      case 'pong':
        this.virtual_.pong_();
        return;
      case 'goaway': {
        const session = this.session_;
        const url = frame.url || undefined;
        session.inner_.redirect?.(url);
        session.emit_({ type: 'goaway', sessionId: session.idHex_, url, delayMs: frame.delayMs });
        // Recoverable, and its hint replaces the backoff: attach resumes after exactly delayMs.
        this.drop_(new GoAwayError(frame.delayMs, url), CloseCode.NormalClosure, 'going away');
        return;
      }
      case 'close': {
        const session = this.session_;
        const sessionId = session.idHex_;
        this.drop_(
          new LinkClosedError(CloseCode.NormalClosure, frame.reason || 'session closed by the server'),
          CloseCode.NormalClosure,
        );
        session.emit_({ type: 'closed', sessionId, by: 'peer' });
        session.finishSession_(
          (list) =>
            new SessionLostError('closed-by-peer', sessionId, list, { cause: frame.reason || undefined }),
        );
        session.ended_ = true;
        return;
      }
      default:
        this.drop_(new ProtocolError(`unexpected ${frame.type.toUpperCase()} frame after the handshake`));
    }
  }

  private onHandshakeFrame_(frame: ResumeFrame): void {
    const session = this.session_;
    if (frame.type === 'reject') {
      this.onReject_(frame.code, frame.reason);
      return;
    }
    if (frame.type !== 'welcome') {
      this.drop_(new ProtocolError(`expected WELCOME or REJECT, got ${frame.type.toUpperCase()}`));
      return;
    }
    const resuming = this.resuming_;
    if (frame.version < MIN_RESUME_PROTOCOL_VERSION || frame.version > session.helloVersion_) {
      this.drop_(new ProtocolError(`the server answered with protocol version ${frame.version}`));
      return;
    }
    if (resuming && (!frame.resumed || String.fromCharCode(...frame.id) !== session.key_.slice(0, 16))) {
      this.failResume_(new ProtocolError('the server answered a resume with another session'));
      return;
    }
    if (!resuming && (frame.resumed || frame.lastReceived !== 0)) {
      this.drop_(new ProtocolError('the server answered a new session with a resumed one'));
      return;
    }
    session.key_ = String.fromCharCode(...frame.id, ...frame.token);
    session.endpoint_.lazyLink_ = frame.version > 2;
    const problem = session.endpoint_.checkResume(frame.lastReceived);
    if (problem) {
      this.failResume_(problem);
      return;
    }
    const writer = session.writer_;
    if (!writer) {
      this.welcomed_(frame.lastReceived, resuming);
      return;
    }
    // The confirming ACK retires the token the store holds: store the new one first, so a crash
    // at any point leaves a token the server accepts (docs/protocol.md, token rotation).
    this.phase_ = 'storing';
    // A new session's first write also holds what was sent before it had an identity (taken
    // while no server could be reached, see `hold`): numbered 1, 2... in it, and stored before
    // any of it is written on this link.
    const unidentified = resuming ? [] : session.endpoint_.unacknowledged();
    const change: ClientSessionChange = {
      reset: !resuming,
      identity: { id: frame.id, token: frame.token },
      ...(unidentified.length > 0 ? { append: unidentified.map(toStoredOutgoing) } : {}),
    };
    writer.write(change).then(() => {
      if (this.phase_ !== 'storing') return;
      this.welcomed_(frame.lastReceived, resuming);
      const held = this.held_;
      this.held_ = undefined;
      for (const next of held ?? []) {
        if ((this.phase_ as Phase) !== 'open') break;
        this.onFrame_(next);
      }
    }, noop);
  }

  /** The handshake is done (and the identity stored): replay, report, hand the link out. */
  private welcomed_(lastReceived: number, resuming: boolean): void {
    const session = this.session_;
    this.phase_ = 'open';
    // The ACK goes before any replay: the first frame after WELCOME proves we hold the rotated token.
    session.endpoint_.connect(
      this.writer_!,
      lastReceived,
      this.virtual_,
      encodeAck(session.endpoint_.delivered),
    );
    session.handshakes_++;
    if (resuming) {
      session.resumes_++;
      session.emit_({ type: 'resumed', sessionId: session.idHex_, resumes: session.resumes_ });
    } else {
      session.emit_({ type: 'new', sessionId: session.idHex_ });
    }
    this.settle_?.resolve();
  }

  private onReject_(code: SessionRejectedError['rejectCode'], reason: string): void {
    const session = this.session_;
    const rejected = new SessionRejectedError(code, reason);
    if (code === 'unsupported-version' && session.helloVersion_ > MIN_RESUME_PROTOCOL_VERSION) {
      // A server older than us (version 1 during a rolling upgrade): it closes this link, and the
      // session resumes on the next one in the version it speaks. Nothing is lost.
      session.helloVersion_ = MIN_RESUME_PROTOCOL_VERSION;
      this.drop_(
        new LinkFailedError(`the server refused protocol version ${RESUME_PROTOCOL_VERSION}: ${reason}`, {
          cause: rejected,
          recoverable: true,
        }),
        CloseCode.NormalClosure,
      );
      return;
    }
    if (this.resuming_ && code === 'unknown-session') {
      // The server forgot the session (restart, expiry): report the loss, then start afresh on
      // this same link; the server keeps it in the handshake for exactly this.
      session.lose_('unknown-session', rejected);
      this.epoch_ = session.epoch_;
      this.hello_();
      return;
    }
    if (this.resuming_ && code !== 'too-many-sessions') session.lose_(lostReasonOf(code), rejected);
    this.drop_(rejected, CloseCode.NormalClosure);
  }

  private failResume_(error: ProtocolError): void {
    const session = this.session_;
    // Tell the server to drop its half: neither side can trust the other's numbering any more.
    this.write_(encodeClose(0, 'protocol error'));
    this.drop_(error);
    session.lose_('protocol-error', error);
  }
}

/** A `sendWith` confirmation whose token is the function to call, whatever the outcome. */
function callToken(_error: unknown, token: object): void {
  (token as () => void)();
}

/** The link handed to the user: a view of the session over one physical link. */
class VirtualLink implements Link<LinkData, LinkData>, DeliverySink {
  readonly replaysSends = true;
  /**
   * The connection, reading directly ({@link Link.read_}): told of every message, ACK/PONG and the
   * end before `messages$`'s subscribers, with no subscriber, observer and teardown list per link
   * (about 1.3 KB an idle connection kept for the two subscriptions it made before).
   */
  private reader_: LinkReader<LinkData> | undefined;
  // Fan-outs, not Subjects (a Subject allocates a closure and a copy of its observer list per
  // value), and made on the first `messages$` / `pongs$`: a connection reading through `read_`
  // never makes them.
  private incoming_: MessageFanout<LinkData> | undefined;
  private pongs_: MessageFanout<unknown> | undefined;
  private messages_: Observable<LinkData> | undefined;
  private subscribers_ = 0;
  private alive_ = true;

  // Plain fields, not parameter properties: the build renames `_` members, and a parameter
  // property would also leave its long name declared, undefined (two more fields per link).
  private readonly session_: ResumableSession;
  private readonly active_: ActiveLink;

  constructor(session: ResumableSession, active: ActiveLink) {
    this.session_ = session;
    this.active_ = active;
  }

  get messages$(): Observable<LinkData> {
    this.messages_ ??= new RxObservable<LinkData>((subscriber) => {
      this.incoming_ ??= new MessageFanout();
      const inner = this.fanout_(this.incoming_).observable.subscribe(subscriber);
      this.subscribers_++;
      // Messages that waited for a subscriber are delivered (and only then acknowledged) now.
      this.pumpIfReady_();
      return () => {
        this.subscribers_--;
        inner.unsubscribe();
      };
    });
    return this.messages_;
  }

  get pongs$(): Observable<unknown> {
    this.pongs_ ??= new MessageFanout();
    return this.fanout_(this.pongs_).observable;
  }

  /** A fan-out made after the link went down ends at once, as a stopped Subject tells a late subscriber. */
  private fanout_<T>(fanout: MessageFanout<T>): MessageFanout<T> {
    if (!this.alive_) {
      const error = this.active_.downError_;
      if (error instanceof ClosedByUserError || fanout === this.pongs_) fanout.complete();
      else fanout.error(error);
    }
    return fanout;
  }

  /** @internal */
  read_(reader: LinkReader<LinkData> | undefined): void {
    this.reader_ = reader;
    if (reader === undefined) return;
    if (!this.alive_) {
      // Down before its reader came (between the open and the connection reading it): told now,
      // as `messages$` tells a late subscriber, or the connection would hold a dead link as open.
      this.reader_ = undefined;
      const error = this.active_.downError_;
      if (error instanceof ClosedByUserError) reader.linkEnded_();
      else reader.linkFailed_(error);
      return;
    }
    this.pumpIfReady_();
  }

  private pumpIfReady_(): void {
    if (this.ready && this.session_.current_ === this.active_) this.session_.endpoint_.pump();
  }

  get ready(): boolean {
    return this.alive_ && (this.reader_ !== undefined || this.subscribers_ > 0);
  }

  get info(): Readonly<Record<string, unknown>> {
    return { sessionId: this.session_.idHex_ };
  }

  deliver(data: string | Uint8Array): void {
    this.reader_?.linkMessage_(data);
    this.incoming_?.next(data);
  }

  pong_(): void {
    this.reader_?.linkPong_();
    this.pongs_?.next(undefined);
  }

  down_(error: unknown): void {
    if (!this.alive_) return;
    this.alive_ = false;
    const reader = this.reader_;
    this.reader_ = undefined;
    this.pongs_?.complete();
    // The reader first, then `messages$`'s subscribers.
    if (error instanceof ClosedByUserError) {
      reader?.linkEnded_();
      this.incoming_?.complete();
    } else {
      reader?.linkFailed_(error);
      this.incoming_?.error(error);
    }
  }

  send(data: LinkData): Promise<void> {
    const over = this.over();
    return over === undefined ? this.session_.endpoint_.send(data) : Promise.reject(over);
  }

  /** A link of a session that is over must not feed the next session: its sends fail as the session did. */
  private over(): unknown {
    const epoch = this.active_.epoch_;
    return epoch === this.session_.epoch_
      ? undefined
      : (epoch.ended_ ?? new LinkClosedError(undefined, 'session ended'));
  }

  /**
   * {@link send} without a promise (what `attach` uses, for `send()` and `sendAsync()` alike): the
   * session keeps `confirmed` and `token` with the message and calls it once the server
   * acknowledged it, or with the end error when the session ends first. A send it cannot take is
   * reported in a microtask, as a rejected promise would be. On a link that answers synchronously
   * (the in-memory test links) the acknowledgement may come inside this call; `attach` marks the
   * entry written before it calls, so that is harmless.
   */
  sendWith(data: LinkData, confirmed: (error: unknown, token: object) => void, token: object): void {
    // An entry of `attach` nobody awaits (`HAWebSocket.send()`): its ack may wait (version 3).
    const refused =
      this.over() ??
      this.session_.endpoint_.post(
        data,
        confirmed,
        token,
        (token as { resolve?: unknown }).resolve === unawaited,
      );
    if (refused !== undefined) queueMicrotask(() => confirmed(refused, token));
  }

  /** Ends the session if this is its current link; a link that is already down has nothing to end. */
  close(code?: number, reason?: string): void {
    if (this.session_.current_ === this.active_ && this.active_.phase_ === 'open')
      this.session_.close(code, reason);
    else this.active_.drop_(new ClosedByUserError('link closed'), code, reason);
  }

  /** Drops the physical link and keeps the session for a resume (attach calls this before reopening). */
  abandon(): void {
    this.active_.drop_(
      new LinkFailedError('link abandoned for a new one'),
      CloseCode.GoingAway,
      undefined,
      true,
    );
  }

  ping(): void {
    if (this.session_.current_ === this.active_ && this.active_.phase_ === 'open')
      this.active_.write_(encodePing());
  }
}

const noop = () => {};

/** The release in progress of each store a connection let go of (see `releaseStore`); never rejects. */
const releasing = new WeakMap<ClientSessionStore, Promise<void>>();

/**
 * The endpoint options of the sessions made with each options object: one copy for all of them,
 * so they share the endpoint's limits too (a copy per session kept ~0.1 KB per idle connection).
 */
const clientEndpointOptions = new WeakMap<ResumableOptions, SessionEndpointOptions>();

/** The endpoint hooks of a session without a store: one object for all of them. */
const POOLED: SessionEndpointHooks = { pooled: true };

/** The bytes of a string of char codes 0-255. */
function charsToBytes(chars: string): Uint8Array {
  return Uint8Array.from(chars, (char) => char.charCodeAt(0));
}

/** The endpoint hooks that keep a client session in its store, through the batching writer. */
function storeHooks(writer: ClientSessionWriter): SessionEndpointHooks {
  return {
    pooled: true,
    persist: (messages) => writer.write({ append: messages.map(toStoredOutgoing) }),
    persistReceived: (received) => writer.write({ received }),
    peerAcked: (ack) => writer.post({ peerAcked: ack }),
    // Written ahead of each delivery: after a crash, the messages above the stored watermark up
    // to this one are the ones the application may have had (the repeat window, `restored`).
    confirmOwner: (upTo) => writer.write({ delivered: upTo }),
    // The writer reports its failure itself (once): nothing more to do per hook.
    storeFailed: noop,
  };
}

/** A stored outgoing message as the endpoint holds it; whoever awaited it lived in the process that stored it. */
function fromStoredOutgoing(stored: StoredOutgoingMessage, ack: number): OutgoingMessage {
  const frame = encodeDataFrame(stored.seq, ack, stored.payload);
  if (stored.kind === 'text') frame[0] = ResumeFrameType.DataText;
  const offset = dataHeaderLength(stored.seq, ack);
  return outgoingMessage(stored.seq, stored.payload.length, frame, offset, ack, undefined, undefined);
}

function closeCodeFor(error: unknown): number {
  if (error instanceof FrameTooLargeError) return CloseCode.MessageTooBig;
  if (error instanceof MalformedFrameError || error instanceof ProtocolError) return CloseCode.ProtocolError;
  return CloseCode.NormalClosure;
}

function lostReasonOf(code: SessionRejectedError['rejectCode']): SessionLostReason {
  return code === 'too-many-sessions' ? 'protocol-error' : code;
}
