import { type Observable, Observable as RxObservable, type Subscription } from 'rxjs';
import type { DiagnosticsOptions } from '../../diagnostics/diagnostics.js';
import { monotonicScheduler } from '../../engine/clock.js';
import { type SessionDiagnosticsPort, sessionDiagnosticsFor } from '../../engine/diagnostics-hook.js';
import {
  ClientSessionLockedError,
  ClientSessionStoreError,
  ClosedByUserError,
  FrameTooLargeError,
  GoAwayError,
  LinkClosedError,
  LinkFailedError,
  MalformedFrameError,
  ProtocolError,
  SessionLostError,
  type SessionLostReason,
  SessionRejectedError,
  type UnacknowledgedMessage,
} from '../../engine/errors.js';
import type { Link, LinkData, Transport } from '../../engine/link.js';
import { MessageFanout } from '../../engine/message-fanout.js';
import { DEFAULT_QUEUE_MAX_BYTES, QUEUE_ENTRY_OVERHEAD_BYTES } from '../../engine/outgoing-queue.js';
import { CloseCode } from '../../policy/close-codes.js';
import { LinkOutput, outputHighWaterOf } from '../endpoint/link-output.js';
import {
  DEFAULT_MAX_UNREAD_MESSAGES,
  type DeliverySink,
  type FrameWriter,
  frameWriter,
  type OutgoingMessage,
  outgoingMessage,
  SessionEndpoint,
  type SessionEndpointHooks,
  type SessionEndpointOptions,
  type SessionEndpointStats,
} from '../endpoint/session-endpoint.js';
import { checkResumableOptions } from '../option-checks.js';
import {
  decodeFrame,
  encodeAck,
  encodeClose,
  encodeData,
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
  const heartbeat = options.heartbeat ? (options.heartbeat.timeoutMs ?? 30_000) : Number.POSITIVE_INFINITY;
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
   * Ends the session on purpose: a CLOSE frame if a link is up, every unacknowledged send rejects
   * with {@link ClosedByUserError}. The next `open()` starts a new session.
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

/** {@link ResumeSession} over a session: getters, so every read is current. */
class SessionHandle implements ResumeSession {
  constructor(private readonly session: ResumableSession) {}

  get id(): string | undefined {
    return this.session.idHex || undefined;
  }
  get state(): ResumeSessionState {
    const session = this.session;
    if (session.ended) return 'closed';
    if (!session.id) return 'connecting';
    return session.current?.phase === 'open' ? 'open' : 'resuming';
  }
  get lastSent(): number {
    return this.session.endpoint.lastSent;
  }
  get peerAcked(): number {
    return this.session.endpoint.peerAcked;
  }
  get lastReceived(): number {
    return this.session.endpoint.delivered;
  }
  get pending(): number {
    return this.session.endpoint.pending;
  }
  get stats(): ResumableStats {
    return this.session.stats;
  }
  get events$(): Observable<SessionEvent> {
    return this.session.session$;
  }
  get restored(): RestoredClientSession | undefined {
    return this.session.restored;
  }
}

/** One session generation: a lost or closed session's links reject sends with its end error. */
interface Epoch {
  ended: unknown;
}

class ResumableSession implements ResumableTransport {
  readonly endpoint: SessionEndpoint;
  readonly handshakeTimeoutMs: number;
  readonly outputHighWater: number;
  // A fan-out, not a Subject: the last Subject of the client, so rxjs's Subject stays out of
  // the bundle of an app with resume() (about 0.65 KiB min+gz), and no Subject per session.
  readonly events = new MessageFanout<SessionEvent>();
  readonly session$ = this.events.observable;
  id: Uint8Array | undefined;
  idHex = '';
  token: Uint8Array | undefined;
  epoch: Epoch = { ended: undefined };
  /** The version our HELLOs announce: lowered to the minimum by a server that refuses ours. */
  helloVersion = RESUME_PROTOCOL_VERSION;
  current: ActiveLink | undefined;
  pendingRenegotiation: { lostSessionId: string; lost: readonly UnacknowledgedMessage[] } | undefined;
  counts = { handshakes: 0, resumes: 0, sessionsLost: 0 };
  /** Ended on purpose (either side) and not opened since. */
  ended = false;
  readonly handle: ResumeSession = new SessionHandle(this);
  /** With a `store`: its batched writer, the load in progress or done, and what it restored. */
  readonly writer: ClientSessionWriter | undefined;
  private loading: Promise<void> | undefined;
  restored: RestoredClientSession | undefined;
  /** With a `store`: the stored session was read, so sends can be numbered after it. */
  private loaded = false;
  /** Sends {@link hold} took before the store was read, in order: numbered once it is. */
  private early: { data: LinkData; resolve: () => void; reject: (error: unknown) => void }[] = [];

  constructor(
    readonly inner: Transport<LinkData, Uint8Array>,
    readonly options: ResumableOptions,
  ) {
    checkResumableOptions(options);
    const store = options.store;
    this.writer = store ? new ClientSessionWriter(store, (error) => this.storeFailed(error)) : undefined;
    // What `attach`'s outgoing queue took during an outage is flushed into the session at once when
    // it resumes: the session must be able to hold it (the queue is the bound), or a long outage
    // would turn into sends refused right after recovery.
    this.endpoint = new SessionEndpoint(
      {
        maxWaitingMessages: CLIENT_MAX_WAITING_MESSAGES,
        maxWaitingBytes: DEFAULT_QUEUE_MAX_BYTES,
        ...options,
      },
      // Frames are cut from the shared slab: a client's frames are acknowledged in order.
      this.writer ? storeHooks(this.writer) : { pooled: true },
    );
    this.outputHighWater = outputHighWaterOf(options);
    this.watchDiagnostics(sessionDiagnosticsFor(options));
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  }

  /**
   * Session events to diagnostics, with the messages each resume re-sent (the endpoint replays
   * synchronously when the link connects, before `resumed` is emitted).
   */
  private watchDiagnostics(diagnostics: SessionDiagnosticsPort | undefined): void {
    if (!diagnostics?.enabled) return;
    let replayed = 0;
    this.events.observable.subscribe((event) => {
      const now = this.endpoint.stats.replayed;
      diagnostics.session(event, now - replayed);
      replayed = now;
    });
  }

  get session(): SessionSnapshot | undefined {
    if (!this.id) return undefined;
    const endpoint = this.endpoint;
    return {
      id: this.idHex,
      lastSent: endpoint.lastSent,
      peerAcked: endpoint.peerAcked,
      lastReceived: endpoint.delivered,
      pending: endpoint.pending,
      connected: this.current?.phase === 'open',
    };
  }

  get stats(): ResumableStats {
    return { ...this.endpoint.stats, ...this.counts };
  }

  async open(signal?: AbortSignal): Promise<Link<LinkData, LinkData>> {
    signal?.throwIfAborted();
    if (this.writer) {
      // The stored session is read once, before the first link: sends wait in the connection's
      // queue until then, so they are numbered after the restored ones.
      this.loading ??= this.load();
      await this.loading;
      if (this.writer.failed) throw this.writer.failed;
      // Closed while the store was read (a lock waited for): this open is abandoned.
      signal?.throwIfAborted();
    }
    this.ended = false;
    // One physical link per session at a time: a newer open supersedes whatever came before.
    this.current?.drop(new LinkFailedError('superseded by a newer link'), CloseCode.NormalClosure);
    const active = new ActiveLink(this);
    this.current = active;
    await active.connect(signal);
    return active.virtual;
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
    const writer = this.writer;
    if (!writer || writer.failed || this.ended || this.pendingRenegotiation) return undefined;
    if (this.loaded) return this.endpoint.send(data);
    return new Promise<void>((resolve, reject) => this.early.push({ data, resolve, reject }));
  }

  /** The store was read (or could not be): number what {@link hold} took meanwhile, or fail it. */
  private releaseEarly(error?: unknown): void {
    const early = this.early;
    this.early = [];
    for (const send of early) {
      if (error === undefined) this.endpoint.send(send.data).then(send.resolve, send.reject);
      else send.reject(error);
    }
  }

  /** Reads the store and takes the stored session over: its identity, its unacknowledged messages, its watermarks. */
  private async load(): Promise<void> {
    try {
      await this.loadStored();
    } catch (error) {
      this.releaseEarly(error);
      throw error;
    }
    this.loaded = true;
    this.releaseEarly();
  }

  private async loadStored(): Promise<void> {
    let stored: StoredClientSession | undefined;
    try {
      const store = this.options.store!;
      await releasing.get(store);
      stored = await store.open();
    } catch (error) {
      // A store that cannot be read must not be written over: every open fails with its error.
      throw error instanceof ClientSessionStoreError || error instanceof ClientSessionLockedError
        ? error
        : new ClientSessionStoreError('unreadable', `reading the stored session failed: ${String(error)}`, {
            cause: error,
          });
    }
    // A second load on this object (attached again after it gave up): the session in memory is
    // the newest copy of the stored one, unless another owner continued that since (see `holds`).
    // What it changed after the release waited in the writer: written now, the store catches up.
    // (A session that received anything has an id; one that only sent may not have one yet.)
    const live = this.id !== undefined || this.endpoint.lastSent > 0;
    const keep = live && this.holds(stored);
    const stale = new LinkClosedError(undefined, 'stored session moved on');
    // Out of date: anything still waiting on it rejects, and the store is read as on a first start.
    if (live && !keep) this.finishSession(() => stale);
    this.writer!.reopen(keep, stale);
    if (keep || !stored) return;
    this.id = stored.id;
    this.idHex = bytesToHex(stored.id);
    this.token = stored.token;
    this.endpoint.restore({
      peerAcked: stored.peerAcked,
      received: stored.received,
      messages: stored.messages.map((message) => fromStoredOutgoing(message, stored.received)),
    });
    const last = stored.messages[stored.messages.length - 1];
    this.restored = {
      sessionId: this.idHex,
      pendingOutgoing: stored.messages.length,
      lastSent: last ? last.seq : stored.peerAcked,
      lastReceived: stored.received,
      deliveredUpTo: Math.max(stored.delivered, stored.received),
      exceedsLimits: this.endpoint.waitingFull,
    };
  }

  /**
   * Whether `stored` is the session in memory as this object left it on release: the same token
   * (128 random bits: the same session, and no other owner resumed it, which rotates the token)
   * and no message past ours (another owner may have appended some without reaching the server).
   * Nothing stored while memory has an identity: another owner ended it, or it was deleted.
   */
  private holds(stored: StoredClientSession | undefined): boolean {
    if (!stored) return !this.id;
    const token = this.token;
    return (
      token !== undefined &&
      bytesToHex(stored.token) === bytesToHex(token) &&
      (stored.messages[stored.messages.length - 1]?.seq ?? stored.peerAcked) <= this.endpoint.lastSent
    );
  }

  /** A store write failed: the session can no longer keep its promise; the connection closes with the error. */
  private storeFailed(error: ClientSessionStoreError): void {
    this.current?.drop(error, CloseCode.NormalClosure);
  }

  close(code = CloseCode.NormalClosure, reason = ''): void {
    const active = this.current;
    if (active) active.closing = true;
    if (active?.phase === 'open') active.write(encodeClose(0, reason));
    active?.drop(new ClosedByUserError('session closed'), code, reason);
    if (this.id) this.events.next({ type: 'closed', sessionId: this.idHex, by: 'local' });
    this.finishSession(() => new ClosedByUserError('session closed'));
    this.ended = true;
    this.releaseStore();
  }

  /**
   * The connection gave up (or failed irrecoverably) rather than being closed: the session stays
   * in the store (the next start re-sends what it holds) but its ownership is released, so a new
   * connection in this process, or another process, can open the store.
   */
  release(): void {
    this.releaseStore();
  }

  /**
   * Closed on purpose, or given up (see {@link release}): once the store holds that the session is over, ownership is released (the
   * next process or tab may take it at once); a later open reads the store again.
   */
  private releaseStore(): void {
    const loading = this.loading;
    const writer = this.writer;
    if (!loading || !writer) return;
    this.loading = undefined;
    this.loaded = false;
    const store = this.options.store!;
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
  finishSession(
    errorFor: (list: readonly UnacknowledgedMessage[]) => unknown,
  ): readonly UnacknowledgedMessage[] {
    let ended: unknown;
    const list = this.endpoint.end((unacknowledged) => {
      ended = errorFor(unacknowledged);
      return ended;
    });
    this.epoch.ended = ended;
    this.epoch = { ended: undefined };
    this.endpoint.restart();
    this.id = undefined;
    this.idHex = '';
    this.token = undefined;
    // The stored session is over too: a restart must not resume it.
    this.writer?.post({ reset: true });
    return list;
  }

  /** The session is lost: report it (event and rejections with the exact list), forget it. */
  lose(reason: SessionLostReason, cause?: unknown): void {
    const sessionId = this.idHex;
    let lostError: SessionLostError | undefined;
    const list = this.finishSession((unacknowledged) => {
      lostError = new SessionLostError(reason, sessionId, unacknowledged, { cause });
      return lostError;
    });
    this.counts.sessionsLost++;
    this.pendingRenegotiation = { lostSessionId: sessionId, lost: list };
    this.events.next({ type: 'lost', sessionId, reason, unacknowledged: list, error: lostError! });
  }
}

/** `storing`: welcomed, writing the session's identity to the client store before confirming it. */
type Phase = 'opening' | 'handshake' | 'storing' | 'open' | 'dead';

/** One physical link of the session, from open through handshake to its end. */
class ActiveLink {
  phase: Phase = 'opening';
  /** Set by a deliberate close, so the link's end reads as that close whatever the peer does. */
  closing = false;
  readonly virtual: VirtualLink;
  /** The session generation this link serves; moves on when a loss starts a new session on it. */
  epoch: Epoch;
  private inner: Link<LinkData, Uint8Array> | undefined;
  private subscription: Subscription | undefined;
  private writer: FrameWriter | undefined;
  private resumedWith: Uint8Array | undefined;
  private settle: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  private downError: unknown;
  private onDown: ((error: unknown) => void) | undefined;
  /** Frames that arrived while the identity was being stored (bounded by `maxUnreadMessages`). */
  private held: ResumeFrame[] = [];

  constructor(private readonly session: ResumableSession) {
    this.epoch = session.epoch;
    this.virtual = new VirtualLink(session, this);
  }

  async connect(signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.establish(signal);
    } catch (error) {
      // Whatever failed (the open, the handshake, the hook), this link is done; the session is not.
      this.drop(error, CloseCode.NormalClosure);
      throw error;
    }
  }

  private async establish(signal: AbortSignal | undefined): Promise<void> {
    const session = this.session;
    const inner = await session.inner.open(signal);
    if (this.phase === 'dead') {
      inner.close();
      throw this.downError;
    }
    this.inner = inner;
    // Acks confirm delivery: a link that can write without confirming each frame is cheaper.
    const write = inner.write
      ? (frame: Uint8Array) => inner.write!(frame)
      : frameWriter((frame) => inner.send(frame));
    // A server that does not read must not grow our output: PONGs and ACKs are coalesced and a
    // link above the high-water mark is dropped (the session resumes on the next one).
    const output = new LinkOutput(
      {
        write,
        writeConfirmed: (frame, done) => {
          inner.send(frame).then(done, done);
        },
        get bufferedAmount() {
          return inner.bufferedAmount ?? 0;
        },
      },
      session.outputHighWater,
      (error) => this.drop(error),
    );
    this.writer = output.writer;
    this.phase = 'handshake';
    const handshake = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    const timer = (session.options.scheduler ?? monotonicScheduler).schedule(() => {
      this.drop(
        new LinkFailedError(`no WELCOME within ${session.handshakeTimeoutMs} ms`, {
          syscallCode: 'ETIMEDOUT',
        }),
        CloseCode.NormalClosure,
      );
    }, session.handshakeTimeoutMs);
    const onAbort = () =>
      this.drop(signal?.reason ?? new LinkFailedError('open aborted'), CloseCode.NormalClosure);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.subscription = inner.messages$.subscribe({
      next: (message) => this.receive(message),
      error: (error) => this.drop(error),
      complete: () => this.drop(new LinkFailedError('the link ended', { syscallCode: 'ECONNRESET' })),
    });
    try {
      this.hello();
      await handshake;
    } finally {
      timer.unsubscribe();
      signal?.removeEventListener('abort', onAbort);
      this.settle = undefined;
    }
    const renegotiation = session.pendingRenegotiation;
    if (!renegotiation) return;
    const hook = session.options.renegotiate;
    if (hook) {
      const context: RenegotiateContext = {
        link: this.virtual,
        session: session.session!,
        lostSessionId: renegotiation.lostSessionId,
        lost: renegotiation.lost,
        signal,
      };
      // The hook's own sends wait for acks that need this link: if it dies, fail the open rather
      // than wait forever (the hook runs again on the next open).
      await new Promise<void>((resolve, reject) => {
        this.onDown = reject;
        Promise.resolve()
          .then(() => hook(context))
          .then(resolve, reject);
      }).finally(() => {
        this.onDown = undefined;
      });
    }
    if (session.pendingRenegotiation === renegotiation) session.pendingRenegotiation = undefined;
  }

  write(frame: Uint8Array): void {
    this.writer?.(frame);
  }

  /** Ends this link (not the session). Idempotent. `abandon`: the physical link is presumed dead, drop it without a closing handshake. */
  drop(error: unknown, code?: number, reason?: string, abandon = false): void {
    if (this.phase === 'dead') return;
    // The peer may answer our CLOSE by closing the link inside the write: that is still our close.
    if (this.closing) error = new ClosedByUserError('session closed');
    const wasOpen = this.phase === 'open';
    this.phase = 'dead';
    this.downError = error;
    this.writer = undefined;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (abandon && this.inner?.abandon) this.inner.abandon();
    else this.inner?.close(code ?? closeCodeFor(error), reason ?? '');
    if (this.session.current === this) {
      this.session.current = undefined;
      if (wasOpen) this.session.endpoint.disconnect();
    }
    this.settle?.reject(error);
    this.onDown?.(error);
    this.virtual.down(error);
  }

  private hello(): void {
    const session = this.session;
    this.resumedWith = session.id;
    const resume = session.id && session.token ? { id: session.id, token: session.token } : undefined;
    this.write(encodeHello(resume, resume ? session.endpoint.delivered : 0, session.helloVersion));
  }

  private receive(message: unknown): void {
    let frame: ResumeFrame;
    try {
      frame = decodeFrame(frameBytes(message), this.session.endpoint.maxFrameBytes);
    } catch (error) {
      this.drop(error);
      return;
    }
    if (this.phase === 'open') this.onFrame(frame);
    else if (this.phase === 'handshake') this.onHandshakeFrame(frame);
    else if (this.phase === 'storing') {
      // The server replays right after its WELCOME; we confirm only once the new token is stored.
      if (this.held.length >= (this.session.options.maxUnreadMessages ?? DEFAULT_MAX_UNREAD_MESSAGES)) {
        this.drop(new ProtocolError('the server sent past the unread limit during the handshake'));
      } else this.held.push(frame);
    }
  }

  private onFrame(frame: ResumeFrame): void {
    const endpoint = this.session.endpoint;
    switch (frame.type) {
      case 'data': {
        const problem = endpoint.receiveData(frame.seq, frame.ack, frame.data);
        if (problem) this.drop(problem);
        return;
      }
      case 'ack': {
        const problem = endpoint.receiveAck(frame.ack);
        if (problem) this.drop(problem);
        else this.virtual.pong();
        return;
      }
      case 'ping':
        this.write(encodePong());
        return;
      case 'pong':
        this.virtual.pong();
        return;
      case 'goaway': {
        const session = this.session;
        const url = frame.url || undefined;
        session.inner.redirect?.(url);
        session.events.next({ type: 'goaway', sessionId: session.idHex, url, delayMs: frame.delayMs });
        // Recoverable, and its hint replaces the backoff: attach resumes after exactly delayMs.
        this.drop(new GoAwayError(frame.delayMs, url), CloseCode.NormalClosure, 'going away');
        return;
      }
      case 'close': {
        const session = this.session;
        const sessionId = session.idHex;
        this.drop(
          new LinkClosedError(CloseCode.NormalClosure, frame.reason || 'session closed by the server'),
          CloseCode.NormalClosure,
        );
        session.events.next({ type: 'closed', sessionId, by: 'peer' });
        session.finishSession(
          (list) =>
            new SessionLostError('closed-by-peer', sessionId, list, { cause: frame.reason || undefined }),
        );
        session.ended = true;
        return;
      }
      default:
        this.drop(new ProtocolError(`unexpected ${frame.type.toUpperCase()} frame after the handshake`));
    }
  }

  private onHandshakeFrame(frame: ResumeFrame): void {
    const session = this.session;
    if (frame.type === 'reject') {
      this.onReject(frame.code, frame.reason);
      return;
    }
    if (frame.type !== 'welcome') {
      this.drop(new ProtocolError(`expected WELCOME or REJECT, got ${frame.type.toUpperCase()}`));
      return;
    }
    const resuming = this.resumedWith;
    if (frame.version < MIN_RESUME_PROTOCOL_VERSION || frame.version > session.helloVersion) {
      this.drop(new ProtocolError(`the server answered with protocol version ${frame.version}`));
      return;
    }
    if (resuming && (!frame.resumed || bytesToHex(frame.id) !== bytesToHex(resuming))) {
      this.failResume(new ProtocolError('the server answered a resume with another session'));
      return;
    }
    if (!resuming && (frame.resumed || frame.lastReceived !== 0)) {
      this.drop(new ProtocolError('the server answered a new session with a resumed one'));
      return;
    }
    session.id = frame.id;
    session.idHex = bytesToHex(frame.id);
    session.token = frame.token;
    const problem = session.endpoint.checkResume(frame.lastReceived);
    if (problem) {
      this.failResume(problem);
      return;
    }
    const writer = session.writer;
    if (!writer) {
      this.welcomed(frame.lastReceived, resuming);
      return;
    }
    // The confirming ACK retires the token the store holds: store the new one first, so a crash
    // at any point leaves a token the server accepts (docs/protocol.md, token rotation).
    this.phase = 'storing';
    // A new session's first write also holds what was sent before it had an identity (taken
    // while no server could be reached, see `hold`): numbered 1, 2... in it, and stored before
    // any of it is written on this link.
    const unidentified = resuming ? [] : session.endpoint.unacknowledged();
    const change: ClientSessionChange = {
      reset: !resuming,
      identity: { id: frame.id, token: frame.token },
      ...(unidentified.length > 0 ? { append: unidentified.map(toStoredOutgoing) } : {}),
    };
    writer.write(change).then(() => {
      if (this.phase !== 'storing') return;
      this.welcomed(frame.lastReceived, resuming);
      const held = this.held;
      this.held = [];
      for (const next of held) {
        if ((this.phase as Phase) !== 'open') break;
        this.onFrame(next);
      }
    }, noop);
  }

  /** The handshake is done (and the identity stored): replay, report, hand the link out. */
  private welcomed(lastReceived: number, resuming: Uint8Array | undefined): void {
    const session = this.session;
    this.phase = 'open';
    // The ACK goes before any replay: the first frame after WELCOME proves we hold the rotated token.
    session.endpoint.connect(this.writer!, lastReceived, this.virtual, encodeAck(session.endpoint.delivered));
    session.counts.handshakes++;
    if (resuming) {
      session.counts.resumes++;
      session.events.next({ type: 'resumed', sessionId: session.idHex, resumes: session.counts.resumes });
    } else {
      session.events.next({ type: 'new', sessionId: session.idHex });
    }
    this.settle?.resolve();
  }

  private onReject(code: SessionRejectedError['rejectCode'], reason: string): void {
    const session = this.session;
    const rejected = new SessionRejectedError(code, reason);
    if (code === 'unsupported-version' && session.helloVersion > MIN_RESUME_PROTOCOL_VERSION) {
      // A server older than us (version 1 during a rolling upgrade): it closes this link, and the
      // session resumes on the next one in the version it speaks. Nothing is lost.
      session.helloVersion = MIN_RESUME_PROTOCOL_VERSION;
      this.drop(
        new LinkFailedError(`the server refused protocol version ${RESUME_PROTOCOL_VERSION}: ${reason}`, {
          cause: rejected,
          recoverable: true,
        }),
        CloseCode.NormalClosure,
      );
      return;
    }
    if (this.resumedWith && code === 'unknown-session') {
      // The server forgot the session (restart, expiry): report the loss, then start afresh on
      // this same link; the server keeps it in the handshake for exactly this.
      session.lose('unknown-session', rejected);
      this.epoch = session.epoch;
      this.hello();
      return;
    }
    if (this.resumedWith && code !== 'too-many-sessions') session.lose(lostReasonOf(code), rejected);
    this.drop(rejected, CloseCode.NormalClosure);
  }

  private failResume(error: ProtocolError): void {
    const session = this.session;
    // Tell the server to drop its half: neither side can trust the other's numbering any more.
    this.write(encodeClose(0, 'protocol error'));
    this.drop(error);
    session.lose('protocol-error', error);
  }
}

/** The link handed to the user: a view of the session over one physical link. */
class VirtualLink implements Link<LinkData, LinkData>, DeliverySink {
  readonly replaysSends = true;
  readonly messages$: Observable<LinkData>;
  readonly pongs$: Observable<unknown>;
  // Fan-outs, not Subjects: every message and every ACK goes through one (a Subject allocates a
  // closure and a copy of its observer list per value).
  private readonly incoming = new MessageFanout<LinkData>();
  private readonly pongFanout = new MessageFanout<unknown>();
  private subscribers = 0;
  private alive = true;

  constructor(
    private readonly session: ResumableSession,
    private readonly active: ActiveLink,
  ) {
    this.pongs$ = this.pongFanout.observable;
    this.messages$ = new RxObservable<LinkData>((subscriber) => {
      const inner = this.incoming.observable.subscribe(subscriber);
      this.subscribers++;
      // Messages that waited for a subscriber are delivered (and only then acknowledged) now.
      if (this.ready && this.session.current === this.active) this.session.endpoint.pump();
      return () => {
        this.subscribers--;
        inner.unsubscribe();
      };
    });
  }

  get ready(): boolean {
    return this.alive && this.subscribers > 0;
  }

  get info(): Readonly<Record<string, unknown>> {
    return { sessionId: this.session.idHex };
  }

  deliver(data: string | Uint8Array): void {
    this.incoming.next(data);
  }

  pong(): void {
    this.pongFanout.next(undefined);
  }

  down(error: unknown): void {
    if (!this.alive) return;
    this.alive = false;
    this.pongFanout.complete();
    if (error instanceof ClosedByUserError) this.incoming.complete();
    else this.incoming.error(error);
  }

  send(data: LinkData): Promise<void> {
    const over = this.over();
    return over === undefined ? this.session.endpoint.send(data) : Promise.reject(over);
  }

  /** A link of a session that is over must not feed the next session: its sends fail as the session did. */
  private over(): unknown {
    const epoch = this.active.epoch;
    return epoch === this.session.epoch
      ? undefined
      : (epoch.ended ?? new LinkClosedError(undefined, 'session ended'));
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
    const refused = this.over() ?? this.session.endpoint.post(data, confirmed, token);
    if (refused !== undefined) queueMicrotask(() => confirmed(refused, token));
  }

  /** Ends the session if this is its current link; a link that is already down has nothing to end. */
  close(code?: number, reason?: string): void {
    if (this.session.current === this.active && this.active.phase === 'open')
      this.session.close(code, reason);
    else this.active.drop(new ClosedByUserError('link closed'), code, reason);
  }

  /** Drops the physical link and keeps the session for a resume (attach calls this before reopening). */
  abandon(): void {
    this.active.drop(
      new LinkFailedError('link abandoned for a new one'),
      CloseCode.GoingAway,
      undefined,
      true,
    );
  }

  ping(): void {
    if (this.session.current === this.active && this.active.phase === 'open') this.active.write(encodePing());
  }
}

const noop = () => {};

/** The release in progress of each store a connection let go of (see `releaseStore`); never rejects. */
const releasing = new WeakMap<ClientSessionStore, Promise<void>>();

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
  const encoded = encodeData(stored.seq, ack, stored.payload);
  if (stored.kind === 'text') encoded.frame[0] = ResumeFrameType.DataText;
  return outgoingMessage(stored.seq, stored.payload.length, encoded, undefined, undefined);
}

function closeCodeFor(error: unknown): number {
  if (error instanceof FrameTooLargeError) return CloseCode.MessageTooBig;
  if (error instanceof MalformedFrameError || error instanceof ProtocolError) return CloseCode.ProtocolError;
  return CloseCode.NormalClosure;
}

function lostReasonOf(code: SessionRejectedError['rejectCode']): SessionLostReason {
  return code === 'too-many-sessions' ? 'protocol-error' : code;
}
