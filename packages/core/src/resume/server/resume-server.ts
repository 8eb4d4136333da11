import type { Observable, SchedulerLike, Subscription } from 'rxjs';
// From its module: the server's import graph stays clear of rxjs's index (see engine/clock.ts).
import { Subject } from 'rxjs/internal/Subject';
import type { DiagnosticsOptions } from '../../diagnostics/diagnostics.js';
import { ServerDiagnostics } from '../../diagnostics/session-diagnostics.js';
import { after, epochClock, every, monotonicScheduler, unrefTimer } from '../../engine/clock.js';
import {
  BackpressureError,
  FrameTooLargeError,
  InvalidOptionError,
  MalformedFrameError,
  ProtocolError,
  type SessionRejectCode,
  SessionRejectedError,
  StaleOwnerError,
} from '../../engine/errors.js';
import { MAX_TIMER_MS } from '../../engine/options.js';
import { CloseCode } from '../../policy/close-codes.js';
import { LinkOutput, type LinkOutputPort, outputHighWaterOf } from '../endpoint/link-output.js';
import { checkResumeServerOptions } from '../option-checks.js';
import {
  decodeFrame,
  encodeGoAway,
  encodePing,
  encodePong,
  encodeReject,
  encodeWelcome,
  frameBytes,
  MAX_GOAWAY_URL_BYTES,
  MIN_RESUME_PROTOCOL_VERSION,
  RESUME_PROTOCOL_VERSION,
  type ResumeFrame,
} from '../wire/resume-frame.js';
import { bytesToHex, newSessionId, newSessionToken } from '../wire/session-token.js';
import { type Digest, digestBytes, digestEqual, digestOf, SessionAuth } from './digest.js';
import { isFencedSessionStore } from './fenced-session-store.js';
import { MemorySessionStore } from './memory-session-store.js';
import {
  ServerSession,
  type ServerSessionEvent,
  type ServerSessionOptions,
  type SessionLinkHandle,
} from './server-session.js';
import type { SessionStore, StoredSession } from './session-store.js';
import { StoreLoad } from './store-load.js';

/**
 * Options of `createResumeServer` (`@lifeline/node/server`, `@lifeline/deno/server`). The session options (replay window, acks, frame size,
 * the application's acknowledgement mode `ack`) apply to every session.
 */
export interface ResumeServerOptions extends ServerSessionOptions, DiagnosticsOptions {
  /** Where sessions live. @default new MemorySessionStore() */
  store?: SessionStore;
  /**
   * How long a session without a link is kept for its client to resume; then it expires and its
   * unacknowledged sends reject with a `SessionLostError`. In ms, from 1 to 2^31 - 1.
   * @default 120_000
   */
  sessionTtlMs?: number;
  /**
   * Sessions held at once (attached or detached); a new one beyond is refused with
   * `too-many-sessions`. An integer ≥ 1. Every numeric and enum option is checked by the
   * constructor: a bad value throws an {@link InvalidOptionError} naming it and its range.
   * @default 10_000
   */
  maxSessions?: number;
  /**
   * New sessions one remote address may hold in this server at once (attached or detached, counted
   * from the HELLO that created them until they end), so that one peer cannot fill `maxSessions`
   * and lock everyone else out for the time-to-live. A HELLO beyond it is refused with REJECT
   * `too-many-sessions` (recoverable: the client retries under its backoff), reported on
   * `events$` and counted in `stats.addressLimited`. Resumes are never refused by it. The address
   * is the transport's peer address (IPv4-mapped IPv6 folded to IPv4): behind a proxy or a load
   * balancer it is the proxy's, so set it there only with one address per client. Off by default.
   * An integer ≥ 1, or Infinity.
   * @default Infinity (no limit)
   */
  maxSessionsPerAddress?: number;
  /**
   * Admission control: the most session-store operations this server lets be pending at once,
   * counted across all its sessions, plus the handshakes under way (each is store operations to
   * come). At or above it, a new handshake (a HELLO for a new session or a resume) is refused:
   * the link is closed with 1013 Try Again Later (RFC 6455 §7.4.1), which clients treat as
   * recoverable and retry under their backoff. Attached sessions are never refused: their writes
   * are the work this protects. Without it, a store (or an event loop) that falls behind queues
   * every write until the store's operation timeout fails them, dropping healthy sessions (1011)
   * whose resumes then add more writes. Sized so that normal traffic never reaches it.
   * Refusals are counted in `stats.shed` and reported on `events$` as `shed`.
   * @default 1_000 (operations)
   */
  maxPendingStoreOps?: number;
  /**
   * Admission control by age: while the oldest pending store operation has waited this long, in
   * ms, new handshakes are refused as with {@link maxPendingStoreOps}. Keep it well under the
   * store's own operation timeout (the Redis store's `operationTimeoutMs` is 5 s by default), so
   * that the operations already issued finish before it. Measured with `now` (monotonic).
   * @default 1_000 (ms)
   */
  maxStoreLagMs?: number;
  /** A link that has not completed its handshake within this time is closed; ms, 1 to 2^31 - 1. @default 10_000 */
  handshakeTimeoutMs?: number;
  /** An attached link quiet for this long is sent a PING; ms, 1 to 2^31 - 1. @default 15_000 */
  pingIntervalMs?: number;
  /**
   * An attached link silent for this long is presumed half-open and closed (its session
   * detaches); ms, 1 to 2^31 - 1.
   * @default 45_000
   */
  idleTimeoutMs?: number;
  /**
   * The clock, in epoch ms: it times the handshake, idle and ping timeouts and the session TTL,
   * and stamps the stored `createdAt`/`expiresAt`. It must not step (a wall clock set forward
   * would expire detached sessions at once, set back would stop every timeout).
   * @default steadyEpochNow (the wall clock at process start plus the monotonic clock); with a
   * `scheduler` given, epoch ms that advance with that scheduler's clock ({@link epochClock})
   */
  now?: () => number;
}

export const DEFAULT_SESSION_TTL_MS = 120_000;
export const DEFAULT_MAX_SESSIONS = 10_000;
export const DEFAULT_SERVER_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_PING_INTERVAL_MS = 15_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_PENDING_STORE_OPS = 1_000;
export const DEFAULT_MAX_STORE_LAG_MS = 1_000;

/** Options of {@link ResumeServer.close}. */
export interface ResumeServerCloseOptions {
  /**
   * How the attached clients are told to move: a GOAWAY frame (protocol version 2) with an
   * optional hint, `url` (where to resume: another replica's address; none: reconnect as usual,
   * e.g. through the load balancer) and `delayMs` (how long to wait first; 0: at once). The client
   * resumes after exactly that delay, without its backoff (the hint takes the path of an HTTP
   * `Retry-After`). `false`: close every link at once (1001), as before version 2; clients then
   * notice a dead link and resume under their backoff.
   * @default {} (GOAWAY, no URL, no delay)
   * @see docs/protocol.md, "Graceful handoff"
   */
  goAway?: false | { readonly url?: string; readonly delayMs?: number };
  /**
   * How long to wait, after the GOAWAYs, for the clients to leave, in ms; links still attached
   * then are closed (1001).
   * @default 5_000
   */
  drainTimeoutMs?: number;
}
/** Older token digests a session remembers, only to count a replayed one as such (not stored). */
const TOKEN_HISTORY = 8;

/** Counters of a resume server, readable by the application (e.g. to alert on token guessing). */
export interface ResumeServerStats {
  readonly newSessions: number;
  readonly resumes: number;
  readonly takeovers: number;
  /** HELLOs with a token that is not the session's. */
  readonly invalidTokens: number;
  /** HELLOs with a token the session already rotated away from (a captured token replayed). */
  readonly replayedTokens: number;
  readonly unknownSessions: number;
  readonly rejected: number;
  /** HELLOs for a new session refused because their address held `maxSessionsPerAddress` sessions. */
  readonly addressLimited: number;
  readonly malformedFrames: number;
  readonly oversizedFrames: number;
  readonly protocolErrors: number;
  /**
   * Links the transport closed because the peer broke its framing below the resume protocol (a
   * WebSocket frame against RFC 6455: invalid UTF-8, too large, unmasked...); each is reported on
   * `events$` as `link-violation`.
   */
  readonly linkViolations: number;
  readonly handshakeTimeouts: number;
  readonly idleTimeouts: number;
  /** Links closed because the client stopped reading: their output passed `outputHighWaterBytes`. */
  readonly backpressureCloses: number;
  readonly expired: number;
  /**
   * Handshakes refused because the store was behind (`maxPendingStoreOps`, `maxStoreLagMs`):
   * their links were closed with 1013, and their clients retry.
   */
  readonly shed: number;
}

/** Something the server reports beside its sessions. Never carries a token. */
export type ResumeServerEvent =
  | {
      readonly type: 'rejected';
      readonly code: SessionRejectCode;
      readonly sessionId: string | undefined;
      readonly error: SessionRejectedError;
    }
  | { readonly type: 'link-error'; readonly sessionId: string | undefined; readonly error: unknown }
  | {
      /**
       * A handshake refused for load (close 1013): `pendingStoreOps` store operations and
       * handshakes were pending, the oldest operation for `storeLagMs` ms. `sessionId`: the
       * session a resume asked for (undefined for a new one).
       */
      readonly type: 'shed';
      readonly sessionId: string | undefined;
      readonly pendingStoreOps: number;
      readonly storeLagMs: number;
    }
  | {
      readonly type: 'link-violation';
      readonly sessionId: string | undefined;
      readonly reason: LinkViolationReason;
      /** A `ProtocolError` naming the violation, with the transport's error as `cause`. */
      readonly error: ProtocolError;
    };

/**
 * Why a transport refused what a peer sent below the resume protocol (RFC 6455 for WebSocket):
 * `invalid-utf8` (a text message or close reason that is not UTF-8; close 1007),
 * `message-too-large` (above the transport's payload limit; close 1009), `unmasked-frame` (a
 * client frame without a mask; close 1002), `invalid-frame` (any other framing error; close 1002).
 */
export type LinkViolationReason = 'invalid-utf8' | 'message-too-large' | 'unmasked-frame' | 'invalid-frame';

/** The server's side of one physical link, handed in by an adapter (ws, net, Deno's WebSocket). */
export interface ServerLinkPort {
  /**
   * Writes one frame as one link message. When `written` is given, it must be called exactly once:
   * when the frame was handed to the network, or failed (the server keeps at most one PONG and one
   * ACK waiting for it).
   */
  send(frame: Uint8Array, written?: () => void): void;
  /**
   * Bytes written and not yet taken by the network (ws `bufferedAmount`, Node `writableLength`):
   * above `outputHighWaterBytes` the link is closed with a {@link BackpressureError}. A port that
   * cannot tell leaves its link without a high-water mark: give it one.
   */
  readonly bufferedAmount?: number;
  /** Closes the link; `abrupt` when the peer is presumed gone (no closing handshake worth waiting for). */
  close(code: number, reason: string, abrupt: boolean): void;
  /** The peer's IP address, for `maxSessionsPerAddress`; without one the limit does not apply. */
  readonly remoteAddress?: string;
}

/** What an adapter calls as the link delivers and ends. */
export interface ServerLinkInput {
  /** One link message (bytes; a string is a malformed frame). */
  receive(message: unknown): void;
  /** The link failed with a transport-level error (a frame too large for the framing, say). */
  error(error: unknown): void;
  /**
   * The transport refused what the peer sent (see {@link LinkViolationReason}) and closes the link
   * itself: the server counts it, reports it and detaches the session.
   */
  violation(reason: LinkViolationReason, error: unknown): void;
  /** The link is closed, for whatever reason. */
  closed(): void;
}

type LinkPhase = 'hello' | 'busy' | 'open' | 'closed';
type Counters = { -readonly [K in keyof ResumeServerStats]: number };

/**
 * The server half of the resume protocol, independent of the link technology: adapters for `ws`
 * and `node:net` (and later Deno) feed it links through {@link ResumeServer.accept}.
 *
 * @see createResumeServer
 */
export class ResumeServer {
  readonly store: SessionStore;
  readonly sessions$: Observable<ServerSession>;
  readonly events$: Observable<ResumeServerEvent>;
  private readonly diagnostics: ServerDiagnostics;
  private readonly sessionSubject = new Subject<ServerSession>();
  private readonly eventSubject = new Subject<ResumeServerEvent>();
  /** The sessions held, by id; each keeps its own {@link SessionAuth} (not a second map: ~0.03-0.06 KB per session). */
  private readonly live = new Map<string, ServerSession>();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly links = new Set<ServerLinkState>();
  /** New sessions held per remote address (with `maxSessionsPerAddress`), and each session's address. */
  private readonly addressSessions = new Map<string, number>();
  private readonly sessionAddress = new Map<string, string>();
  private readonly counters: Counters = {
    newSessions: 0,
    resumes: 0,
    takeovers: 0,
    invalidTokens: 0,
    replayedTokens: 0,
    unknownSessions: 0,
    rejected: 0,
    addressLimited: 0,
    malformedFrames: 0,
    oversizedFrames: 0,
    protocolErrors: 0,
    linkViolations: 0,
    handshakeTimeouts: 0,
    idleTimeouts: 0,
    backpressureCloses: 0,
    expired: 0,
    shed: 0,
  };
  private sweepTimer: Subscription | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  /** Store writes issued for detaches and token confirmations: a graceful close waits for them. */
  private readonly writes = new Set<Promise<unknown>>();
  private creating = 0;
  /** Handshakes under way (HELLO taken, not yet answered): store operations to come. */
  private handshaking = 0;
  /** The store as the server and its sessions use it: pending operations counted (admission control). */
  private readonly io: StoreLoad;
  readonly maxPendingStoreOps: number;
  readonly maxStoreLagMs: number;
  readonly sessionTtlMs: number;
  readonly maxSessions: number;
  readonly maxSessionsPerAddress: number;
  readonly handshakeTimeoutMs: number;
  readonly pingIntervalMs: number;
  readonly idleTimeoutMs: number;
  readonly maxFrameBytes: number;
  /**
   * @internal The newest protocol version this server answers in ({@link RESUME_PROTOCOL_VERSION}):
   * a test lowers it to play a server of an older release (2: before "the ack may wait") in a
   * rolling upgrade, on links whose HELLO comes after the change.
   */
  protocolVersion: number = RESUME_PROTOCOL_VERSION;
  /** The output high-water mark of each link, in bytes (see `outputHighWaterBytes`). */
  readonly outputHighWater: number;
  readonly now: () => number;
  /** Drives the sweep (and the adapters' timers): `options.scheduler`, else {@link monotonicScheduler}. */
  readonly scheduler: SchedulerLike;

  constructor(readonly options: ResumeServerOptions = {}) {
    checkResumeServerOptions(options);
    if (!printViewsSet) setPrintViews();
    this.diagnostics = new ServerDiagnostics(options);
    this.store = options.store ?? new MemorySessionStore();
    checkStoreShape(this.store);
    this.sessionTtlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.maxSessionsPerAddress = options.maxSessionsPerAddress ?? Number.POSITIVE_INFINITY;
    this.maxPendingStoreOps = options.maxPendingStoreOps ?? DEFAULT_MAX_PENDING_STORE_OPS;
    this.maxStoreLagMs = options.maxStoreLagMs ?? DEFAULT_MAX_STORE_LAG_MS;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_SERVER_HANDSHAKE_TIMEOUT_MS;
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.maxFrameBytes = options.maxFrameBytes ?? 1_048_576;
    this.outputHighWater = outputHighWaterOf(options);
    this.now = options.now ?? epochClock(options.scheduler);
    this.io = new StoreLoad(this.store, this.now);
    this.scheduler = options.scheduler ?? monotonicScheduler;
    this.sessions$ = this.sessionSubject.asObservable();
    this.events$ = this.eventSubject.asObservable();
    const tick =
      Math.min(this.pingIntervalMs, this.idleTimeoutMs, this.sessionTtlMs, this.handshakeTimeoutMs) / 4;
    // The sweep must never keep a process alive on its own.
    this.sweepTimer = unrefTimer(
      every(Math.max(10, Math.min(1_000, tick)), () => this.sweep(), this.scheduler),
    );
  }

  get stats(): ResumeServerStats {
    return { ...this.counters };
  }

  /** Live sessions (attached or detached) by id. */
  get sessions(): ReadonlyMap<string, ServerSession> {
    return this.live;
  }

  /**
   * What `JSON.stringify`, loggers and `util.inspect` show of the server: `{ sessions, links, stats }`
   * (sessions held, links open, {@link stats}). Its other fields reach every session's token digest
   * (in the store's records, in the links' handshake state) and messages: none of that is printed.
   */
  toJSON(): object {
    return { sessions: this.live.size, links: this.links.size, stats: this.stats };
  }

  /**
   * Resolves once the store can serve sessions; rejects with the store's error when it cannot
   * open (a missing directory, no SQLite driver), so that a server fails at start rather than
   * refusing every client. `listen()` awaits it; call it yourself before attaching to a server of
   * your own.
   */
  async ready(): Promise<void> {
    await this.store.ready?.();
  }

  /** Takes a new physical link: the adapter forwards its messages and its end to the returned input. */
  accept(port: ServerLinkPort): ServerLinkInput {
    if (this.closing) {
      port.close(CloseCode.GoingAway, 'server closing', true);
      return { receive() {}, error() {}, violation() {}, closed() {} };
    }
    const link = new ServerLinkState(this, port);
    this.links.add(link);
    return link;
  }

  /**
   * Closes the server, gracefully by default: it stops accepting links, stops delivering, stores
   * what was delivered as received, tells every attached client to move now (GOAWAY, see
   * {@link ResumeServerCloseOptions.goAway}), waits for them to leave (at most `drainTimeoutMs`)
   * and for the detaches to be stored, then closes what is left and ends every live session in
   * this process (a durable store keeps them, for another replica or the next process to resume).
   * Their unacknowledged sends reject with `ClosedByUserError`. Idempotent.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', () => void server.close({ goAway: { url: 'wss://b.example/feed' } }));
   * ```
   * @see docs/protocol.md, "Graceful handoff"
   */
  close(options: ResumeServerCloseOptions = {}): Promise<void> {
    if (!this.closed) {
      // Checked before anything stops: a refused close leaves the server serving, and closable.
      const problem = closeOptionsProblem(options);
      if (problem) return Promise.reject(new InvalidOptionError(problem));
    }
    this.closed ??= this.shutdown(options);
    return this.closed;
  }

  private async shutdown(options: ResumeServerCloseOptions): Promise<void> {
    this.closing = true;
    this.sweepTimer?.unsubscribe();
    this.sweepTimer = undefined;
    if (options.goAway !== false) await this.drain(options.goAway ?? {}, options);
    for (const link of [...this.links]) link.close(CloseCode.GoingAway, 'server closing', true);
    for (const session of [...this.live.values()]) session.shutdown();
    this.live.clear();
    this.addressSessions.clear();
    this.sessionAddress.clear();
    await Promise.allSettled([...this.locks.values()]);
    this.sessionSubject.complete();
    this.eventSubject.complete();
  }

  /** Tells every attached client to move, and waits (bounded) for them to leave and for the store. */
  private async drain(
    hint: { readonly url?: string; readonly delayMs?: number },
    options: ResumeServerCloseOptions,
  ): Promise<void> {
    const goAway = encodeGoAway(hint.delayMs ?? 0, hint.url ?? '');
    // Links still in their handshake go now: their clients retry elsewhere.
    for (const link of [...this.links])
      if (link.phase !== 'open') link.close(CloseCode.GoingAway, 'server closing', true);
    const handOffs = Promise.allSettled([...this.live.values()].map((session) => session.handOff(goAway)));
    let timer: Subscription | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = after(options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS, resolve, this.scheduler);
    });
    await Promise.race([handOffs, timeout]);
    timer?.unsubscribe();
    // The detaches the departures caused: stored before the process goes, so the time-to-live runs.
    await Promise.allSettled([...this.writes, ...this.locks.values()]);
  }

  /**
   * Keeps a store write until it settles, so that a graceful close can wait for it. Callers pass
   * writes whose failure they already routed to {@link storeError}: the `catch` here only stops
   * the bookkeeping chain from counting the same rejection twice.
   */
  private track(write: Promise<unknown>): void {
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write)).catch(() => {});
  }

  /** @internal */
  count(key: keyof Counters): void {
    this.counters[key]++;
  }

  /** Hands a session to the application (`sessions$`), and to diagnostics when someone listens. */
  private announce(hex: string, session: ServerSession): void {
    if (this.diagnostics.watchesSessions) {
      session.events$.subscribe((event) => this.diagnostics.serverSession(hex, event));
    }
    this.sessionSubject.next(session);
  }

  /** @internal */
  report(event: ResumeServerEvent): void {
    this.eventSubject.next(event);
    this.diagnostics.server(event);
  }

  /** @internal */
  dropLink(link: ServerLinkState): void {
    this.links.delete(link);
  }

  /**
   * @internal Admission control, at each HELLO: whether the store is too far behind to take a new
   * handshake (then the link is closed with 1013 and the refusal counted and reported). Taken
   * handshakes are counted until they end.
   */
  admit(link: ServerLinkState, sessionId: string | undefined): boolean {
    const pending = this.io.pending + this.handshaking;
    const lag = this.io.oldestAge(this.now());
    if (pending < this.maxPendingStoreOps && lag < this.maxStoreLagMs) {
      this.handshaking++;
      return true;
    }
    this.counters.shed++;
    this.report({ type: 'shed', sessionId, pendingStoreOps: pending, storeLagMs: lag });
    link.close(CloseCode.TryAgainLater, 'server overloaded', false);
    return false;
  }

  /** @internal A handshake {@link admit} took has ended (answered, refused or failed). */
  handshakeEnded(): void {
    this.handshaking--;
  }

  /** @internal A HELLO for a new session. */
  async newSession(link: ServerLinkState): Promise<void> {
    // Sessions still being created count: the checks of simultaneous HELLOs all run before any of
    // them reaches `live`, across the awaits below.
    if (this.live.size + this.creating >= this.maxSessions) {
      link.reject('too-many-sessions', `the server holds ${this.maxSessions} sessions`, undefined, true);
      return;
    }
    const address = Number.isFinite(this.maxSessionsPerAddress) ? link.remoteAddress : undefined;
    if (address !== undefined) {
      // Reserved before the awaits, like `creating`, so simultaneous HELLOs cannot all pass.
      const held = this.addressSessions.get(address) ?? 0;
      if (held >= this.maxSessionsPerAddress) {
        this.counters.addressLimited++;
        link.reject('too-many-sessions', `this address holds ${held} sessions`, undefined, true);
        return;
      }
      this.addressSessions.set(address, held + 1);
    }
    this.creating++;
    let created: string | undefined;
    try {
      created = await this.createNewSession(link);
    } finally {
      this.creating--;
      if (address !== undefined) {
        if (created !== undefined && this.live.has(created)) this.sessionAddress.set(created, address);
        else this.releaseAddress(address);
      }
    }
  }

  private releaseAddress(address: string): void {
    const held = (this.addressSessions.get(address) ?? 1) - 1;
    if (held > 0) this.addressSessions.set(address, held);
    else this.addressSessions.delete(address);
  }

  /** Returns the new session's id, or `undefined` when the link went away first. */
  private async createNewSession(link: ServerLinkState): Promise<string | undefined> {
    const id = newSessionId();
    const token = newSessionToken();
    const tokenHash = await sha256(token);
    const hex = bytesToHex(id);
    const record: StoredSession = {
      id: hex,
      tokenHash: digestBytes(tokenHash),
      retiredTokenHash: null,
      tokenConfirmed: false,
      createdAt: this.now(),
      expiresAt: null,
      lastSent: 0,
      peerAcked: 0,
      received: 0,
      replay: [],
      epoch: 1,
    };
    await this.io.save(record);
    if (link.isClosed || this.closing) {
      await this.io.delete(hex);
      return undefined;
    }
    const session = this.createSession(hex);
    session.epoch = isFencedSessionStore(this.store) ? 1 : undefined;
    session.auth = new SessionAuth(tokenHash, null, false, null);
    this.counters.newSessions++;
    link.opened(session, hex, tokenHash);
    this.announce(hex, session);
    session.attachLink(link, 0, encodeWelcome(false, id, token, 0, link.version), { type: 'connect' });
    return hex;
  }

  /** @internal A HELLO that asks to resume; serialised per session so two links cannot race. */
  resume(link: ServerLinkState, frame: Extract<ResumeFrame, { type: 'hello' }>): Promise<void> {
    const hex = bytesToHex(frame.resume!.id);
    const previous = this.locks.get(hex) ?? Promise.resolve();
    const run = previous.then(() => this.resumeLocked(link, frame, hex));
    const settled = run.then(
      () => {},
      () => {},
    );
    this.locks.set(hex, settled);
    void settled.then(() => {
      if (this.locks.get(hex) === settled) this.locks.delete(hex);
    });
    return run;
  }

  private async resumeLocked(
    link: ServerLinkState,
    frame: Extract<ResumeFrame, { type: 'hello' }>,
    hex: string,
  ) {
    const resume = frame.resume!;
    const fenced = isFencedSessionStore(this.io);
    let session = this.live.get(hex);
    let auth = session?.auth;
    let record: StoredSession | undefined;
    if (!session || !auth) {
      record = await this.loadCurrent(hex);
      auth = record && authOf(record);
    }
    const newToken = newSessionToken();
    const [presented, newHash] = await Promise.all([sha256(resume.token), sha256(newToken)]);
    if (link.isClosed || this.closing) return;
    if (!auth || session?.closed) {
      this.unknownSession(link, hex);
      return;
    }
    if (fenced && session) {
      // Another replica sharing the store may have taken the session and rotated its token since
      // this process served it, without this process hearing of it (no write of ours refused
      // yet): the stored record decides, never a stale copy. Both ways: a token the owner gave
      // the client must not be refused here, and one the owner retired since (which this copy may
      // still take for current) must neither open the session nor claim it away from its owner.
      record = await this.loadCurrent(hex);
      if (link.isClosed || this.closing) return;
      if (session.closed) {
        this.unknownSession(link, hex);
        return;
      }
      if (!record || record.epoch !== session.epoch) {
        session.storeFailed(new StaleOwnerError(hex, session.epoch ?? 0, record?.epoch ?? 0));
        session = undefined;
        auth = record && authOf(record);
        if (!auth) {
          this.unknownSession(link, hex);
          return;
        }
      }
    }
    if (!this.tokenAccepted(link, hex, presented, auth)) return;
    if (fenced) {
      // Take the session: from here on, the store refuses the writes of any previous owner.
      const epoch = await this.io.claim!(hex, session?.epoch);
      if (session && epoch !== session.epoch) {
        // Another server owned the session meanwhile: this process's copy is stale.
        session.storeFailed(new StaleOwnerError(hex, session.epoch ?? 0, epoch ?? 0));
        session = undefined;
      }
      if (!session) {
        // Read after the claim, so nothing a previous owner writes can land behind it.
        record = epoch === undefined ? undefined : await this.loadCurrent(hex);
        if (link.isClosed || this.closing) return;
        auth = record && authOf(record);
        if (!auth) {
          this.unknownSession(link, hex);
          return;
        }
        // The previous owner may have rotated the token since the first read.
        if (!this.tokenAccepted(link, hex, presented, auth)) return;
        record!.epoch = epoch;
      }
    }
    if (!session) {
      session = this.createSession(hex);
      session.restore(record!);
      session.auth = auth;
      this.announce(hex, session);
    }
    const problem = session.state.checkResume(frame.lastReceived);
    if (problem) {
      this.counters.protocolErrors++;
      link.reject('protocol-error', problem.message, hex, true);
      return;
    }
    rotate(auth, presented, newHash);
    // Stored before the client sees the new token: after a crash, the store must know it.
    await this.io.update(
      hex,
      {
        tokenHash: digestBytes(auth.tokenHash),
        retiredTokenHash: auth.retiredTokenHash === null ? null : digestBytes(auth.retiredTokenHash),
        tokenConfirmed: false,
        expiresAt: null,
      },
      session.epoch,
    );
    if (link.isClosed || this.closing || session.closed) {
      if (!session.connected && !session.closed) this.detached(hex);
      return;
    }
    const takeover = session.connected;
    this.counters.resumes++;
    if (takeover) this.counters.takeovers++;
    link.opened(session, hex, newHash);
    session.attachLink(
      link,
      frame.lastReceived,
      encodeWelcome(true, resume.id, newToken, session.state.ackable, link.version),
      {
        type: 'resume',
        takeover,
      },
    );
  }

  /**
   * @internal The client used the token whose digest is `tokenHash` (it sent a frame after the
   * WELCOME that carried it): the previous one is refused from now on. A frame on a link whose
   * token was rotated away since (a slow confirmation racing a resume on another link) proves
   * nothing about the newer token, and confirms nothing.
   */
  confirmToken(hex: string, tokenHash: Digest): void {
    const auth = this.live.get(hex)?.auth;
    if (!auth || auth.tokenConfirmed || !digestEqual(auth.tokenHash, tokenHash)) return;
    auth.tokenConfirmed = true;
    this.track(
      this.io
        .update(hex, { tokenConfirmed: true }, this.live.get(hex)?.epoch)
        .catch((error) => this.storeError(hex, error)),
    );
  }

  /** @internal A session lost its link: its time-to-live starts. */
  detached(hex: string): void {
    const auth = this.live.get(hex)?.auth;
    if (!auth) return;
    auth.expiresAt = this.now() + this.sessionTtlMs;
    this.track(
      this.io
        .update(hex, { expiresAt: auth.expiresAt }, this.live.get(hex)?.epoch)
        .catch((error) => this.storeError(hex, error)),
    );
  }

  private storeError(hex: string, error: unknown): void {
    this.diagnostics.storeError(hex, error);
    this.report({ type: 'link-error', sessionId: hex, error });
    // Fenced: another server took the session, so this process's copy must go.
    if (error instanceof StaleOwnerError) this.live.get(hex)?.storeFailed(error);
  }

  /** The stored session, unless it is missing or its time-to-live passed (then it is deleted). */
  private async loadCurrent(hex: string): Promise<StoredSession | undefined> {
    const record = await this.io.load(hex);
    if (record && record.expiresAt !== null && record.expiresAt <= this.now()) {
      await this.io.delete(hex);
      return undefined;
    }
    return record;
  }

  private unknownSession(link: ServerLinkState, hex: string): void {
    this.counters.unknownSessions++;
    // The link stays in the handshake: the client reports its loss and starts a new session on it.
    link.reject('unknown-session', 'no such session', hex, false);
  }

  /** Whether the presented token opens the session; if not, the link is refused and the attempt counted. */
  private tokenAccepted(link: ServerLinkState, hex: string, presented: Digest, auth: SessionAuth): boolean {
    const match = tokenMatch(presented, auth);
    if (match === 'accepted') return true;
    const replayed = match === 'replayed';
    this.counters[replayed ? 'replayedTokens' : 'invalidTokens']++;
    link.reject('invalid-token', replayed ? 'token already rotated' : 'wrong token', hex, true);
    return false;
  }

  private createSession(hex: string): ServerSession {
    const session = new ServerSession(hex, this.io, this.options, this.sessionEnded);
    this.live.set(hex, session);
    return session;
  }

  /** One function for every session's end (not a closure per session). */
  private readonly sessionEnded = (ended: ServerSession): void => {
    const hex = ended.id;
    if (this.live.get(hex) !== ended) return;
    this.live.delete(hex);
    const address = this.sessionAddress.get(hex);
    if (address !== undefined) {
      this.sessionAddress.delete(hex);
      this.releaseAddress(address);
    }
  };

  private sweep(): void {
    const now = this.now();
    for (const link of this.links) link.check(now);
    for (const session of this.live.values()) {
      const expiresAt = session.auth?.expiresAt ?? null;
      if (expiresAt !== null && expiresAt <= now) {
        if (!session.connected) {
          this.counters.expired++;
          session.expire();
        }
      } else if (expiresAt !== null) {
        // Detached with a store write under way at the time: parked once it settled.
        session.park();
      }
    }
    // Through a promise: a store that throws, or returns no promise, reaches storeError; a timer
    // callback that threw would crash the process.
    Promise.resolve()
      .then(() => this.io.expire(now))
      .catch((error: unknown) => this.storeError('', error));
  }
}

const STORE_METHODS = ['load', 'save', 'update', 'append', 'acknowledge', 'expire', 'delete'] as const;
const OPTIONAL_STORE_METHODS = ['claim', 'ready', 'close'] as const;

/** A `store` without the methods of {@link SessionStore} fails here, not in a timer later. */
function checkStoreShape(store: unknown): void {
  if (typeof store !== 'object' || store === null) {
    throw new InvalidOptionError(
      `store must be a SessionStore object, got ${store === null ? 'null' : typeof store}`,
    );
  }
  const methods = store as Record<string, unknown>;
  for (const name of STORE_METHODS) {
    if (typeof methods[name] !== 'function') {
      throw new InvalidOptionError(`store is not a SessionStore: its ${name}() is missing`);
    }
  }
  for (const name of OPTIONAL_STORE_METHODS) {
    if (methods[name] !== undefined && typeof methods[name] !== 'function') {
      throw new InvalidOptionError(
        `store.${name} must be a function when present, got ${typeof methods[name]}`,
      );
    }
  }
}

/** One physical link: handshake, then frames for its session. */
class ServerLinkState implements ServerLinkInput, SessionLinkHandle {
  phase: LinkPhase = 'hello';
  /** The protocol version negotiated by the HELLO (GOAWAY needs 2). */
  version = MIN_RESUME_PROTOCOL_VERSION;
  private session: ServerSession | undefined;
  private sessionId: string | undefined;
  private hellos = 0;
  private confirmed = false;
  /** The digest of the token this link's WELCOME carried: a frame after it confirms that one only. */
  private welcomedHash: Digest | undefined;
  /**
   * When the link opened until its handshake succeeds (the handshake timeout counts from it), then
   * when the peer was last heard from (the idle timeout): one field, not two, as a millisecond
   * clock reading is a 16 B heap number of its own per field.
   */
  private lastSeen: number;
  private lastPing = 0;
  private readonly output: LinkOutput;

  constructor(
    private readonly server: ResumeServer,
    /** @internal Read by its {@link PortOutput}. */ readonly port: ServerLinkPort,
  ) {
    this.lastSeen = server.now();
    // A client that does not read must not grow our output: one PONG and one ACK wait at most,
    // and a link whose output passes the high-water mark is closed.
    // Its overflow comes back through the port's `drop_` (no closure and context per link).
    this.output = new LinkOutput(new PortOutput(this), server.outputHighWater);
  }

  /** The peer's address (IPv4-mapped IPv6 folded to IPv4), if the transport knows it. */
  get remoteAddress(): string | undefined {
    const address = this.port.remoteAddress;
    return address?.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  }

  /** Read after an await, where the phase may have changed under us. */
  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  receive(message: unknown): void {
    if (this.phase === 'closed') return;
    // Before the handshake succeeds, `lastSeen` holds when the link opened.
    if (this.phase === 'open') this.lastSeen = this.server.now();
    let frame: ResumeFrame;
    try {
      frame = decodeFrame(frameBytes(message), this.server.maxFrameBytes, this.version);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (this.phase === 'open') {
      if (!this.confirmed) {
        this.confirmed = true;
        this.server.confirmToken(this.sessionId!, this.welcomedHash!);
      }
      if (frame.type === 'ping') this.write(encodePong());
      else if (frame.type !== 'pong') {
        const problem = this.session!.receive(frame);
        if (problem) this.fail(problem);
      }
      return;
    }
    if (this.phase === 'busy' || frame.type !== 'hello') {
      this.fail(new ProtocolError(`expected HELLO, got ${frame.type.toUpperCase()}`));
      return;
    }
    if (++this.hellos > 2) {
      this.fail(new ProtocolError('too many HELLOs on one link'));
      return;
    }
    if (frame.version < MIN_RESUME_PROTOCOL_VERSION) {
      this.reject(
        'unsupported-version',
        `this server speaks versions ${MIN_RESUME_PROTOCOL_VERSION} to ${RESUME_PROTOCOL_VERSION}`,
        undefined,
        true,
      );
      return;
    }
    // A newer client is answered in our version, which it also speaks (it falls back as we do).
    this.version = Math.min(frame.version, this.server.protocolVersion);
    if (!this.server.admit(this, frame.resume ? bytesToHex(frame.resume.id) : undefined)) return;
    this.phase = 'busy';
    const handshake = frame.resume ? this.server.resume(this, frame) : this.server.newSession(this);
    handshake.then(
      () => {
        this.server.handshakeEnded();
        if (this.phase === 'busy') this.phase = 'hello';
      },
      (error) => {
        this.server.handshakeEnded();
        this.server.report({ type: 'link-error', sessionId: this.sessionId, error });
        this.close(CloseCode.InternalError, 'handshake failed', false);
      },
    );
  }

  error(error: unknown): void {
    // A frame the framing refused is the peer's fault; a socket error (a reset) is just the end.
    if (error instanceof FrameTooLargeError || error instanceof MalformedFrameError) this.fail(error);
    else this.closed();
  }

  violation(reason: LinkViolationReason, error: unknown): void {
    if (this.phase === 'closed') return;
    this.server.count('linkViolations');
    if (reason === 'message-too-large' && error instanceof FrameTooLargeError) {
      // The same refusal as an oversized resume frame on TCP: reported as that too, so a listener
      // of link errors sees every oversized frame whatever the transport refused it.
      this.server.count('oversizedFrames');
      this.server.report({ type: 'link-error', sessionId: this.sessionId, error });
    }
    const described = new ProtocolError(`the transport refused the peer's framing: ${reason}`, {
      cause: error,
    });
    this.server.report({ type: 'link-violation', sessionId: this.sessionId, reason, error: described });
    // The transport is closing the link already (with the code RFC 6455 gives); this detaches now.
    const code =
      reason === 'invalid-utf8'
        ? CloseCode.InvalidPayload
        : reason === 'message-too-large'
          ? CloseCode.MessageTooBig
          : CloseCode.ProtocolError;
    this.close(code, reason, false);
  }

  closed(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.server.dropLink(this);
    this.detach(undefined);
  }

  /** The handshake succeeded: the link now carries `session`. */
  opened(session: ServerSession, hex: string, tokenHash: Digest): void {
    this.session = session;
    this.welcomedHash = tokenHash;
    this.sessionId = hex;
    this.phase = 'open';
    this.lastSeen = this.server.now();
  }

  reject(code: SessionRejectCode, reason: string, sessionId: string | undefined, close: boolean): void {
    this.server.count('rejected');
    const error = new SessionRejectedError(code, reason);
    this.server.report({ type: 'rejected', code, sessionId, error });
    this.write(encodeReject(code, reason));
    if (close)
      this.close(
        code === 'protocol-error' ? CloseCode.ProtocolError : CloseCode.PolicyViolation,
        code,
        false,
      );
    else if (this.phase === 'busy') this.phase = 'hello';
  }

  write(frame: Uint8Array): void {
    if (this.phase !== 'closed') this.output.writer(frame);
  }

  close(code: number, reason: string, abrupt = false): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.server.dropLink(this);
    this.port.close(code, reason, abrupt);
    this.detach(undefined);
  }

  /** Timers, checked by the server's one sweep: handshake timeout, idle timeout, keepalive pings. */
  check(now: number): void {
    if (this.phase === 'hello' || this.phase === 'busy') {
      if (now - this.lastSeen >= this.server.handshakeTimeoutMs) {
        this.server.count('handshakeTimeouts');
        this.close(CloseCode.TryAgainLater, 'handshake timeout', true);
      }
      return;
    }
    if (this.phase !== 'open') return;
    const silence = now - this.lastSeen;
    if (silence >= this.server.idleTimeoutMs) {
      this.server.count('idleTimeouts');
      this.close(CloseCode.GoingAway, 'idle timeout', true);
    } else if (silence >= this.server.pingIntervalMs && now - this.lastPing >= this.server.pingIntervalMs) {
      this.lastPing = now;
      this.write(encodePing());
    }
  }

  /**
   * The client stopped reading (a {@link BackpressureError}), or the port threw on a write: close
   * at once (a closing handshake would wait behind the backlog, or a frame is missing from it).
   */
  /** @internal */ overflow_(error: unknown): void {
    if (this.phase === 'closed') return;
    const backpressure = error instanceof BackpressureError;
    if (backpressure) this.server.count('backpressureCloses');
    this.server.report({ type: 'link-error', sessionId: this.sessionId, error });
    if (backpressure) this.close(CloseCode.TryAgainLater, 'backpressure', true);
    else this.close(CloseCode.InternalError, 'write failed', true);
  }

  private fail(error: unknown): void {
    if (error instanceof FrameTooLargeError) this.server.count('oversizedFrames');
    else if (error instanceof MalformedFrameError) this.server.count('malformedFrames');
    else this.server.count('protocolErrors');
    this.server.report({ type: 'link-error', sessionId: this.sessionId, error });
    const code = error instanceof FrameTooLargeError ? CloseCode.MessageTooBig : CloseCode.ProtocolError;
    this.close(code, error instanceof Error ? error.name : 'error', false);
  }

  private detach(error: unknown): void {
    const session = this.session;
    if (!session) return;
    this.session = undefined;
    if (session.detachLink(this, error)) this.server.detached(this.sessionId!);
  }
}

/**
 * A link's port as its {@link LinkOutput} writes to it (a class: no closures or getters per link),
 * and the way its overflow reaches the link (`drop_`).
 */
class PortOutput implements LinkOutputPort {
  constructor(private readonly link: ServerLinkState) {}

  write(frame: Uint8Array): void {
    this.link.port.send(frame);
  }

  writeConfirmed(frame: Uint8Array, done: () => void): void {
    this.link.port.send(frame, done);
  }

  get bufferedAmount(): number {
    return this.link.port.bufferedAmount ?? 0;
  }

  drop_(error: unknown): void {
    this.link.overflow_(error);
  }
}

let printViewsSet = false;

/**
 * Makes `console.log` / `util.inspect` show the server, its sessions, the memory store and the
 * token digests by their `toJSON` views (docs/protocol.md, "Session identity"). Set by the first
 * server made, on the prototypes (no bytes per session), and not in the class bodies: a class
 * with a `[Symbol.for(...)]` member cannot be tree-shaken (esbuild keeps it for the call), and
 * these would then weigh on every browser bundle that never makes a server (+9.9 KB).
 */
function setPrintViews(): void {
  printViewsSet = true;
  // What `util.inspect` calls (Node, Deno and Bun honour it).
  const inspect = Symbol.for('nodejs.util.inspect.custom');
  for (const type of [ResumeServer, ServerSession, MemorySessionStore, SessionAuth]) {
    Object.defineProperty(type.prototype, inspect, {
      value(this: { toJSON(): unknown }) {
        return this.toJSON();
      },
      configurable: true,
      writable: true,
    });
  }
}

function authOf(record: StoredSession): SessionAuth {
  return new SessionAuth(
    digestOf(record.tokenHash),
    record.retiredTokenHash === null ? null : digestOf(record.retiredTokenHash),
    record.tokenConfirmed,
    record.expiresAt,
  );
}

/**
 * Whether a presented token digest opens the session: the current token, or the previous one
 * while the client has not shown it holds the current one (the WELCOME that carried it, or the
 * ACK that confirmed it, may have been lost). Any token older than those is `replayed` if this
 * process remembers it, else `invalid`.
 */
function tokenMatch(presented: Digest, auth: SessionAuth): 'accepted' | 'replayed' | 'invalid' {
  if (digestEqual(presented, auth.tokenHash)) return 'accepted';
  const previous = auth.retiredTokenHash !== null && digestEqual(presented, auth.retiredTokenHash);
  if (previous && !auth.tokenConfirmed) return 'accepted';
  if (previous || auth.history?.some((old) => digestEqual(presented, old))) return 'replayed';
  return 'invalid';
}

/**
 * A resume with `presented` succeeded: the new token becomes current, and the previous one is
 * the token the client just presented, the only one it is known to hold, which therefore stays
 * good until the client confirms the new one. Whatever the handshakes lost (a WELCOME, a
 * confirming ACK, both, any number of times in a row), the token the client holds is always the
 * current or the previous one.
 */
function rotate(auth: SessionAuth, presented: Digest, newHash: Digest): void {
  const older = [auth.tokenHash, auth.retiredTokenHash].filter(
    (hash): hash is Digest => hash !== null && !digestEqual(hash, presented),
  );
  auth.history = [...older, ...(auth.history ?? [])].slice(0, TOKEN_HISTORY);
  auth.retiredTokenHash = presented;
  auth.tokenHash = newHash;
  auth.tokenConfirmed = false;
  auth.expiresAt = null;
}

/** SHA-256 through Web Crypto (Node 20, browsers, Deno): tokens are stored and compared as digests. */
async function sha256(bytes: Uint8Array): Promise<Digest> {
  return digestOf(
    new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)),
  );
}

/** Events of one session, re-exported for adapters. */
export type { ServerSessionEvent };

/** What is wrong with `close()`'s options, if anything. */
function closeOptionsProblem(options: ResumeServerCloseOptions): string | undefined {
  const { drainTimeoutMs, goAway } = options;
  if (drainTimeoutMs !== undefined && !(drainTimeoutMs >= 0 && drainTimeoutMs <= MAX_TIMER_MS)) {
    return `drainTimeoutMs must be a duration in ms from 0 to ${MAX_TIMER_MS}, got ${String(drainTimeoutMs)}`;
  }
  if (goAway) {
    const { delayMs, url } = goAway;
    if (
      delayMs !== undefined &&
      !(Number.isSafeInteger(delayMs) && delayMs >= 0 && delayMs <= MAX_TIMER_MS)
    ) {
      return `goAway.delayMs must be an integer from 0 to ${MAX_TIMER_MS}, got ${String(delayMs)}`;
    }
    if (url !== undefined && new TextEncoder().encode(url).length > MAX_GOAWAY_URL_BYTES) {
      return `goAway.url must be at most ${MAX_GOAWAY_URL_BYTES} bytes`;
    }
  }
  return undefined;
}
