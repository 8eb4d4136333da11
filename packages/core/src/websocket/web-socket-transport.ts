import { Observable, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
import { after, monotonicScheduler } from '../engine/clock.js';
import { ConnectFailedError, LinkClosedError, LinkFailedError, NotOpenError } from '../engine/errors.js';
import type { Link, LinkData, LinkReader, Transport } from '../engine/link.js';
import { MessageFanout } from '../engine/message-fanout.js';
import { durationMs } from '../engine/options.js';
import { resolveWithin } from '../operators/endpoint-provider.js';
import { CloseCode } from '../policy/close-codes.js';

/** The part of the WebSocket interface the transport uses: browsers', Deno's and `ws`'s all fit. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: LinkData): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
  removeEventListener(type: string, listener: (event: any) => void): void;
}

/** A WebSocket constructor: the global one, `ws`'s, or any compatible one. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/**
 * What only some platforms can do, handed in by the platform package instead of sniffed.
 * Node's binding fills these in from `ws`; browsers and Deno leave them out.
 */
export interface WebSocketCapabilities<S extends WebSocketLike = WebSocketLike> {
  /**
   * Writes a message and resolves once it was written to the network (`ws`'s send callback).
   * @default send synchronously and resolve: the message was handed to the platform's buffer
   */
  send?: (socket: S, data: LinkData) => Promise<void>;
  /**
   * Writes a message without confirmation, for {@link Link.write} (Node's binding batches the
   * writes of one tick into one socket write here). Errors thrown fail the link.
   * @default `socket.send(data)`
   */
  write?: (socket: S, data: LinkData) => void;
  /**
   * {@link Link.sendWith}: writes a message and calls `confirmed` once it was written to the
   * network, in write order, possibly once for a batch (Node's binding confirms the writes of one
   * tick together instead of one `ws` callback each). Errors thrown fail the send.
   * @default none: `send` confirms each message
   */
  sendWith?: (
    socket: S,
    data: LinkData,
    confirmed: (error: unknown, token: object) => void,
    token: object,
  ) => void;
  /** Sends a protocol-level ping frame (`ws`'s `ping()`). @default none: use an application heartbeat */
  ping?: (socket: S) => void;
  /**
   * Subscribes to pong frames; returns the unsubscribe function. A platform whose `listen` calls
   * `handlers.onPong` instead leaves this out (no listener closure per link).
   * @default none
   */
  onPong?: (socket: S, listener: () => void) => () => void;
  /**
   * Turns an error event into a typed error, e.g. the HTTP status of a refused upgrade
   * (`ws` reports "Unexpected server response: 401"). @default a recoverable {@link LinkFailedError}
   */
  describeError?: (event: unknown, opened: boolean) => Error | undefined;
  /**
   * Subscribes to the socket's four events; returns the unsubscribe function. `ws` offers a
   * leaner EventEmitter path than its WHATWG `addEventListener` (no event object per message).
   * @default addEventListener('open' | 'message' | 'error' | 'close')
   */
  listen?: (socket: S, handlers: WebSocketHandlers) => (() => void) | undefined;
  /**
   * Stops what `listen` started, for a `listen` that returns nothing (shared listeners that find
   * the handlers on the socket need no function per link to stop them).
   * @default none: the function `listen` returned
   */
  unlisten?: (socket: S, handlers: WebSocketHandlers) => void;
  /**
   * Drops the connection at once, without the closing handshake (`ws`'s `terminate()`). Used when
   * a link is abandoned (declared dead by the heartbeat: a close frame would never be answered),
   * and after our close when the peer does not answer it within `closeLingerMs` (through
   * `terminateAfter` where the platform gives it, else on the `scheduler`'s timer, cancelled by
   * the socket's close event).
   * @default none: the platform's own close timeout applies (browsers end it themselves)
   */
  terminate?: (socket: S) => void;
  /**
   * After our close: drops the connection with `terminate` unless it closed within `ms` (the
   * peer answered the closing handshake), on `scheduler`'s timer. A capability rather than the
   * link's own code, so browsers' bundles, where the platform ends the handshake itself, do not
   * carry it.
   * @default none: the platform's own close timeout applies
   */
  terminateAfter?: (socket: S, ms: number, scheduler: SchedulerLike | undefined) => void;
}

/**
 * What {@link WebSocketCapabilities.listen} must call, as methods (`handlers.onOpen()`, never a
 * detached `handlers.onOpen`): the link's handlers are a class's. Renamed from `open`,
 * `message`, `error` and `close` (the link implements these, and its own `close(code, reason)`
 * is another method): a `listen` written for those names must call these.
 */
export interface WebSocketHandlers {
  onOpen(): void;
  onMessage(data: LinkData): void;
  /** `event` is handed to `describeError`. */
  onError(event: unknown): void;
  onClose(code: number, reason: string): void;
  /** A pong frame, from a `listen` that can see them (Node's `ws`); see {@link WebSocketCapabilities.onPong}. */
  onPong?(): void;
}

/** The standard way: `addEventListener` for each event. */
export function listenWithEventTarget(socket: WebSocketLike, handlers: WebSocketHandlers): () => void {
  // One listener for the four events; the handlers are called as methods (the link's are a class's).
  const listener = (event: { type: string; data: LinkData; code: number; reason: string }) => {
    const type = event.type;
    if (type === 'message') handlers.onMessage(event.data);
    else if (type === 'open') handlers.onOpen();
    else if (type === 'error') handlers.onError(event);
    else handlers.onClose(event.code, event.reason);
  };
  for (const type of SOCKET_EVENTS) socket.addEventListener(type, listener);
  return () => {
    for (const type of SOCKET_EVENTS) socket.removeEventListener(type, listener);
  };
}

const SOCKET_EVENTS = ['open', 'message', 'error', 'close'];

/**
 * The settings of each WebSocket link, with the platform's capabilities: the options the
 * platform packages' drop-ins share with {@link webSocketTransport}.
 */
export interface WebSocketLinkOptions<S extends WebSocketLike = WebSocketLike>
  extends WebSocketCapabilities<S> {
  /**
   * How binary messages arrive. @default 'arraybuffer'
   */
  binaryType?: string;
  /**
   * An open (the `url` function included) that takes longer fails with a recoverable
   * {@link ConnectFailedError}, in ms, from 1 to 2^31 - 1.
   * @default 10_000
   */
  connectTimeoutMs?: number;
  /**
   * After `close()`, how long the closing handshake may wait for the peer's close frame before
   * the connection is dropped with `terminateAfter`, or `terminate` (where the platform has either):
   * a peer that is gone would otherwise hold the socket and a timer for `ws`'s 30 s, and keep the
   * process alive. Like the TCP link's linger. Without either (browsers) the platform decides. In ms, from
   * 0 to 2^31 - 1.
   * @default 2_000
   */
  closeLingerMs?: number;
  /**
   * Drives the connect timeout and the close linger: a `TestScheduler` in marble tests. Fake
   * timers (`vi.useFakeTimers()`) drive the default.
   * @default monotonicScheduler
   */
  scheduler?: SchedulerLike;
}

/** The options of a platform's WebSocket transport, which supplies the endpoint and the constructor. */
export interface WebSocketOpenOptions<S extends WebSocketLike = WebSocketLike>
  extends WebSocketLinkOptions<S> {
  /** Subprotocols to offer. @default none */
  protocols?: string | string[];
}

/** Options of {@link webSocketTransport}. */
export interface WebSocketTransportOptions<S extends WebSocketLike = WebSocketLike>
  extends WebSocketOpenOptions<S> {
  /**
   * The endpoint, or a function asked before each open (fresh auth tokens in the query, say).
   * The function's time counts toward `connectTimeoutMs`; one that does not answer in time, or
   * throws, fails the attempt recoverably ({@link ConnectFailedError}).
   */
  url: string | URL | (() => string | URL | Promise<string | URL>);
  /** The WebSocket constructor: `globalThis.WebSocket` in browsers and Deno, `ws` in Node. */
  WebSocket: new (
    url: string,
    protocols?: string | string[],
  ) => S;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_WS_CLOSE_LINGER_MS = 2_000;

const OPEN = 1;
const CLOSED = 3;

/**
 * A transport of WebSocket links, written once for every platform: the platform hands in its
 * WebSocket constructor (and optional capabilities such as write confirmation and pings).
 *
 * Close codes become {@link LinkClosedError}s, classified by `isRecoverableByDefault`
 * (1001, 1006, 1011, 1012, 1013 recoverable; 1000, 1008, 44xx not).
 *
 * @example
 * ```ts
 * const transport = webSocketTransport({ url: 'wss://example.com/feed', WebSocket: globalThis.WebSocket });
 * const conn = attach(transport);
 * ```
 */
export function webSocketTransport<S extends WebSocketLike>(
  options: WebSocketTransportOptions<S>,
): Transport<LinkData, LinkData> {
  durationMs('connectTimeoutMs', options.connectTimeoutMs, { min: 1 });
  durationMs('closeLingerMs', options.closeLingerMs);
  // One `open` for every transport, reading the options from the transport it is called on: an
  // HAWebSocket keeps its transport for its whole life, and a closure (with its context) each.
  return { open: openWebSocketTransport, options_: options } as WebSocketTransport<S>;
}

/** What {@link webSocketTransport} returns: its options beside the shared `open`. */
interface WebSocketTransport<S extends WebSocketLike> extends Transport<LinkData, LinkData> {
  readonly options_: WebSocketTransportOptions<S>;
}

async function openWebSocketTransport<S extends WebSocketLike>(
  this: WebSocketTransport<S>,
  signal?: AbortSignal,
): Promise<Link<LinkData, LinkData>> {
  signal?.throwIfAborted();
  const options = this.options_;
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const url = options.url;
  if (typeof url !== 'function') return openWebSocketLink(String(url), options, signal, timeoutMs);
  const resolved = await resolveWithin(url, timeoutMs, signal, 'the url function', options.scheduler);
  return openWebSocketLink(
    String(resolved.value),
    options,
    signal,
    Math.max(1, timeoutMs - resolved.elapsedMs),
  );
}

function openWebSocketLink<S extends WebSocketLike>(
  url: string,
  options: WebSocketTransportOptions<S>,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<Link<LinkData, LinkData>> {
  return new Promise((resolve, reject) => {
    let socket: S;
    try {
      socket =
        options.protocols === undefined
          ? new options.WebSocket(url)
          : new options.WebSocket(url, options.protocols);
    } catch (error) {
      reject(new ConnectFailedError(`cannot open WebSocket to ${url}`, { cause: error, recoverable: false }));
      return;
    }
    new WebSocketLink(
      socket,
      url,
      options as unknown as WebSocketTransportOptions<WebSocketLike>,
      signal,
      timeoutMs,
      resolve,
      reject,
    );
  });
}

/** The connect timeout's work, shared by every link (its state is the link). */
function connectTimedOut(this: SchedulerAction<WebSocketLink>, link?: WebSocketLink): void {
  link!.fail_(
    new ConnectFailedError(`WebSocket open to ${link!.url_} timed out after ${link!.timeoutMs_} ms`, {
      syscallCode: 'ETIMEDOUT',
    }),
  );
  link!.socket_.close();
}

/**
 * One WebSocket link, and the socket's {@link WebSocketHandlers}. A class rather than an object
 * literal of closures: an idle connection keeps its link for as long as it lives, and a literal
 * with getters and a dozen closures over one context took about 2 KB (in dictionary mode). It
 * listens to the abort signal itself (`handleEvent`), and its connect timer has no closure.
 */
class WebSocketLink implements Link<LinkData, LinkData>, WebSocketHandlers {
  /**
   * The link itself. A wrapper that inherits from it (`Object.create(link)` with its own `send`, in
   * a `wrapTransport`) is called in its place, and the socket's events reach only the link: the
   * methods that change what they read (read_, pongs$, close) act on the link, not on the wrapper.
   */
  private readonly self_: WebSocketLink = this;
  /**
   * `messages$`'s fanout, made on its first read, or at the link's end (which it keeps for a later
   * subscriber): a link read by its connection ({@link read_}) has no subscriber, and an idle
   * connection would keep an empty fanout and its observable (88 B).
   */
  private incoming_: MessageFanout<LinkData> | undefined;
  /** Made on the first `pongs$`. */
  declare private pongs_: MessageFanout<unknown> | undefined;
  /**
   * Messages that arrive before anyone subscribes to `messages$` are kept for the first
   * subscriber: `ws` emits 'open' and the messages read in the same chunk synchronously, before
   * the promise resolved on 'open' lets the caller subscribe. `null` once someone subscribed.
   */
  private early_: LinkData[] | null | undefined;
  /** The engine, reading directly ({@link Link.read_}): told before `messages$`'s subscribers. */
  private reader_: LinkReader<LinkData> | undefined;
  private opened_ = false;
  private closedByUs_ = false;
  private finished_ = false;
  declare private lastError_: Error | undefined;
  declare private timer_: Subscription | undefined;
  declare private offPong_: (() => void) | undefined;
  declare private unlisten_: (() => void) | undefined;
  /** The open's promise, until it settles. */
  declare private settle_: [(link: WebSocketLink) => void, (error: unknown) => void] | undefined;
  /**
   * The platform's `sendWith`, where it has one, for the link itself only: a wrapper with its own
   * `send` (`Object.create(link)`, see self_) gets `undefined`, so the engine calls that `send`
   * for every message (with its own copy of the bytes) instead of writing past it.
   */
  get sendWith(): Link<LinkData, LinkData>['sendWith'] {
    return this.options_.sendWith && this === this.self_ ? this.sendConfirmed_ : undefined;
  }
  declare readonly ping: (() => void) | undefined;

  /** @internal */ declare readonly socket_: WebSocketLike;
  /** @internal */ declare readonly url_: string;
  declare private readonly options_: WebSocketTransportOptions<WebSocketLike>;
  declare private signal_: AbortSignal | undefined;
  /** @internal */ declare readonly timeoutMs_: number;

  // Fields assigned here rather than parameter properties: the build renames `xxx_` members, and
  // it left a parameter property's field declaration under its long name, one more (undefined)
  // property on every link. Declared (`declare`) fields have no declaration in the build (each
  // is assigned below, or, as `pongs_` and `lastError_`, only when there is one: an idle link
  // keeps no field for them).
  constructor(
    socket_: WebSocketLike,
    url_: string,
    options_: WebSocketTransportOptions<WebSocketLike>,
    signal_: AbortSignal | undefined,
    timeoutMs_: number,
    resolve: (link: WebSocketLink) => void,
    reject: (error: unknown) => void,
  ) {
    this.socket_ = socket_;
    this.url_ = url_;
    this.options_ = options_;
    this.signal_ = signal_;
    this.timeoutMs_ = timeoutMs_;
    this.settle_ = [resolve, reject];
    socket_.binaryType = options_.binaryType ?? 'arraybuffer';
    // A prototype method where the platform has the capability, `undefined` where it has not
    // (the engine asks `link.ping`): no closure per link.
    this.ping = options_.ping && this.pingSocket_;
    this.timer_ = (options_.scheduler ?? monotonicScheduler).schedule(connectTimedOut, timeoutMs_, this);
    this.offPong_ = options_.onPong?.(socket_, () => this.onPong());
    this.unlisten_ = (options_.listen ?? listenWithEventTarget)(socket_, this);
    signal_?.addEventListener('abort', this, { once: true });
  }

  /** @internal A pong frame. */
  onPong(): void {
    this.reader_?.linkPong_();
    this.pongs_?.next(undefined);
  }

  get pongs$(): Observable<unknown> {
    const link = this.self_;
    link.pongs_ ??= new MessageFanout();
    return link.pongs_.observable;
  }

  /** @internal */
  read_(reader: LinkReader<LinkData> | undefined): void {
    if (this !== this.self_) {
      this.self_.read_(reader);
      return;
    }
    this.reader_ = reader;
    if (reader === undefined) return;
    const early = this.early_;
    if (early !== null) {
      // The reader gets the messages that came before it, then the live ones. With `early_` null
      // the replaying `messages$` would just add its subscriber, as the fanout's observable does:
      // the link drops it (and its closure) rather than keep it for as long as it is read.
      this.early_ = null;
      // A reader that stops reading (its connection closed from a message's handler) gets no more.
      if (early)
        for (let i = 0; i < early.length && this.reader_ === reader; i++) reader.linkMessage_(early[i]!);
    }
    // A link that ended before its reader came (between its open and the engine reading it, as
    // while a recover function awaits something after reopen()) tells the reader its end now, as
    // `messages$` tells a late subscriber: otherwise the connection would hold a dead link as open.
    // (Read only after the open: then `lastError_` is what the link failed with, see fail_.)
    // (Unless it stopped reading meanwhile, from a message's handler: read_(undefined).)
    if (this.finished_ && this.reader_) {
      if (this.closedByUs_) reader.linkEnded_();
      else reader.linkFailed_(this.lastError_);
    }
  }

  /**
   * The link's messages. Until the first reader or subscriber after the open, a subscriber gets
   * the messages that came before it, then the live ones; a subscriber after the end gets the end.
   */
  get messages$(): Observable<LinkData> {
    const link = this.self_;
    // biome-ignore lint/suspicious/noAssignInExpressions: made on first read (fewer bundle bytes than a method)
    const fanout = (link.incoming_ ??= new MessageFanout());
    if (!link.opened_ || link.early_ === null) return fanout.observable;
    return new Observable<LinkData>((subscriber) => {
      const early = link.early_;
      link.early_ = null;
      if (early) for (const data of early) subscriber.next(data);
      return fanout.add(subscriber);
    });
  }

  /** @internal */
  onMessage(data: LinkData): void {
    if (this.early_ === null) {
      this.reader_?.linkMessage_(data);
      this.incoming_?.next(data);
    } else if (this.early_) this.early_.push(data);
    else this.early_ = [data];
  }

  /** @internal */
  onOpen(): void {
    this.timer_?.unsubscribe();
    this.timer_ = undefined;
    this.dropSignal_();
    this.opened_ = true;
    const resolve = this.settle_![0];
    this.settle_ = undefined;
    resolve(this);
  }

  /** @internal */
  onError(event: unknown): void {
    const url = this.url_;
    this.lastError_ =
      this.options_.describeError?.(event, this.opened_) ??
      (this.opened_
        ? new LinkFailedError(`WebSocket to ${url} failed`, { cause: causeOf(event) })
        : new ConnectFailedError(`cannot open WebSocket to ${url}`, { cause: causeOf(event) }));
    // Browsers follow every error event with a close event; `ws` does too. The close decides.
  }

  /** @internal */
  onClose(code: number, reason: string): void {
    const lastError = this.lastError_;
    if (this.closedByUs_) {
      const reader = this.reader_;
      this.cleanup_();
      reader?.linkEnded_();
      // biome-ignore lint/suspicious/noAssignInExpressions: made at the end if not before, to keep the end
      (this.incoming_ ??= new MessageFanout()).complete();
    } else if (!this.opened_) {
      this.fail_(
        lastError ?? new ConnectFailedError(`WebSocket to ${this.url_} closed before opening (code ${code})`),
      );
    } else {
      // A 1006 (abnormal) close says nothing the error event did not: prefer the error's detail.
      this.fail_(
        code === CloseCode.Abnormal && lastError
          ? lastError
          : new LinkClosedError(code, reason, { cause: lastError }),
      );
    }
  }

  /** The abort signal: the link is its listener object. @internal */
  handleEvent(): void {
    this.fail_(this.signal_?.reason ?? new Error('aborted'));
    this.socket_.close();
  }

  private dropSignal_(): void {
    this.signal_?.removeEventListener('abort', this);
    this.signal_ = undefined;
  }

  private cleanup_(): void {
    if (this.finished_) return;
    this.finished_ = true;
    this.timer_?.unsubscribe();
    this.offPong_?.();
    if (this.unlisten_) this.unlisten_();
    else this.options_.unlisten?.(this.socket_, this);
    // The socket can still report an error after we stop listening: `ws` closing a socket that
    // is still connecting emits 'error' on the next tick, and an EventEmitter 'error' nobody
    // listens to would crash the process. The link is over; the error has nothing to tell.
    this.socket_.addEventListener('error', ignoreLateError);
    this.dropSignal_();
    this.reader_ = undefined;
    this.pongs_?.complete();
  }

  /** @internal */
  fail_(error: unknown): void {
    if (this.finished_) return;
    const reader = this.reader_;
    this.cleanup_();
    if (this.opened_) {
      // Kept for a reader that comes after the end (see read_).
      this.lastError_ = error as Error;
      reader?.linkFailed_(error);
      // biome-ignore lint/suspicious/noAssignInExpressions: made at the end if not before, to keep the end
      (this.incoming_ ??= new MessageFanout()).error(error);
    } else {
      const reject = this.settle_![1];
      this.settle_ = undefined;
      reject(error);
    }
  }

  /** Whether the socket can take a write now. */
  private get writable_(): boolean {
    return !this.finished_ && this.socket_.readyState === OPEN;
  }

  send(data: LinkData): Promise<void> {
    const socket = this.socket_;
    if (!this.writable_) return Promise.reject(new NotOpenError('WebSocket is not open'));
    if (this.options_.send) return this.options_.send(socket, data);
    try {
      socket.send(data);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(new LinkFailedError('WebSocket send failed', { cause: error }));
    }
  }

  private sendConfirmed_(
    data: LinkData,
    confirmed: (error: unknown, token: object) => void,
    token: object,
  ): void {
    let error: unknown;
    if (!this.writable_) error = new NotOpenError('WebSocket is not open');
    else {
      try {
        this.options_.sendWith!(this.socket_, data, confirmed, token);
        return;
      } catch (cause) {
        error = new LinkFailedError('WebSocket send failed', { cause });
      }
    }
    // Never synchronously from sendWith, as a rejected promise would not be.
    queueMicrotask(() => confirmed(error, token));
  }

  /** {@link Link.write}, for the link itself only (as {@link sendWith}). */
  get write(): ((data: LinkData) => void) | undefined {
    return this === this.self_ ? this.writeFrame_ : undefined;
  }

  private writeFrame_(data: LinkData): void {
    // A link that is closing or over reports that through messages$ (or already has).
    if (!this.writable_) return;
    try {
      if (this.options_.write) this.options_.write(this.socket_, data);
      else this.socket_.send(data);
    } catch (error) {
      this.fail_(new LinkFailedError('WebSocket write failed', { cause: error }));
      this.socket_.close();
    }
  }

  close(code: number = CloseCode.NormalClosure, reason = ''): void {
    if (this !== this.self_) {
      this.self_.close(code, reason);
      return;
    }
    if (this.closedByUs_ || this.finished_) return;
    this.closedByUs_ = true;
    const socket = this.socket_;
    try {
      socket.close(code, reason);
    } catch {
      // A WHATWG WebSocket (browsers, Deno) lets a client send only 1000 or 3000-4999, with a
      // reason of at most 123 bytes, and throws otherwise; `ws` takes any code. A code meant
      // only as information for the peer (1001 going away) must not stop the close.
      socket.close();
    }
    const { terminate, terminateAfter } = this.options_;
    if (socket.readyState !== CLOSED && (terminateAfter || terminate)) {
      const ms = this.options_.closeLingerMs ?? DEFAULT_WS_CLOSE_LINGER_MS;
      const scheduler = this.options_.scheduler;
      if (terminateAfter) terminateAfter(socket, ms, scheduler);
      else {
        // A platform with `terminate` alone gets the same bound; the socket's close event cancels it.
        const linger = after(ms, () => terminate!(socket), scheduler);
        socket.addEventListener('close', () => linger.unsubscribe());
      }
    }
    // Once we asked for the close, the link is over for its reader: complete now rather than
    // after the closing handshake, whose close event arrives later (or never, if the peer is gone).
    this.reader_?.linkEnded_();
    // biome-ignore lint/suspicious/noAssignInExpressions: made at the end if not before, to keep the end
    (this.incoming_ ??= new MessageFanout()).complete();
    this.cleanup_();
  }

  // A link given up for a new one is presumed dead (a heartbeat timeout, a failure): a close
  // frame would wait for an answer that never comes, so the connection is dropped at once.
  abandon(): void {
    this.close();
    this.options_.terminate?.(this.socket_);
  }

  private pingSocket_(): void {
    this.options_.ping!(this.socket_);
  }

  get bufferedAmount(): number {
    return this.socket_.bufferedAmount;
  }

  get info(): Readonly<Record<string, unknown>> {
    return { protocol: this.socket_.protocol, url: this.url_ };
  }
}

function causeOf(event: unknown): unknown {
  if (typeof event === 'object' && event !== null && 'error' in event)
    return (event as { error: unknown }).error;
  return event;
}

function ignoreLateError(): void {}
