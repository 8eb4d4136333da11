import { Observable, type SchedulerAction, type SchedulerLike, type Subscriber, type Subscription } from 'rxjs';
import { after, monotonicScheduler } from '../engine/clock.js';
import { ConnectFailedError, LinkClosedError, LinkFailedError, NotOpenError } from '../engine/errors.js';
import type { Link, LinkData, Transport } from '../engine/link.js';
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
  /** Subscribes to pong frames; returns the unsubscribe function. @default none */
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
  listen?: (socket: S, handlers: WebSocketHandlers) => () => void;
  /**
   * Drops the connection at once, without the closing handshake (`ws`'s `terminate()`). Used when
   * a link is abandoned (declared dead by the heartbeat: a close frame would never be answered)
   * and when the peer has not answered our close within `closeLingerMs`.
   * @default none: the platform's own close timeout applies (browsers end it themselves)
   */
  terminate?: (socket: S) => void;
}

/**
 * What {@link WebSocketCapabilities.listen} must call, as methods (`handlers.open()`, never a
 * detached `handlers.open`): the link's handlers are a class's.
 */
export interface WebSocketHandlers {
  open(): void;
  message(data: LinkData): void;
  /** `event` is handed to `describeError`. */
  error(event: unknown): void;
  close(code: number, reason: string): void;
}

/** The standard way: `addEventListener` for each event. */
export function listenWithEventTarget(socket: WebSocketLike, handlers: WebSocketHandlers): () => void {
  // The handlers are called as methods: they may be a class's (the link's are).
  const onOpen = () => handlers.open();
  const onMessage = (event: { data: LinkData }) => handlers.message(event.data);
  const onError = (event: unknown) => handlers.error(event);
  const onClose = (event: { code: number; reason: string }) => handlers.close(event.code, event.reason);
  socket.addEventListener('open', onOpen);
  socket.addEventListener('message', onMessage);
  socket.addEventListener('error', onError);
  socket.addEventListener('close', onClose);
  return () => {
    socket.removeEventListener('open', onOpen);
    socket.removeEventListener('message', onMessage);
    socket.removeEventListener('error', onError);
    socket.removeEventListener('close', onClose);
  };
}

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
   * the connection is dropped with `terminate` (where the platform has it): a peer that is gone
   * would otherwise hold the socket and a timer for `ws`'s 30 s, and keep the process alive.
   * Like the TCP link's linger. Without `terminate` (browsers) the platform decides. In ms, from
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
  return {
    async open(signal) {
      signal?.throwIfAborted();
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
    },
  };
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
    new WebSocketLink(socket, url, options, signal, timeoutMs, resolve, reject);
  });
}

/** The connect timeout's work, shared by every link (its state is the link). */
function connectTimedOut(this: SchedulerAction<WebSocketLink<WebSocketLike>>, link?: WebSocketLink<WebSocketLike>) {
  link!.timedOut();
}

/**
 * One WebSocket link. A class rather than an object literal of closures: an idle connection
 * keeps one of these for as long as it lives, and a literal with getters and a dozen closures
 * over one context took about 2 KB (in dictionary mode) where this takes a few hundred bytes.
 * It listens to the abort signal itself (`handleEvent`), and it is the socket's handlers through
 * {@link LinkEvents}.
 */
class WebSocketLink<S extends WebSocketLike> implements Link<LinkData, LinkData> {
  readonly messages$: Observable<LinkData>;
  /** Whoever subscribed to `messages$`: one reader (the engine), rarely more. */
  private readers: Subscriber<LinkData>[] = [];
  /**
   * Messages that arrive before anyone subscribes to `messages$` are kept for the first
   * subscriber: `ws` emits 'open' and the messages read in the same chunk synchronously, before
   * the promise resolved on 'open' lets the caller subscribe. `null` once someone subscribed.
   */
  private early: LinkData[] | null | undefined;
  private pongReaders: Subscriber<unknown>[] | undefined;
  private opened = false;
  private closedByUs = false;
  private finished = false;
  private lastError: Error | undefined;
  private timer: Subscription | undefined;
  /** After our close: drops the connection if the peer does not answer within the linger. */
  private linger: Subscription | undefined;
  private readonly offPong: (() => void) | undefined;
  private readonly unlisten: () => void;
  private resolveOpen: ((link: Link<LinkData, LinkData>) => void) | undefined;
  private rejectOpen: ((error: unknown) => void) | undefined;
  readonly sendWith: Link<LinkData, LinkData>['sendWith'];
  readonly ping: (() => void) | undefined;

  constructor(
    private readonly socket: S,
    private readonly url: string,
    private readonly options: WebSocketTransportOptions<S>,
    private readonly signal: AbortSignal | undefined,
    private readonly timeoutMs: number,
    resolve: (link: Link<LinkData, LinkData>) => void,
    reject: (error: unknown) => void,
  ) {
    this.resolveOpen = resolve;
    this.rejectOpen = reject;
    socket.binaryType = options.binaryType ?? 'arraybuffer';
    this.messages$ = new Observable<LinkData>((subscriber) => this.read(subscriber));
    // Prototype methods where the platform has the capability, `undefined` where it has not
    // (the engine asks `link.sendWith`, `link.ping`): no closure per link.
    this.sendWith = options.sendWith ? this.sendWithPlatform : undefined;
    this.ping = options.ping ? this.pingPlatform : undefined;
    this.timer = (options.scheduler ?? monotonicScheduler).schedule<WebSocketLink<WebSocketLike>>(
      connectTimedOut,
      timeoutMs,
      this as unknown as WebSocketLink<WebSocketLike>,
    );
    this.offPong = options.onPong?.(socket, () => this.onPong());
    this.unlisten = (options.listen ?? listenWithEventTarget)(
      socket,
      new LinkEvents(this as unknown as WebSocketLink<WebSocketLike>),
    );
    signal?.addEventListener('abort', this, { once: true });
  }

  get pongs$(): Observable<unknown> {
    return new Observable<unknown>((subscriber) => {
      if (this.finished) {
        subscriber.complete();
        return undefined;
      }
      this.pongReaders = [...(this.pongReaders ?? []), subscriber];
      return () => {
        this.pongReaders = this.pongReaders?.filter((other) => other !== subscriber);
      };
    });
  }

  private read(subscriber: Subscriber<LinkData>): (() => void) | undefined {
    const early = this.early;
    this.early = null;
    if (early) for (const data of early) subscriber.next(data);
    if (this.finished) {
      // Over before this subscriber came: it gets the end the Subject would have replayed.
      if (this.endError !== undefined) subscriber.error(this.endError);
      else subscriber.complete();
      return undefined;
    }
    this.readers = [...this.readers, subscriber];
    return () => {
      this.readers = this.readers.filter((other) => other !== subscriber);
    };
  }

  /** The error the link failed with, for a subscriber that comes after. */
  private endError: unknown;

  /** @internal From {@link LinkEvents}. */
  onMessage(data: LinkData): void {
    if (this.early !== null) {
      (this.early ??= []).push(data);
      return;
    }
    const readers = this.readers;
    for (let i = 0; i < readers.length; i++) readers[i]!.next(data);
  }

  /** @internal */
  onPong(): void {
    const readers = this.pongReaders;
    if (readers) for (let i = 0; i < readers.length; i++) readers[i]!.next(undefined);
  }

  /** @internal */
  onOpen(): void {
    this.timer?.unsubscribe();
    this.timer = undefined;
    this.signal?.removeEventListener('abort', this);
    this.opened = true;
    const resolve = this.resolveOpen!;
    this.resolveOpen = undefined;
    this.rejectOpen = undefined;
    resolve(this);
  }

  /** @internal */
  onError(event: unknown): void {
    const url = this.url;
    this.lastError =
      this.options.describeError?.(event, this.opened) ??
      (this.opened
        ? new LinkFailedError(`WebSocket to ${url} failed`, { cause: causeOf(event) })
        : new ConnectFailedError(`cannot open WebSocket to ${url}`, { cause: causeOf(event) }));
    // Browsers follow every error event with a close event; `ws` does too. The close decides.
  }

  /** @internal */
  onClose(code: number, reason: string): void {
    if (this.closedByUs) {
      this.cleanup();
      this.complete();
      return;
    }
    const lastError = this.lastError;
    if (!this.opened) {
      this.fail(
        lastError ?? new ConnectFailedError(`WebSocket to ${this.url} closed before opening (code ${code})`),
      );
      return;
    }
    // A 1006 (abnormal) close says nothing the error event did not: prefer the error's detail.
    const error =
      code === CloseCode.Abnormal && lastError ? lastError : new LinkClosedError(code, reason, { cause: lastError });
    this.fail(error);
  }

  /** @internal The connect timeout. */
  timedOut(): void {
    this.timer = undefined;
    this.fail(
      new ConnectFailedError(`WebSocket open to ${this.url} timed out after ${this.timeoutMs} ms`, {
        syscallCode: 'ETIMEDOUT',
      }),
    );
    this.socket.close();
  }

  /** The abort signal (an `EventListener` object: no closure per link). */
  handleEvent(): void {
    this.fail(this.signal?.reason ?? new Error('aborted'));
    this.socket.close();
  }

  private complete(): void {
    const readers = this.readers;
    this.readers = [];
    for (const reader of readers) reader.complete();
  }

  private cleanup(): void {
    if (this.finished) return;
    this.finished = true;
    this.timer?.unsubscribe();
    this.timer = undefined;
    this.offPong?.();
    this.unlisten();
    // The socket can still report an error after we stop listening: `ws` closing a socket that
    // is still connecting emits 'error' on the next tick, and an EventEmitter 'error' nobody
    // listens to would crash the process. The link is over; the error has nothing to tell.
    this.socket.addEventListener('error', ignoreLateError);
    this.signal?.removeEventListener('abort', this);
    const pongReaders = this.pongReaders;
    this.pongReaders = undefined;
    if (pongReaders) for (const reader of pongReaders) reader.complete();
  }

  private fail(error: unknown): void {
    if (this.finished) return;
    this.cleanup();
    if (this.opened) {
      this.endError = error;
      const readers = this.readers;
      this.readers = [];
      for (const reader of readers) reader.error(error);
    } else {
      const reject = this.rejectOpen!;
      this.resolveOpen = undefined;
      this.rejectOpen = undefined;
      reject(error);
    }
  }

  send(data: LinkData): Promise<void> {
    const socket = this.socket;
    if (this.finished || socket.readyState !== OPEN)
      return Promise.reject(new NotOpenError('WebSocket is not open'));
    if (this.options.send) return this.options.send(socket, data);
    try {
      socket.send(data);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(new LinkFailedError('WebSocket send failed', { cause: error }));
    }
  }

  private sendWithPlatform(
    data: LinkData,
    confirmed: (error: unknown, token: object) => void,
    token: object,
  ): void {
    let error: unknown;
    if (this.finished || this.socket.readyState !== OPEN) error = new NotOpenError('WebSocket is not open');
    else {
      try {
        this.options.sendWith!(this.socket, data, confirmed, token);
        return;
      } catch (cause) {
        error = new LinkFailedError('WebSocket send failed', { cause });
      }
    }
    // Never synchronously from sendWith, as a rejected promise would not be.
    queueMicrotask(() => confirmed(error, token));
  }

  write(data: LinkData): void {
    // A link that is closing or over reports that through messages$ (or already has).
    const socket = this.socket;
    if (this.finished || socket.readyState !== OPEN) return;
    try {
      if (this.options.write) this.options.write(socket, data);
      else socket.send(data);
    } catch (error) {
      this.fail(new LinkFailedError('WebSocket write failed', { cause: error }));
      socket.close();
    }
  }

  close(code: number = CloseCode.NormalClosure, reason = ''): void {
    if (this.closedByUs || this.finished) return;
    this.closedByUs = true;
    const socket = this.socket;
    try {
      socket.close(code, reason);
    } catch {
      // A WHATWG WebSocket (browsers, Deno) lets a client send only 1000 or 3000-4999, with a
      // reason of at most 123 bytes, and throws otherwise; `ws` takes any code. A code meant
      // only as information for the peer (1001 going away) must not stop the close.
      socket.close();
    }
    if (this.options.terminate && socket.readyState !== CLOSED) {
      const endLinger = () => this.endLinger(endLinger);
      this.lingerEnd = endLinger;
      this.linger = after(
        this.options.closeLingerMs ?? DEFAULT_WS_CLOSE_LINGER_MS,
        () => this.terminate(),
        this.options.scheduler,
      );
      socket.addEventListener('close', endLinger);
    }
    // Once we asked for the close, the link is over for its reader: complete now rather than
    // after the closing handshake, whose close event arrives later (or never, if the peer is gone).
    this.complete();
    this.cleanup();
  }

  private lingerEnd: (() => void) | undefined;

  private endLinger(listener: (() => void) | undefined = this.lingerEnd): void {
    this.linger?.unsubscribe();
    this.linger = undefined;
    this.lingerEnd = undefined;
    if (listener) this.socket.removeEventListener('close', listener);
  }

  private terminate(): void {
    this.endLinger();
    this.options.terminate?.(this.socket);
  }

  // A link given up for a new one is presumed dead (a heartbeat timeout, a failure): a close
  // frame would wait for an answer that never comes, so the connection is dropped at once.
  abandon(): void {
    this.close();
    this.terminate();
  }

  private pingPlatform(): void {
    this.options.ping!(this.socket);
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  get info(): Readonly<Record<string, unknown>> {
    return { protocol: this.socket.protocol, url: this.url };
  }
}

/**
 * The socket's handlers ({@link WebSocketHandlers}) for one link, as methods on a small object
 * rather than closures.
 */
class LinkEvents implements WebSocketHandlers {
  constructor(private readonly link: WebSocketLink<WebSocketLike>) {}
  open(): void {
    this.link.onOpen();
  }
  message(data: LinkData): void {
    this.link.onMessage(data);
  }
  error(event: unknown): void {
    this.link.onError(event);
  }
  close(code: number, reason: string): void {
    this.link.onClose(code, reason);
  }
}
function causeOf(event: unknown): unknown {
  if (typeof event === 'object' && event !== null && 'error' in event)
    return (event as { error: unknown }).error;
  return event;
}

function ignoreLateError(): void {}
