import type { Observable } from 'rxjs';
import {
  type AttachOptions,
  attach,
  type ConnectionOptions,
  type HAConnection,
  type PostingConnection,
  type SendOptions,
} from '../engine/attach.js';
import type { ConnectionState } from '../engine/connection-state.js';
import { LifelineError, LinkClosedError, QueueOverflowError } from '../engine/errors.js';
import type { LinkData, Transport } from '../engine/link.js';
import { checkConnectionOptions, durationMs } from '../engine/options.js';
import { reportException } from '../engine/report-exception.js';
import { type EndpointSource, failoverTransport } from '../operators/failover.js';
import { CloseCode } from '../policy/close-codes.js';
import type {
  ResumableOptions,
  ResumableTransport,
  ResumeSession,
} from '../resume/client/resumable-transport.js';
import type { ResumeProtocol, resume } from '../resume/client/resume.js';
import { resumeProtocolOf } from './resume-option.js';
import { type WebSocketLike, type WebSocketLinkOptions, webSocketTransport } from './web-socket-transport.js';

/**
 * What the `resume` option takes where the platform package ships the protocol (Node, Deno):
 * `resume()`'s protocol, or `true` / {@link ResumableOptions} as shorthands for `resume()` /
 * `resume(options)`. `@lifeline/browser` takes `resume()` (or `false`) only, so that bundles
 * that do not import it do not carry the protocol.
 */
export type ResumeOption = ResumeProtocol | boolean | ResumableOptions;

/**
 * Options of an `HAWebSocket`: the recovery policy of {@link attach} plus transport settings.
 * `Resume` is what the platform's `resume` option takes (see {@link ResumeOption}).
 */
export interface HAWebSocketOptions<Resume = ResumeOption>
  extends ConnectionOptions<LinkData, LinkData, unknown> {
  /**
   * An open (and, with `resume`, its handshake) that takes longer fails, recoverably; in ms, from
   * 1 to 2^31 - 1. Every numeric and enum option is checked by the constructor: a bad value throws
   * an `InvalidOptionError` naming it (`backoff.maxDelayMs`) and its range.
   * @default 10_000
   */
  connectTimeoutMs?: number;
  /**
   * Half-open detection (see {@link AttachOptions.heartbeat}). Unlike `attach`, on by default
   * wherever the link can ping at the protocol level (Node's ws ping frames, the resume
   * protocol's PINGs): a black-holed link is found within 30 s. `false` turns it off.
   * @default {@link DEFAULT_HA_WEB_SOCKET_HEARTBEAT} (10 s / 30 s, ifSupported)
   */
  heartbeat?: AttachOptions<LinkData, LinkData, unknown>['heartbeat'];
  /**
   * Wraps the WebSocket transport with a layer of your own. For exactly-once delivery use
   * `resume` instead; a wrapper that returns `resumable(t)` still gets its `session` handle.
   * Ignored when `resume` is on. A link wrapped as `Object.create(link)` with its own `send` sees
   * every message in that `send` (the link's `sendWith` and `write` fast paths are `undefined`
   * through a wrapper; see `Link`), and its other methods act on the link itself.
   * @default none
   */
  wrapTransport?: (transport: Transport<LinkData, LinkData>) => Transport<LinkData, LinkData>;
  /**
   * More endpoints to fail over to: each recovery attempt opens the next one, starting again
   * from the last one that worked. A function is asked before every open instead (service
   * discovery, or a load balancer's address). With a list, the constructor's `url` is tried
   * first; with a function, only what the function names is opened, and its time counts toward
   * `connectTimeoutMs`.
   * @default none: every attempt reopens `url`
   * @see failoverTransport
   */
  endpoints?: EndpointSource<string | URL>;
  /**
   * Exactly-once, in-order delivery across reconnects with the resume protocol
   * (docs/protocol.md); the server must be a resume server. On every platform pass
   * `resume: resume()` (or `resume(options)`), imported from the platform package or
   * `@lifeline/core/resume`: the import is what brings the protocol into a bundle. Node and Deno
   * also take `true` (the protocol's defaults) and a `ResumableOptions` object. The socket's
   * `session` is the session's handle from the constructor on. Takes precedence over
   * `wrapTransport`.
   * @default false
   * @throws {InvalidOptionError} from the constructor: `true` or options where the platform does
   *   not ship the protocol (browsers)
   */
  resume?: Resume;
}

/**
 * `HAWebSocket`'s heartbeat when the options set none: 10 s of silence sends a ping, 30 s of
 * silence ends the link (recoverable), on links that can ping at the protocol level only.
 */
export const DEFAULT_HA_WEB_SOCKET_HEARTBEAT = Object.freeze({
  intervalMs: 10_000,
  timeoutMs: 30_000,
  ifSupported: true,
});

/**
 * The options of the connection of every socket given none but `connectTimeoutMs`, `endpoints`
 * and `resume`, shared: the connection keeps its options for its whole life (56 B each). Never
 * written to.
 */
const DEFAULT_CONNECTION_OPTIONS = { heartbeat: DEFAULT_HA_WEB_SOCKET_HEARTBEAT };

/**
 * The `error` event of an `HAWebSocket`: an `Event` carrying the error that ended it. Its
 * fields are always set; they are optional in the type only so that a `WebSocket`'s `onerror`
 * handler, which takes a plain `Event`, fits.
 */
export interface HAWebSocketErrorEvent extends Event {
  /** The error that ended the connection (a `LinkClosedError`, an `HttpStatusError`, the network error...). */
  readonly error?: unknown;
  /** The error's message. */
  readonly message?: string;
  /** The error's `code` when it is a Lifeline error (`'ERR_LINK_CLOSED'`...). */
  readonly code?: string | undefined;
}

/** What a `dropped` event carries: a message that was taken and will not be delivered, and why. */
export interface HAWebSocketDropped {
  /** The message as `send()` took it (its own copy of binary data; a `Blob` as given). */
  readonly data: LinkData | Blob;
  /** A `QueueOverflowError` (`'drop-oldest'`), a `FrameTooLargeError`, a `ReplayWindowFullError`... */
  readonly error: unknown;
}

/**
 * The events of an `HAWebSocket`, by name: the standard four with the platform's types
 * (DOM lib: `Event`, `MessageEvent`, `CloseEvent`), and three more as `CustomEvent`s with their
 * `detail`. `addEventListener`, `removeEventListener` and the `on*` properties are typed by it.
 *
 * `recovering` and `recovered` pair up once per outage, as on `HATcpSocket`: see docs/websocket.md,
 * "Events".
 */
export interface HAWebSocketEventMap {
  /** The first link is up (once; a recovered link fires `recovered`). */
  open: Event;
  /** A message, `data` as `binaryType` asks for binary ones (a string for text). */
  message: MessageEvent;
  /**
   * The connection failed for good (recovery gave up, an irrecoverable error, an abnormal end);
   * `close` follows. Not when the server ends it with a close frame whose code is not recovered
   * (1000, 1002, 1008, 4403...): a clean close, reported by `close` alone (`wasClean`, the code
   * and reason), as on a WebSocket (WHATWG WebSockets fire `error` only when the client fails the
   * connection).
   */
  error: HAWebSocketErrorEvent;
  /** The end, once: `code` (1006 when no close frame came), `reason`, `wasClean`. */
  close: CloseEvent;
  /**
   * The open link failed and recovery started: once per outage, however many attempts it takes;
   * `detail` is the connection state at its start (the error, attempt 1 of `maxAttempts`, budgets).
   */
  recovering: CustomEvent<Extract<ConnectionState, { status: 'recovering' }>>;
  /** A new link is up after an outage (`detail`: the state, with `recoveries` so far). */
  recovered: CustomEvent<Extract<ConnectionState, { status: 'open' | 'suspended' }>>;
  /**
   * A message `send()` took will not be delivered (`queue.overflow: 'drop-oldest'` made room, or
   * the resume protocol refused it); `detail` is the message and its error.
   */
  dropped: CustomEvent<HAWebSocketDropped>;
}

/**
 * An `on*` handler of an `HAWebSocket`: it receives the event `HAWebSocketEventMap` names.
 * No `this` type: a handler written for a `WebSocket` fits, and an `HAWebSocket` stays assignable
 * to a `WebSocket` (whose handlers' `this` is a `WebSocket`).
 *
 * The `on*` properties are event handlers as WHATWG HTML defines them: the handler is a listener
 * in the socket's list, added where the property was first set to a function (another function
 * keeps that place, `null` removes it, a function set again goes to the end); `this` and
 * `event.target` are the socket; `stopImmediatePropagation()` stops the listeners after it; a
 * throw is reported (`reportError`, or an uncaught exception in Node) and the listeners after it
 * still run. A value that is not a function reads back as `null`.
 * @see https://html.spec.whatwg.org/multipage/webappapis.html#event-handler-attributes
 */
export type HAWebSocketHandler<E extends Event> = (event: E) => unknown;

/**
 * The WebSocket-shaped drop-in: what {@link defineHAWebSocket} returns instances of. Under the DOM
 * lib, an instance whose `BinaryTypes` is DOM's `BinaryType` (browsers, Deno) is assignable to
 * `WebSocket`. `BinaryTypes` lists the `binaryType` values the platform converts to.
 */
export interface HAWebSocketInstance<BinaryTypes extends string = string> extends EventTarget {
  readonly url: string;
  readonly readyState: number;
  readonly protocol: string;
  readonly extensions: string;
  /**
   * Bytes of application data passed to `send()` / `sendAsync()` and not yet transmitted, as
   * WHATWG WebSockets defines `bufferedAmount`: text counts its UTF-8 bytes (a lone surrogate as
   * U+FFFD, 3 bytes), binary data its byte length (`ArrayBuffer`, a view's own bytes, a `Blob`'s
   * size); WebSocket framing, pings and resume protocol frames are not counted. An integer ≥ 0.
   *
   * On a highly available socket a send is transmitted once it is confirmed, and each send counts
   * once until then, whichever link carries it:
   * - queued while connecting or recovering, or requeued after a link broke: until written and
   *   confirmed on a later link;
   * - Node (`ws`): until the TCP socket handed it to the OS (what `ws` and the kernel buffer for
   *   it is not counted a second time);
   * - a browser's or Deno's WebSocket, which confirm nothing: from the moment the link took it,
   *   the platform's own `bufferedAmount`;
   * - with `resume`: until the server acknowledged it (kept for replay until then, across
   *   links), so up to about 1 s for `send()` (see `send`).
   *
   * 0 once every send is confirmed. A send that fails for good (a `QueueOverflowError` drop, a
   * lost session, `close()` before it was written) no longer counts. Read live, not as of the last
   * task. Text is measured when first read, once per send: reading costs what was sent since the
   * last read, and a socket whose count nobody reads measures nothing.
   * @see https://websockets.spec.whatwg.org/#dom-websocket-bufferedamount
   */
  readonly bufferedAmount: number;
  /**
   * How binary messages arrive; applies to the very next message.
   * @default 'blob' in browsers and Deno, 'nodebuffer' in Node
   */
  binaryType: BinaryTypes;
  onopen: HAWebSocketHandler<Event> | null;
  onmessage: HAWebSocketHandler<MessageEvent> | null;
  onerror: HAWebSocketHandler<HAWebSocketErrorEvent> | null;
  onclose: HAWebSocketHandler<CloseEvent> | null;
  onrecovering: HAWebSocketHandler<HAWebSocketEventMap['recovering']> | null;
  onrecovered: HAWebSocketHandler<HAWebSocketEventMap['recovered']> | null;
  ondropped: HAWebSocketHandler<HAWebSocketEventMap['dropped']> | null;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  addEventListener<K extends keyof HAWebSocketEventMap>(
    type: K,
    listener: (this: HAWebSocketInstance<BinaryTypes>, event: HAWebSocketEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof HAWebSocketEventMap>(
    type: K,
    listener: (this: HAWebSocketInstance<BinaryTypes>, event: HAWebSocketEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
  /**
   * Like WebSocket's `send`, but also accepted while connecting or recovering (queued, bounded;
   * binary data is copied at once). A message that cannot be accepted is refused by a synchronous
   * throw, as a WebSocket throws in CONNECTING, so the caller knows which message was not taken.
   * `data` is what WebSocket's `send` takes (WHATWG WebSockets: `BufferSource or Blob or
   * USVString`): text, bytes (an `ArrayBuffer`, a view of one) or a `Blob`, sent as its bytes in
   * order with the other sends. With `resume` a `Blob` is refused (the protocol frames bytes it
   * has in hand): `send()` takes it and fires `dropped` with an `InvalidMessageError`; read it
   * first (`new Uint8Array(await blob.arrayBuffer())`). Anything else (untyped code) is sent as
   * `String(data)`, as WebSocket's `send` converts it (`null` sends "null"). With `resume`,
   * nobody waits for its acknowledgement, so it goes flagged "the ack may wait" (protocol version
   * 3, docs/protocol.md) and the server may acknowledge it up to about 1 s later (`bufferedAmount`
   * counts it until then); `sendAsync` is acknowledged within the server's `ackDelayMs`.
   * @throws {QueueOverflowError} the outgoing queue is full (`queue` option)
   * @throws {DOMException} `InvalidStateError` once CLOSING or CLOSED
   * @throws {TypeError} `data` is a Symbol (it has no string conversion)
   */
  send(data: LinkData | Blob): void;
  /**
   * Sends and resolves once written (acknowledged, with `resume`). Rejects with a
   * {@link QueueOverflowError} when refused, with `options.signal`'s reason when withdrawn while
   * it waited, or with the error that ended the connection. `data` is what `send` takes, converted
   * as `send` converts it; with `resume` a `Blob` rejects with an `InvalidMessageError`.
   */
  sendAsync(data: LinkData | Blob, options?: SendOptions): Promise<void>;
  close(code?: number, reason?: string): void;
  /** The connection state, with attempts and budgets. */
  readonly state$: Observable<ConnectionState>;
  /**
   * The underlying HA connection (suspend, enable, resetCounts, detach...). Its `close(code,
   * reason)` ends the socket as the socket's `close(code, reason)` does (CLOSING at once, no
   * `dropped`, the close event with that code and reason); so does its `detach()`, whose close
   * event says 1005 (the link is handed back open, no close frame was exchanged).
   */
  readonly connection: HAConnection<LinkData, LinkData>;
  /**
   * The resume session (`id`, `state`, `stats`, `events$`: new, resumed, lost), from the
   * constructor on whenever `resume` is on (or `wrapTransport` returned a resumable transport);
   * `undefined` otherwise.
   */
  readonly session: ResumeSession | undefined;
}

/**
 * `HAWebSocket`'s constructor: WebSocket's two forms, `(url, protocols)` and
 * `(url, protocols, options)`, plus `(url, options)`.
 * @see https://websockets.spec.whatwg.org/#dom-websocket-websocket
 */
export interface HAWebSocketConstructor<Resume = ResumeOption, BinaryTypes extends string = string> {
  new (url: string | URL, options?: HAWebSocketOptions<Resume>): HAWebSocketInstance<BinaryTypes>;
  new (
    url: string | URL,
    protocols?: string | string[],
    options?: HAWebSocketOptions<Resume>,
  ): HAWebSocketInstance<BinaryTypes>;
  readonly prototype: HAWebSocketInstance<BinaryTypes>;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
}

/**
 * What `WebSocket.send(data)` sends, as WebIDL converts its argument (WHATWG WebSockets, "send";
 * the union `(BufferSource or Blob or USVString)`): bytes and Blobs as they are, anything else
 * converted to a string (`String(data)`: `{}` sends "[object Object]", `42` "42", `null`
 * "null"). A Symbol cannot be converted: TypeError, as the platform throws.
 */
function webSocketData(data: unknown): LinkData {
  if (typeof data === 'string' || ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data;
  if (data instanceof Blob) return data as unknown as LinkData;
  // A template literal converts as WebIDL's ToString does (`String()` would convert a Symbol): a
  // Symbol throws the platform's own TypeError.
  return `${data as string}`;
}

/** Platform pieces for {@link defineHAWebSocket}. */
export interface HAWebSocketPlatform<S extends WebSocketLike> extends WebSocketLinkOptions<S> {
  /** The WebSocket constructor: `globalThis.WebSocket` in browsers and Deno, `ws` in Node. */
  WebSocket: new (
    url: string,
    protocols?: string | string[],
  ) => S;
  /** The `binaryType` a new socket starts with. @default 'blob' in browsers; the platform package decides */
  defaultBinaryType?: string;
  /**
   * Turns received bytes (as the links deliver them: `binaryType` above, or a `Uint8Array` from
   * the resume protocol) into what the socket's current `binaryType` asks for, at dispatch, so an
   * assignment applies to the very next message. Handles 'arraybuffer' and 'blob' by default;
   * Node's binding adds 'nodebuffer' and 'fragments'.
   */
  convertBinary?: (data: ArrayBuffer | ArrayBufferView, binaryType: string) => unknown;
  /**
   * Makes `resume: true` and `resume: {...options}` shorthands for `resume()`: the platform
   * package hands in the protocol's factory. Without it, only `resume: resume()` resumes.
   * @default none
   */
  resume?: typeof resume;
}

/**
 * Builds the `HAWebSocket` class for a platform: the WebSocket interface (readyState, url, protocol,
 * binaryType, bufferedAmount, send, close, on* handlers, addEventListener) backed by {@link attach}.
 * It recovers transparently: readyState stays OPEN while recovering, sends are queued (bounded) and
 * flushed in order, and `recovering`/`recovered` events tell what happens. An irrecoverable failure,
 * or recovery giving up, ends it as a plain WebSocket would end: an `error` event, then `close`.
 *
 * Called by the platform packages at their import, so core touches no global at its own import.
 * `Resume` is what the platform's `resume` option takes and `BinaryTypes` the `binaryType` values
 * its `convertBinary` produces; neither is checked against `platform`.
 *
 * @param platform the WebSocket constructor and what else the platform can do.
 * @param defaults options every socket starts from, under the constructor's (a browser's online
 *   and visibility signals); called once per socket. @default none
 * @example
 * ```ts
 * const HAWebSocket = defineHAWebSocket({ WebSocket: globalThis.WebSocket });
 * const socket = new HAWebSocket('wss://example.com/feed');
 * socket.onmessage = (event) => console.log(event.data);
 * socket.onrecovering = (event) => console.log(`reconnecting after ${String(event.detail.error)}`);
 * ```
 */
export function defineHAWebSocket<
  S extends WebSocketLike,
  Resume = ResumeOption,
  BinaryTypes extends string = string,
>(
  platform: HAWebSocketPlatform<S>,
  defaults?: () => HAWebSocketOptions<Resume>,
): HAWebSocketConstructor<Resume, BinaryTypes> {
  const convert = platform.convertBinary ?? convertBinaryStandard;
  class HAWebSocket extends EventTarget implements HAWebSocketInstance {
    static readonly CONNECTING = 0 as const;
    static readonly OPEN = 1 as const;
    static readonly CLOSING = 2 as const;
    static readonly CLOSED = 3 as const;
    // The constants on the prototype too, as WebIDL puts them (not four fields per socket), and
    // `extensions`, always '' (no field per socket either).
    static {
      Object.assign(HAWebSocket.prototype, HAWebSocket, { extensions: '' });
    }
    declare readonly CONNECTING: 0;
    declare readonly OPEN: 1;
    declare readonly CLOSING: 2;
    declare readonly CLOSED: 3;
    // Assigned by the constructor: `declare`d, so the build has no field declarations for them.
    declare readonly url: string;
    declare readonly connection: HAConnection<LinkData, LinkData>;
    declare readonly session: ResumeSession | undefined;
    declare readonly extensions: '';
    // Accessors on the prototype (defined below, one loop for the seven): see handlerListener.
    declare onopen: HAWebSocketHandler<Event> | null;
    declare onmessage: HAWebSocketHandler<MessageEvent> | null;
    declare onerror: HAWebSocketHandler<HAWebSocketErrorEvent> | null;
    declare onclose: HAWebSocketHandler<CloseEvent> | null;
    declare onrecovering: HAWebSocketHandler<HAWebSocketEventMap['recovering']> | null;
    declare onrecovered: HAWebSocketHandler<HAWebSocketEventMap['recovered']> | null;
    declare ondropped: HAWebSocketHandler<HAWebSocketEventMap['dropped']> | null;
    /** @internal The on* handlers set so far, by event type; made on the first set, so an idle socket holds none. */
    declare handlers_: Record<string, unknown> | undefined;
    private ready_ = 0;
    declare private binary_: string;

    constructor(
      url: string | URL,
      protocols?: string | string[] | HAWebSocketOptions,
      options: HAWebSocketOptions = {},
    ) {
      super();
      // `(url, options)`: protocols are a string or a sequence (any iterable, per WebIDL), so an
      // object that is not iterable can only be the options.
      if (protocols && typeof protocols === 'object' && !(Symbol.iterator in protocols)) {
        options = protocols;
        protocols = undefined;
      }
      options = { ...(defaults?.() as HAWebSocketOptions), ...options };
      this.url = String(url);
      this.binary_ = platform.defaultBinaryType ?? platform.binaryType ?? 'blob';
      let { connectTimeoutMs, endpoints, resume, ...attachOptions } = options;
      // Checked here, before the resume protocol or a transport sees them, so the error names
      // the option the caller wrote.
      durationMs('connectTimeoutMs', connectTimeoutMs, { min: 1 });
      checkConnectionOptions(attachOptions);
      // Half-open detection by default wherever the link can ping at the protocol level (Node's
      // ws ping frames, the resume protocol's PINGs); a browser's plain WebSocket cannot, and an
      // application-level ping needs the server's cooperation, so there it stays opt-in.
      if (Object.keys(attachOptions)[0])
        attachOptions.heartbeat = options.heartbeat ?? DEFAULT_HA_WEB_SOCKET_HEARTBEAT;
      else attachOptions = DEFAULT_CONNECTION_OPTIONS;
      const protocol = resumeProtocolOf(resume, platform.resume);
      const wrapTransport = protocol
        ? (transport: Transport<LinkData, LinkData>) =>
            protocol(transport, { connectTimeoutMs, heartbeat: attachOptions.heartbeat })
        : options.wrapTransport;
      // Links always deliver the platform's raw bytes (never Blobs: the resume protocol decodes
      // frames synchronously); `binaryType` is applied per message at dispatch, so assigning it
      // takes effect at once, on the first link as on later ones, as on a WebSocket.
      // The platform's capabilities are inherited, not spread: a copy of a dozen fields per
      // socket (in a hidden class of its own) is idle memory that every connection pays. So is
      // the links' `binaryType`: the platform's, or the link's default, 'arraybuffer'.
      const transportTo = (url: string | URL, attempt?: { readonly remainingMs: number | undefined }) => {
        const options = Object.create(platform) as Parameters<typeof webSocketTransport<S>>[0];
        options.url = String(url);
        options.protocols = protocols as string | string[] | undefined;
        options.connectTimeoutMs = attempt?.remainingMs ?? connectTimeoutMs;
        return webSocketTransport<S>(options);
      };
      const base =
        endpoints === undefined
          ? transportTo(this.url)
          : failoverTransport(Array.isArray(endpoints) ? [this.url, ...endpoints] : endpoints, transportTo, {
              connectTimeoutMs,
            });
      const transport = wrapTransport ? wrapTransport(base) : base;
      // A resumable transport (from `resume`, or a `wrapTransport` that returned `resumable(t)`)
      // brings its session's handle; the protocol's code stays in the resume module.
      this.session = (transport as Partial<ResumableTransport>).handle;
      this.connection = attach(transport, attachOptions);
      // Messages, states, drops and failed sends come through the sink, called directly by the
      // connection, rather than through subscriptions to `messages$`, `state$` and `events$`: an
      // idle socket then holds no subscriber, observer and teardown list for each.
      (this.connection as PostingConnection<LinkData, LinkData>).sink_ = this;
    }

    /** @internal A message, as a `messages$` subscriber would get it: see {@link PostSink}. */
    received_(data: LinkData): void {
      this.dispatchEvent(
        messageEvent(typeof data === 'string' ? data : convert(data, this.binary_), this.url),
      );
    }

    get readyState(): number {
      return this.ready_;
    }
    get protocol(): string {
      const info = this.connection.link?.info;
      return typeof info?.protocol === 'string' ? info.protocol : '';
    }
    get bufferedAmount(): number {
      const connection = this.connection as PostingConnection<LinkData, LinkData>;
      // Each send counts once: in the queue until confirmed, or, where a send is confirmed as soon
      // as the platform's socket has it, in that socket's own count once a plain link (not a
      // resumable one, which confirms on the server's ack and has no count of its own) took it.
      // Sends are confirmed once the network took them where the platform has a write callback
      // (`ws`), and once handed to its socket where it has none (a browser's, Deno's WebSocket).
      const held =
        platform.sendWith || platform.send || connection.flushing_
          ? undefined
          : connection.link?.bufferedAmount;
      return held ?? connection.outbox_.dataBytes_();
    }
    get binaryType(): string {
      return this.binary_;
    }
    set binaryType(value: string) {
      this.binary_ = value;
    }
    get state$(): Observable<ConnectionState> {
      return this.connection.state$;
    }

    send(data: LinkData | Blob): void {
      if (this.ready_ >= 2)
        throw new DOMException('WebSocket is already in CLOSING or CLOSED state', 'InvalidStateError');
      data = webSocketData(data);
      // A refusal (queue full) throws here, synchronously. A message taken and then not delivered
      // is reported as an event rather than as a rejection nobody holds (see sendFailed_).
      (this.connection as PostingConnection<LinkData, LinkData>).post(data);
    }

    /**
     * A message `send()` took was not delivered. A lost resume session is reported by
     * `session.lost$` (with the message), a 'drop-oldest' drop by its own `dropped` event, a queue
     * refusal by `send()` throwing, and nothing after `close()`; anything else fires `dropped`
     * here, so nothing vanishes silently: a message the resume protocol refuses (larger than its
     * frame limit, a full replay window), one a `wrapTransport` link's own `send` refused by
     * throwing (with what it threw), and every message still unconfirmed when the connection
     * ends by itself (recovery gave up, or the peer closed with a code that is not recovered),
     * before the close event.
     */
    /** @internal A message 'drop-oldest' dropped from the queue: see {@link PostSink}. */
    dropped_(data: LinkData, error: unknown): void {
      this.dispatchEvent(detailEvent('dropped', { data, error }));
    }

    /** @internal */
    sendFailed_(data: LinkData, error: unknown): void {
      // After our own close (or detach), nothing: see `closing_`.
      if (this.ready_ >= 2) return;
      // A lost session by code (`SessionLostError`'s): the class stays out of a bundle without resume().
      if (error instanceof QueueOverflowError) return;
      if (error instanceof LifelineError && error.code === 'ERR_SESSION_LOST') return;
      this.dropped_(data, error);
    }

    sendAsync(data: LinkData | Blob, options?: SendOptions): Promise<void> {
      try {
        data = webSocketData(data);
      } catch (error) {
        return Promise.reject(error);
      }
      return this.connection.send(data, options);
    }

    close(code?: number, reason?: string): void {
      // Once CLOSING or CLOSED the connection is closed, and does nothing.
      this.connection.close(code, reason);
    }

    /**
     * @internal The connection is being closed (see {@link PostSink}), by `close()` or by a call to
     * the connection's own `close()` or `detach()`: the same end either way (CLOSING at once, the
     * close event's code and reason, no `dropped` for the sends it cuts off).
     */
    closing_(code?: number, reason?: string): void {
      this.ready_ = 2;
      this.closeCode_ = code ?? CloseCode.NormalClosure;
      // '' when none was given: the close event defaults it.
      this.closeReason_ = reason;
    }

    /** What close() was given, set there: a socket that is not closed keeps neither. */
    declare private closeCode_: number | undefined;
    declare private closeReason_: string | undefined;
    private lastStatus_: ConnectionState['status'] = 'connecting';

    /** @internal The connection's state changed: see {@link PostSink}. */
    stateChanged_(state: ConnectionState): void {
      const previous = this.lastStatus_;
      this.lastStatus_ = state.status;
      switch (state.status) {
        case 'open':
        case 'suspended':
          if (this.ready_ === 0) {
            this.ready_ = 1;
            this.dispatchEvent(new Event('open'));
          } else if (previous === 'recovering') {
            this.dispatchEvent(detailEvent('recovered', state));
          }
          break;
        case 'recovering':
          // Once per outage, not once per attempt.
          if (previous !== 'recovering' && this.ready_ === 1) {
            this.dispatchEvent(detailEvent('recovering', state));
          }
          break;
        case 'closed': {
          // A WebSocket's close event never fires inside close(): code that calls close() and
          // then listens for 'close' must still hear it.
          queueMicrotask(() => this.dispatchClose_(state));
          break;
        }
      }
    }

    private dispatchClose_(state: Extract<ConnectionState, { status: 'closed' }>): void {
      // CLOSING: closed by close() or detach() (see `closing_`), which end it cleanly.
      let wasClean = this.ready_ >= 2;
      this.ready_ = 3;
      let code = this.closeCode_ ?? 1005;
      let reason = this.closeReason_ ?? '';
      if (state.error !== undefined) {
        const error = state.error;
        if (error instanceof LinkClosedError && error.closeCode !== undefined) {
          code = error.closeCode;
          reason = error.reason;
          wasClean = code !== CloseCode.Abnormal;
        } else {
          code = CloseCode.Abnormal;
          reason = '';
          wasClean = false;
        }
        // A WebSocket fires `error` only when the connection fails; a close frame the server sent
        // (1000, 1008, an application's 4403) is a clean end, reported by `close` alone. Giving up
        // after recoverable failures is a failure, and so is an abnormal (1006) end.
        const closedCleanlyByPeer = state.reason === 'irrecoverable' && wasClean;
        if (!closedCleanlyByPeer) this.dispatchEvent(errorEvent(error));
      }
      // A `CloseEvent`'s fields on an `Event` (Node has no `CloseEvent`).
      this.dispatchEvent(Object.assign(new Event('close'), { code, reason, wasClean }) as CloseEvent);
    }
  }
  for (const type of 'open message error close recovering recovered dropped'.split(' ')) {
    // WHATWG HTML "event handler IDL attributes": a non-object reads back as null (WebIDL
    // [LegacyTreatNonObjectAsNull]); the first non-null value adds the shared listener, a later
    // one keeps its place (addEventListener adds a listener once per type and target), null
    // removes it, and a value set again is added at the end.
    Object.defineProperty(HAWebSocket.prototype, `on${type}`, {
      get(this: HAWebSocket) {
        return this.handlers_?.[type] ?? null;
      },
      set(this: HAWebSocket, value: unknown) {
        value = typeof value === 'function' ? value : null;
        this.handlers_ ??= {};
        this.handlers_[type] = value;
        if (value) this.addEventListener(type, handlerListener);
        else this.removeEventListener(type, handlerListener);
      },
    });
  }
  // The platform names the binary types its `convertBinary` produces, and what `resume` takes.
  return HAWebSocket as unknown as HAWebSocketConstructor<Resume, BinaryTypes>;
}

/**
 * The listener of every `on*` handler of every `HAWebSocket` (one object per process: no closure
 * per socket), in the target's listener list where the handler was set, as WHATWG HTML's "event
 * handler" listener is: so inside a handler `event.target` and `currentTarget` are the socket,
 * `this` is the socket, `stopImmediatePropagation()` stops the listeners added after it, and
 * the handler runs in its place among the listeners. As for any listener (WHATWG DOM "inner
 * invoke"), a throw is reported and the others still hear the event; a handler that is an object
 * but not callable does nothing.
 */
function handlerListener(this: { handlers_: Record<string, (event: Event) => unknown> }, event: Event): void {
  try {
    this.handlers_[event.type]!.call(this, event);
  } catch (error) {
    reportException(error);
  }
}

/** 'arraybuffer' and 'blob', as a browser delivers them; anything else falls back to 'arraybuffer'. */
function convertBinaryStandard(data: ArrayBuffer | ArrayBufferView, binaryType: string): unknown {
  if (binaryType === 'blob') return new Blob([data as BlobPart]);
  if (data instanceof ArrayBuffer) return data;
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  if (whole && data.buffer instanceof ArrayBuffer) return data.buffer;
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
}

// Every runtime core supports has `MessageEvent`, `DOMException` and `Blob` (browsers, Deno, Bun,
// Node 18+; the packages need Node 20): no fallbacks for runtimes without them.
function messageEvent(data: unknown, origin: string): MessageEvent {
  return new MessageEvent('message', { data, origin });
}

function detailEvent<T>(type: string, detail: T): CustomEvent<T> {
  return new CustomEvent(type, { detail });
}

function errorEvent(error: unknown): HAWebSocketErrorEvent {
  return Object.assign(new Event('error'), {
    error,
    message: error instanceof Error ? error.message : String(error),
    code: error instanceof LifelineError ? error.code : undefined,
  });
}
