import {
  type NextObserver,
  Observable,
  ReplaySubject,
  Subject,
  type Subscriber,
  type Subscription,
} from 'rxjs';
import { type AttachOptions, attach, type HAConnection } from '../engine/attach.js';
import type { ClosedState, ConnectionState } from '../engine/connection-state.js';
import { LinkClosedError, QueueOverflowError } from '../engine/errors.js';
import { byteSizeOf, type Link, type LinkData, type Transport } from '../engine/link.js';
import { checkConnectionOptions, durationMs } from '../engine/options.js';
import {
  DEFAULT_QUEUE_MAX_BYTES,
  DEFAULT_QUEUE_MAX_MESSAGES,
  QUEUE_ENTRY_OVERHEAD_BYTES,
} from '../engine/outgoing-queue.js';
import { failoverTransport } from '../operators/failover.js';
import { CloseCode } from '../policy/close-codes.js';
import type { ResumableTransport, ResumeSession } from '../resume/client/resumable-transport.js';
import type { ResumeProtocol } from '../resume/client/resume.js';
import {
  DEFAULT_HA_WEB_SOCKET_HEARTBEAT,
  type HAWebSocketOptions,
  type HAWebSocketPlatform,
  type ResumeOption,
} from './ha-web-socket.js';
import { resumeProtocolOf } from './resume-option.js';
import {
  type WebSocketLike,
  type WebSocketTransportOptions,
  webSocketTransport,
} from './web-socket-transport.js';

/** The close event handed to `closeObserver`: a `CloseEvent`'s fields. */
export interface HAWebSocketSubjectCloseEvent {
  readonly type: 'close';
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/**
 * Configuration of `haWebSocket`: the fields of RxJS's `WebSocketSubjectConfig`, plus every
 * recovery option of {@link HAWebSocketOptions} (budgets, backoff, queue limits, heartbeat,
 * `resume`, `endpoints`, `connectTimeoutMs`). `Resume` is what the platform's `resume` takes.
 */
export interface HAWebSocketSubjectConfig<T, Resume = ResumeOption> extends HAWebSocketOptions<Resume> {
  /** The endpoint. */
  url: string | URL;
  /** Subprotocols to offer. @default none */
  protocol?: string | string[];
  /**
   * Turns a value given to `next()` into what is sent.
   * @default JSON.stringify
   */
  serializer?: (value: T) => LinkData;
  /**
   * Turns a message event into the value subscribers get. A throw errors the subject with that
   * error and closes the connection.
   * @default (event) => JSON.parse(event.data)
   */
  deserializer?: (event: MessageEvent) => T;
  /** @deprecated RxJS's old name of `deserializer`; used when `deserializer` is not given. */
  resultSelector?: (event: MessageEvent) => T;
  /** Told once per connection, when its first link opens (not on recovered links: see `state$`). */
  openObserver?: NextObserver<Event>;
  /** Told once per connection, when it has ended (whatever the reason), before subscribers hear of it. */
  closeObserver?: NextObserver<HAWebSocketSubjectCloseEvent>;
  /** Told when `complete()` or `error()` starts closing the connection. */
  closingObserver?: NextObserver<void>;
  /**
   * The WebSocket constructor. The platform's by default (`ws` in Node, the global elsewhere);
   * a different one is driven through the standard `addEventListener` interface only.
   * @default the platform's WebSocket
   */
  WebSocketCtor?: new (
    url: string,
    protocols?: string | string[],
  ) => WebSocketLike;
  /**
   * How binary messages reach the deserializer (`event.data`), whatever the link delivered
   * (the resume protocol decodes frames to bytes): `'blob'` or `'arraybuffer'`, and in Node also
   * `'nodebuffer'` and `'fragments'`.
   * @default the platform's: 'nodebuffer' in Node, 'blob' in browsers and Deno
   */
  binaryType?: string;
}

/** A value given to `next()` that was not sent, and why: see {@link HAWebSocketSubject.refused$}. */
export interface HAWebSocketRefusal<T> {
  readonly value: T;
  /**
   * A {@link QueueOverflowError} (the queue was full), a `SessionLostError` (the resume session
   * was lost before the value was acknowledged), the error that ended the connection (recovery
   * gave up), or a `ClosedByUserError` (the subject was closed while the value waited).
   */
  readonly error: unknown;
}

/** `haWebSocket`, bound to a platform's WebSocket by {@link defineHaWebSocket}. */
export type HaWebSocketFactory<Resume = ResumeOption> = <T>(
  urlConfig: string | URL | HAWebSocketSubjectConfig<T, Resume>,
) => HAWebSocketSubject<T>;

const INVALID_ERROR_OBJECT =
  'WebSocketSubject.error must be called with an object with an error code, and an optional reason: { code: number, reason: string }';

/**
 * Builds `haWebSocket` for a platform, as {@link defineHAWebSocket} builds `HAWebSocket`. Called by
 * the platform packages, so core touches no global at its own import.
 *
 * @example
 * ```ts
 * const haWebSocket = defineHaWebSocket({ WebSocket: globalThis.WebSocket, defaultBinaryType: 'blob' });
 * ```
 */
export function defineHaWebSocket<S extends WebSocketLike, Resume = ResumeOption>(
  platform: HAWebSocketPlatform<S>,
  defaults?: () => HAWebSocketOptions<Resume>,
): HaWebSocketFactory<Resume> {
  return <T>(urlConfig: string | URL | HAWebSocketSubjectConfig<T, Resume>) => {
    const config: HAWebSocketSubjectConfig<T, Resume> =
      typeof urlConfig === 'string' || urlConfig instanceof URL ? { url: urlConfig } : urlConfig;
    return new HAWebSocketSubject<T>(
      platform as unknown as HAWebSocketPlatform<WebSocketLike>,
      {
        ...defaults?.(),
        ...config,
      } as HAWebSocketSubjectConfig<T>,
    );
  };
}

/** A multiplexed stream: its subscribe message is sent again on every new link while it lives. */
interface MultiplexStream {
  readonly subscribe: LinkData;
}

/** A multiplex control message in the outgoing queue; {@link StreamLink} decides whether it is written. */
class StreamMessage {
  constructor(
    readonly stream: MultiplexStream,
    readonly kind: 'subscribe' | 'unsubscribe',
    readonly data: LinkData,
  ) {}
}

type Outgoing = LinkData | StreamMessage;

/** A link whose first messages are the subscribe messages of the live multiplexed streams. */
class StreamLink implements Link<LinkData, Outgoing> {
  /** Streams whose subscribe message went out on this link (for a session: on this part of it). */
  private readonly subscribed = new Set<MultiplexStream>();
  readonly messages$: Observable<LinkData>;
  readonly ping?: () => void;
  readonly abandon?: () => void;

  constructor(
    private readonly inner: Link<LinkData, LinkData>,
    resubscribe: readonly MultiplexStream[],
  ) {
    this.messages$ = inner.messages$;
    if (inner.ping) this.ping = () => inner.ping?.();
    if (inner.abandon) this.abandon = () => inner.abandon?.();
    for (const stream of resubscribe) {
      this.subscribed.add(stream);
      // A failed write fails the link: its messages$ reports it, and the next link sends every
      // live stream's subscribe message again, this one included.
      inner.send(stream.subscribe).catch(() => {});
    }
  }

  get pongs$() {
    return this.inner.pongs$;
  }
  get replaysSends() {
    return this.inner.replaysSends;
  }
  get bufferedAmount() {
    return this.inner.bufferedAmount;
  }
  get info() {
    return this.inner.info;
  }

  send(item: Outgoing): Promise<void> {
    if (!(item instanceof StreamMessage)) return this.inner.send(item);
    if (item.kind === 'subscribe') {
      // Already sent when the link opened (the stream was live then): once per link is enough.
      if (this.subscribed.has(item.stream)) return Promise.resolve();
      this.subscribed.add(item.stream);
      return this.inner.send(item.data);
    }
    // On a plain link the server knows only what this link told it: an unsubscribe for a stream
    // never subscribed here (one rewritten after the link it was meant for broke) ends nothing.
    // A session (resume protocol) carries the stream across links, so it always goes.
    if (!this.inner.replaysSends && !this.subscribed.has(item.stream)) return Promise.resolve();
    this.subscribed.delete(item.stream);
    return this.inner.send(item.data);
  }

  close(code?: number, reason?: string): void {
    this.inner.close(code, reason);
  }
}

/** One connection's life: from the first subscribe (or a resubscribe after an end) to its close. */
interface Run<T> {
  readonly output: Subject<T>;
  connection: HAConnection<LinkData, Outgoing>;
  session: ResumeSession | undefined;
  subscriptions: Subscription[];
  opened: boolean;
  /** Sends not yet settled. */
  outstanding: number;
  /** Set by complete()/error(code): close once every send has settled. */
  ending: { code: number; reason: string } | undefined;
  /** What subscribers get as `error` when the run ends (a deserializer throw, a refusal). */
  failure: unknown;
  closeCode: number;
  closeReason: string;
}

const NO_VALUE: unique symbol = Symbol('no value');

/**
 * The subject `haWebSocket` returns: RxJS's `WebSocketSubject` interface (`next`, `error`,
 * `complete`, `subscribe`, `multiplex`, `unsubscribe`), over a connection made highly available
 * by {@link attach}.
 *
 * - Like `webSocket()`, it connects on the first subscribe and closes when the last subscriber
 *   leaves; a subscribe after that (a `retry`, say) opens a new connection.
 * - Unlike `webSocket()`, a broken link is recovered beneath the subscribers: they stay
 *   subscribed, values given to `next()` wait in the bounded queue, and each live `multiplex()`
 *   stream sends its subscribe message again first on every new link. Irrecoverable errors, and
 *   recovery giving up, reach subscribers as `error` with the original error; a clean close by
 *   the server (code 1000) completes them.
 * - Nothing given to `next()` is dropped silently: a value that cannot be sent is reported on
 *   {@link refused$}; when nobody listens there, the refusal errors the subject instead.
 *
 * @example
 * ```ts
 * const subject = haWebSocket<Message>({ url, resume: true });
 * subject.refused$.subscribe(({ value, error }) => retryLater(value, error));
 * subject.multiplex(() => ({ sub: 'prices' }), () => ({ unsub: 'prices' }), (m) => m.topic === 'prices').subscribe(render);
 * ```
 * @see https://rxjs.dev/api/webSocket/WebSocketSubject
 */
export class HAWebSocketSubject<T> extends Observable<T> {
  private run: Run<T> | undefined;
  /** Values given to `next()` while no connection exists, sent in order by the next one. */
  private buffer: { item: Outgoing; value: T | typeof NO_VALUE }[] = [];
  private bufferBytes = 0;
  /** `complete()`/`error(code)` called while no connection existed: applied after the buffer is sent. */
  private pendingEnd: { code: number; reason: string } | undefined;
  /** The live multiplexed streams, in the order they were opened. */
  private readonly streams: MultiplexStream[] = [];
  private readonly refusals = new Subject<HAWebSocketRefusal<T>>();
  private readonly states = new ReplaySubject<ConnectionState>(1);
  private readonly serialize: (value: T) => LinkData;
  private readonly deserialize: (event: MessageEvent) => T;
  private readonly bufferLimit: number;
  private readonly bufferByteLimit: number;
  /** Bytes from a link, as `binaryType` asks for them. */
  private readonly convert: (data: ArrayBuffer | ArrayBufferView) => unknown;
  /** What `resume` asks for, resolved once, so a bad value throws from `haWebSocket()`. */
  private readonly resumeProtocol: ResumeProtocol | undefined;

  /**
   * Values given to `next()` that were not sent, each with its error, at the moment it is
   * refused. While someone listens here, a refusal does not end the subject; while nobody does,
   * a refusal on a live connection errors the subject with that error (never a silent drop).
   */
  readonly refused$: Observable<HAWebSocketRefusal<T>> = this.refusals.asObservable();

  /**
   * The state of the current connection (connecting, open, recovering with attempts and budgets,
   * closed with its reason), across connections; replays the latest state.
   */
  readonly state$: Observable<ConnectionState> = this.states.asObservable();

  constructor(
    private readonly platform: HAWebSocketPlatform<WebSocketLike>,
    private readonly config: HAWebSocketSubjectConfig<T>,
  ) {
    super((subscriber) => this.subscribeOutput(subscriber));
    // Checked now: the connection is made on the first subscription, where a bad value would
    // surface as a stream error far from the call that passed it.
    durationMs('connectTimeoutMs', config.connectTimeoutMs, { min: 1 });
    checkConnectionOptions(config);
    this.resumeProtocol = resumeProtocolOf(config.resume, platform.resume);
    this.serialize = config.serializer ?? JSON.stringify;
    this.deserialize = config.deserializer ?? config.resultSelector ?? ((event) => JSON.parse(event.data));
    const binaryType = config.binaryType ?? platform.defaultBinaryType ?? 'blob';
    const custom = config.WebSocketCtor !== undefined && config.WebSocketCtor !== platform.WebSocket;
    const convert = (!custom && platform.convertBinary) || convertBinaryStandard;
    this.convert = (data) => convert(data, binaryType);
    // The values that wait for a connection are held to the queue's own limits.
    this.bufferLimit = config.queue?.maxMessages ?? DEFAULT_QUEUE_MAX_MESSAGES;
    this.bufferByteLimit = config.queue?.maxBytes ?? DEFAULT_QUEUE_MAX_BYTES;
  }

  /** The current connection (suspend, enable, pending, events$...), while one exists. */
  get connection(): HAConnection<LinkData, unknown> | undefined {
    return this.run?.connection as HAConnection<LinkData, unknown> | undefined;
  }

  /** The messages as a plain Observable, hiding `next`/`error`/`complete` (as on an RxJS Subject). */
  asObservable(): Observable<T> {
    return new Observable<T>((subscriber) => this.subscribe(subscriber));
  }

  /**
   * The resume session of the current connection (`id`, `state`, `stats`, `events$`), when
   * `resume` is on (or `wrapTransport` returned a resumable transport) and a connection exists.
   */
  get session(): ResumeSession | undefined {
    return this.run?.session;
  }

  /**
   * Sends a value (serialized by `serializer`). Accepted while connecting and recovering, and
   * before the first subscribe: it waits in the bounded queue (`queue`) and is sent in order. A
   * value that cannot be taken is reported at the moment it is refused: on {@link refused$};
   * while nobody listens there, by erroring the subscribers of the live connection with the
   * refusal; with neither a listener nor a connection, by throwing.
   * @throws {QueueOverflowError} before any connection exists, with nobody on `refused$`, when
   *   the values waiting for one are at the queue's limit
   */
  next(value: T): void {
    let data: LinkData;
    try {
      data = this.serialize(value);
    } catch (error) {
      this.refuse(value, error, this.run, true);
      return;
    }
    this.enqueue(data, value);
  }

  /**
   * With `{ code, reason }`: closes the connection with that code once every value already given
   * to `next()` has been sent (or refused), then subscribers complete. Anything else errors the
   * subscribers with a TypeError, as `webSocket()` does.
   */
  error(error: unknown): void {
    this.config.closingObserver?.next();
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'number' && code !== 0) {
      const reason = (error as { reason?: unknown }).reason;
      this.end(code, typeof reason === 'string' ? reason : '');
      return;
    }
    const run = this.run;
    if (run) this.fail(run, new TypeError(INVALID_ERROR_OBJECT));
  }

  /** Closes the connection (code 1000) once every value already given to `next()` has been sent (or refused); subscribers then complete. */
  complete(): void {
    this.config.closingObserver?.next();
    this.end(CloseCode.NormalClosure, '');
  }

  /** Closes the connection at once; values still waiting are refused with `ClosedByUserError`. */
  unsubscribe(): void {
    const run = this.run;
    if (run) this.close(run, CloseCode.NormalClosure, '');
  }

  /**
   * A stream of the messages `messageFilter` selects, opened on the server with `subMsg()` and
   * closed with `unsubMsg()`, as with `webSocket()`. The subscribe message is sent again on every
   * recovered link while the stream lives, in the order the streams were opened and before any
   * queued value (with the resume protocol the session carries it, so it is not sent again); the
   * unsubscribe message is sent once.
   */
  multiplex(subMsg: () => T, unsubMsg: () => T, messageFilter: (value: T) => boolean): Observable<T> {
    return new Observable<T>((observer) => {
      let stream: MultiplexStream;
      try {
        stream = { subscribe: this.serialize(subMsg()) };
      } catch (error) {
        observer.error(error);
        return undefined;
      }
      this.streams.push(stream);
      this.enqueue(new StreamMessage(stream, 'subscribe', stream.subscribe), NO_VALUE);
      const subscription = this.subscribe({
        next: (value) => {
          try {
            if (messageFilter(value)) observer.next(value);
          } catch (error) {
            observer.error(error);
          }
        },
        error: (error) => observer.error(error),
        complete: () => observer.complete(),
      });
      return () => {
        const index = this.streams.indexOf(stream);
        if (index >= 0) this.streams.splice(index, 1);
        try {
          this.enqueue(new StreamMessage(stream, 'unsubscribe', this.serialize(unsubMsg())), NO_VALUE);
        } catch (error) {
          observer.error(error);
        }
        subscription.unsubscribe();
      };
    });
  }

  private subscribeOutput(subscriber: Subscriber<T>): () => void {
    const run = this.run ?? this.connect();
    const inner = run.output.subscribe(subscriber);
    return () => {
      inner.unsubscribe();
      // The last subscriber left: close, as webSocket() does.
      if (this.run === run && !run.output.observed) this.close(run, CloseCode.NormalClosure, '');
    };
  }

  private connect(): Run<T> {
    const { config, platform } = this;
    const {
      url,
      protocol,
      serializer: _s,
      deserializer: _d,
      resultSelector: _r,
      openObserver: _o,
      closeObserver: _c,
      closingObserver: _cl,
      WebSocketCtor,
      binaryType,
      connectTimeoutMs,
      endpoints,
      resume: _resume,
      wrapTransport,
      ...attachOptions
    } = config;
    // The same defaults as HAWebSocket: half-open detection where the link can ping.
    attachOptions.heartbeat = config.heartbeat ?? DEFAULT_HA_WEB_SOCKET_HEARTBEAT;
    const run: Run<T> = {
      output: new Subject<T>(),
      connection: undefined as unknown as HAConnection<LinkData, Outgoing>,
      session: undefined,
      subscriptions: [],
      opened: false,
      outstanding: 0,
      ending: undefined,
      failure: undefined,
      closeCode: CloseCode.NormalClosure,
      closeReason: '',
    };
    // A different constructor than the platform's gets the standard interface only: the
    // platform's capabilities (write confirmation, pings) are written for its own sockets.
    const socketOptions =
      WebSocketCtor === undefined || WebSocketCtor === platform.WebSocket
        ? platform
        : { WebSocket: WebSocketCtor };
    const resumeWith = this.resumeProtocol;
    const wrap = resumeWith
      ? (transport: Transport<LinkData, LinkData>) =>
          resumeWith(transport, { connectTimeoutMs, heartbeat: attachOptions.heartbeat })
      : wrapTransport;
    let lastSessionEvent: string | undefined;
    const ownSockets = socketOptions === platform;
    const transportTo = (endpoint: string | URL, attempt?: { readonly remainingMs: number | undefined }) =>
      webSocketTransport<WebSocketLike>({
        ...socketOptions,
        url: String(endpoint),
        protocols: protocol,
        connectTimeoutMs: attempt?.remainingMs ?? connectTimeoutMs,
        // Links deliver raw bytes (never Blobs: the resume protocol decodes frames synchronously);
        // `binaryType` is applied per message, as HAWebSocket does.
        binaryType: (ownSockets ? platform.binaryType : undefined) ?? 'arraybuffer',
      } as WebSocketTransportOptions<WebSocketLike>);
    const base =
      endpoints === undefined
        ? transportTo(url)
        : failoverTransport(Array.isArray(endpoints) ? [url, ...endpoints] : endpoints, transportTo, {
            connectTimeoutMs,
          });
    const inner = wrap ? wrap(base) : base;
    // A resumable transport (from `resume`, or a `wrapTransport` that returned `resumable(t)`)
    // says whether each link resumed the session: a resumed one needs no re-subscribe.
    const session$ = (inner as Partial<ResumableTransport>).session$;
    if (session$ !== undefined) {
      run.session = (inner as ResumableTransport).handle;
      run.subscriptions.push(session$.subscribe((event) => (lastSessionEvent = event.type)));
    }
    const streams = this.streams;
    const transport: Transport<LinkData, Outgoing> = {
      async open(signal) {
        const link = await inner.open(signal);
        // A resumed session still has every stream's subscription: sending it again would
        // duplicate it. A new session (the first, or one after a loss) and a plain link need them.
        return new StreamLink(link, lastSessionEvent === 'resumed' ? [] : streams.slice());
      },
      // A resumable session with a client store takes plain sends while no link is up (stored);
      // stream messages wait for a link, where their per-link bookkeeping lives.
      hold: (item) => (item instanceof StreamMessage ? undefined : inner.hold?.(item)),
      close: (code, reason) => inner.close?.(code, reason),
      release: () => inner.release?.(),
    };
    this.run = run;
    run.connection = attach(transport, attachOptions as AttachOptions<LinkData, Outgoing, unknown>);
    run.subscriptions.push(
      run.connection.messages$.subscribe((data) => this.onMessage(run, data)),
      run.connection.state$.subscribe((state) => this.onState(run, state)),
    );
    const buffered = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    for (const { item, value } of buffered) this.send(run, item, value);
    const end = this.pendingEnd;
    this.pendingEnd = undefined;
    if (end) this.endRun(run, end.code, end.reason);
    return run;
  }

  private onMessage(run: Run<T>, data: LinkData): void {
    let value: T;
    try {
      value = this.deserialize(messageEvent(typeof data === 'string' ? data : this.convert(data)));
    } catch (error) {
      this.fail(run, error);
      return;
    }
    run.output.next(value);
  }

  private onState(run: Run<T>, state: ConnectionState): void {
    this.states.next(state);
    if ((state.status === 'open' || state.status === 'suspended') && !run.opened) {
      run.opened = true;
      this.config.openObserver?.next(new Event('open'));
    } else if (state.status === 'closed') {
      this.onClosed(run, state);
    }
  }

  private onClosed(run: Run<T>, state: ClosedState): void {
    if (this.run === run) this.run = undefined;
    for (const subscription of run.subscriptions) subscription.unsubscribe();
    run.subscriptions = [];
    const error = state.error;
    // A clean close by the server (1000) ends the stream as webSocket() ends it: complete.
    const cleanByPeer = error instanceof LinkClosedError && error.closeCode === CloseCode.NormalClosure;
    let code = run.closeCode;
    let reason = run.closeReason;
    if (error instanceof LinkClosedError && error.closeCode !== undefined) {
      code = error.closeCode;
      reason = error.reason;
    } else if (error !== undefined) {
      code = CloseCode.Abnormal;
      reason = '';
    }
    this.config.closeObserver?.next({
      type: 'close',
      code,
      reason,
      wasClean: error === undefined || (code !== CloseCode.Abnormal && error instanceof LinkClosedError),
    });
    if (run.failure !== undefined) run.output.error(run.failure);
    else if (error === undefined || cleanByPeer) run.output.complete();
    else run.output.error(error);
  }

  private enqueue(item: Outgoing, value: T | typeof NO_VALUE): void {
    const run = this.run;
    if (run) {
      this.send(run, item, value, true);
      return;
    }
    const data = item instanceof StreamMessage ? item.data : item;
    const size = byteSizeOf(data) + QUEUE_ENTRY_OVERHEAD_BYTES;
    if (this.buffer.length >= this.bufferLimit || this.bufferBytes + size > this.bufferByteLimit) {
      if (value !== NO_VALUE) {
        const limit = this.buffer.length >= this.bufferLimit ? 'messages' : 'bytes';
        this.refuse(
          value,
          new QueueOverflowError(
            limit,
            `the values waiting for a connection are at the queue's ${limit} limit`,
          ),
          undefined,
          true,
        );
      }
      return;
    }
    this.bufferBytes += size;
    // Like WebSocket.send, take a copy: the caller may reuse its buffer before a link is up.
    this.buffer.push({ item: item instanceof StreamMessage ? item : copyBytes(item), value });
  }

  /**
   * Hands one message to the connection. A refusal at the door (`enqueue` throws: the queue is
   * full, the connection has ended) is reported at once, inside `next()`; a later one (recovery
   * gave up, the session was lost, the subject was closed) when the send rejects.
   */
  private send(run: Run<T>, item: Outgoing, value: T | typeof NO_VALUE, inNext = false): void {
    let sent: Promise<void>;
    try {
      sent = run.connection.enqueue(item);
    } catch (error) {
      if (value !== NO_VALUE) this.refuse(value, error, run, inNext);
      return;
    }
    run.outstanding++;
    sent.then(
      () => this.settled(run),
      (error) => {
        this.settled(run);
        // A multiplex message that was not sent needs no report: its stream is subscribed again
        // on the next link, or the connection (and every stream with it) has ended.
        if (value !== NO_VALUE) this.refuse(value, error, run);
      },
    );
  }

  private settled(run: Run<T>): void {
    run.outstanding--;
    if (run.outstanding === 0 && run.ending) this.close(run, run.ending.code, run.ending.reason);
  }

  /**
   * Reports a value that was not sent: on refused$ when someone listens; else by erroring the
   * live connection's subscribers; else, inside `next()`, by throwing (nobody else could hear it).
   */
  private refuse(value: T, error: unknown, run: Run<T> | undefined, inNext = false): void {
    if (this.refusals.observed) {
      this.refusals.next({ value, error });
      return;
    }
    if (run !== undefined && run.failure === undefined && run.connection.state$.value.status !== 'closed') {
      this.fail(run, error);
      return;
    }
    if (inNext) throw error;
    // Nobody listens and the connection has ended: its subscribers were told already, by the
    // error that ended it (the same one this value was refused with), or they ended it themselves.
  }

  /** Ends the run with `error` for its subscribers. */
  private fail(run: Run<T>, error: unknown): void {
    if (run.failure !== undefined) return;
    run.failure = error;
    this.close(run, CloseCode.NormalClosure, '');
  }

  /** complete()/error(code): the current subscribers complete once what was sent has gone; new ones get a new connection. */
  private end(code: number, reason: string): void {
    const run = this.run;
    if (run) this.endRun(run, code, reason);
    else this.pendingEnd = { code, reason };
  }

  private endRun(run: Run<T>, code: number, reason: string): void {
    if (this.run === run) this.run = undefined;
    run.ending = { code, reason };
    if (run.outstanding === 0) this.close(run, code, reason);
  }

  private close(run: Run<T>, code: number, reason: string): void {
    if (this.run === run) this.run = undefined;
    run.closeCode = code;
    run.closeReason = reason;
    run.connection.close(code, reason);
  }
}

/** A private copy of binary data (a Node `Buffer` stays a `Buffer`); strings as they are. */
function copyBytes(data: LinkData): LinkData {
  if (data instanceof ArrayBuffer) return data.slice(0);
  if (data instanceof DataView)
    return new DataView(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  // `%TypedArray%.prototype.slice`, which copies (a `Buffer`'s own `slice` returns a view); read
  // here rather than kept in a module constant, which a bundler must keep even when unused.
  if (ArrayBuffer.isView(data))
    return Object.getPrototypeOf(Uint8Array.prototype).slice.call(data) as ArrayBufferView;
  return data;
}

/** 'arraybuffer' and 'blob', as a browser delivers them; anything else falls back to 'arraybuffer'. */
function convertBinaryStandard(data: ArrayBuffer | ArrayBufferView, binaryType: string): unknown {
  if (binaryType === 'blob' && typeof Blob === 'function') return new Blob([data as BlobPart]);
  if (data instanceof ArrayBuffer) return data;
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  if (whole && data.buffer instanceof ArrayBuffer) return data.buffer;
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
}

function messageEvent(data: unknown): MessageEvent {
  if (typeof MessageEvent === 'function') return new MessageEvent('message', { data });
  return Object.assign(new Event('message'), { data }) as MessageEvent;
}
