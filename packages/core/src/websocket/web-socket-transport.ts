import { Observable, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import { after } from '../engine/clock.js';
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

/** What {@link WebSocketCapabilities.listen} must call. */
export interface WebSocketHandlers {
  open(): void;
  message(data: LinkData): void;
  /** `event` is handed to `describeError`. */
  error(event: unknown): void;
  close(code: number, reason: string): void;
}

/** The standard way: `addEventListener` for each event. */
export function listenWithEventTarget(socket: WebSocketLike, handlers: WebSocketHandlers): () => void {
  const onMessage = (event: { data: LinkData }) => handlers.message(event.data);
  const onClose = (event: { code: number; reason: string }) => handlers.close(event.code, event.reason);
  socket.addEventListener('open', handlers.open);
  socket.addEventListener('message', onMessage);
  socket.addEventListener('error', handlers.error);
  socket.addEventListener('close', onClose);
  return () => {
    socket.removeEventListener('open', handlers.open);
    socket.removeEventListener('message', onMessage);
    socket.removeEventListener('error', handlers.error);
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
    socket.binaryType = options.binaryType ?? 'arraybuffer';
    const incoming = new Subject<LinkData>();
    // Messages that arrive before anyone subscribes to `messages$` are kept for the first
    // subscriber: `ws` emits 'open' and the messages read in the same chunk synchronously, before
    // the promise resolved on 'open' lets the caller subscribe.
    let early: LinkData[] | undefined = [];
    const pongs = new Subject<void>();
    let opened = false;
    let closedByUs = false;
    let finished = false;
    let lastError: Error | undefined;
    const timer = after(
      timeoutMs,
      () => {
        fail(
          new ConnectFailedError(`WebSocket open to ${url} timed out after ${timeoutMs} ms`, {
            syscallCode: 'ETIMEDOUT',
          }),
        );
        socket.close();
      },
      options.scheduler,
    );
    const offPong = options.onPong?.(socket, () => pongs.next());
    // After our close: drop the connection if the peer does not answer within the linger.
    let linger: Subscription | undefined;
    const endLinger = () => {
      linger?.unsubscribe();
      linger = undefined;
      socket.removeEventListener('close', endLinger);
    };
    const terminate = () => {
      endLinger();
      options.terminate?.(socket);
    };

    const onOpen = () => {
      timer.unsubscribe();
      signal?.removeEventListener('abort', onAbort);
      opened = true;
      resolve(link);
    };
    const onError = (event: unknown) => {
      lastError =
        options.describeError?.(event, opened) ??
        (opened
          ? new LinkFailedError(`WebSocket to ${url} failed`, { cause: causeOf(event) })
          : new ConnectFailedError(`cannot open WebSocket to ${url}`, { cause: causeOf(event) }));
      // Browsers follow every error event with a close event; `ws` does too. The close decides.
    };
    const onClose = (code: number, reason: string) => {
      if (closedByUs) {
        cleanup();
        incoming.complete();
        return;
      }
      if (!opened) {
        fail(lastError ?? new ConnectFailedError(`WebSocket to ${url} closed before opening (code ${code})`));
        return;
      }
      // A 1006 (abnormal) close says nothing the error event did not: prefer the error's detail.
      const error =
        code === CloseCode.Abnormal && lastError
          ? lastError
          : new LinkClosedError(code, reason, { cause: lastError });
      fail(error);
    };
    const onAbort = () => {
      fail(signal?.reason ?? new Error('aborted'));
      socket.close();
    };
    const cleanup = () => {
      if (finished) return;
      finished = true;
      timer.unsubscribe();
      offPong?.();
      unlisten();
      // The socket can still report an error after we stop listening: `ws` closing a socket that
      // is still connecting emits 'error' on the next tick, and an EventEmitter 'error' nobody
      // listens to would crash the process. The link is over; the error has nothing to tell.
      socket.addEventListener('error', ignoreLateError);
      signal?.removeEventListener('abort', onAbort);
      pongs.complete();
    };
    const fail = (error: unknown) => {
      if (finished) return;
      cleanup();
      if (opened) incoming.error(error);
      else reject(error);
    };

    const sendConfirmed = options.send;
    const writeUnconfirmed = options.write;
    const link: Link<LinkData, LinkData> = {
      messages$: new Observable<LinkData>((subscriber) => {
        const pending = early;
        early = undefined;
        if (pending) for (const data of pending) subscriber.next(data);
        return incoming.subscribe(subscriber);
      }),
      pongs$: pongs.asObservable(),
      send(data) {
        if (finished || socket.readyState !== OPEN)
          return Promise.reject(new NotOpenError('WebSocket is not open'));
        if (sendConfirmed) return sendConfirmed(socket, data);
        try {
          socket.send(data);
          return Promise.resolve();
        } catch (error) {
          return Promise.reject(new LinkFailedError('WebSocket send failed', { cause: error }));
        }
      },
      sendWith: options.sendWith
        ? (data, confirmed, token) => {
            let error: unknown;
            if (finished || socket.readyState !== OPEN) error = new NotOpenError('WebSocket is not open');
            else {
              try {
                options.sendWith!(socket, data, confirmed, token);
                return;
              } catch (cause) {
                error = new LinkFailedError('WebSocket send failed', { cause });
              }
            }
            // Never synchronously from sendWith, as a rejected promise would not be.
            queueMicrotask(() => confirmed(error, token));
          }
        : undefined,
      write(data) {
        // A link that is closing or over reports that through messages$ (or already has).
        if (finished || socket.readyState !== OPEN) return;
        try {
          if (writeUnconfirmed) writeUnconfirmed(socket, data);
          else socket.send(data);
        } catch (error) {
          fail(new LinkFailedError('WebSocket write failed', { cause: error }));
          socket.close();
        }
      },
      close(code = CloseCode.NormalClosure, reason = '') {
        if (closedByUs || finished) return;
        closedByUs = true;
        try {
          socket.close(code, reason);
        } catch {
          // A WHATWG WebSocket (browsers, Deno) lets a client send only 1000 or 3000-4999, with a
          // reason of at most 123 bytes, and throws otherwise; `ws` takes any code. A code meant
          // only as information for the peer (1001 going away) must not stop the close.
          socket.close();
        }
        if (options.terminate && socket.readyState !== CLOSED) {
          linger = after(options.closeLingerMs ?? DEFAULT_WS_CLOSE_LINGER_MS, terminate, options.scheduler);
          socket.addEventListener('close', endLinger);
        }
        // Once we asked for the close, the link is over for its reader: complete now rather than
        // after the closing handshake, whose close event arrives later (or never, if the peer is gone).
        incoming.complete();
        cleanup();
      },
      // A link given up for a new one is presumed dead (a heartbeat timeout, a failure): a close
      // frame would wait for an answer that never comes, so the connection is dropped at once.
      abandon() {
        link.close();
        terminate();
      },
      ping: options.ping ? () => options.ping!(socket) : undefined,
      get bufferedAmount() {
        return socket.bufferedAmount;
      },
      get info() {
        return { protocol: socket.protocol, url };
      },
    };

    const unlisten = (options.listen ?? listenWithEventTarget)(socket, {
      open: onOpen,
      message: (data) => (early ? early.push(data) : incoming.next(data)),
      error: onError,
      close: onClose,
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function causeOf(event: unknown): unknown {
  if (typeof event === 'object' && event !== null && 'error' in event)
    return (event as { error: unknown }).error;
  return event;
}

function ignoreLateError(): void {}
