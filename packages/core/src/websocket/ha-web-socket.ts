import type { Observable, Subscription } from 'rxjs';
import {
  type AttachOptions,
  attach,
  type ConnectionOptions,
  type HAConnection,
  type SendOptions,
} from '../engine/attach.js';
import type { ConnectionState } from '../engine/connection-state.js';
import {
  InvalidOptionError,
  LifelineError,
  LinkClosedError,
  QueueOverflowError,
  SessionLostError,
} from '../engine/errors.js';
import type { LinkData, Transport } from '../engine/link.js';
import { type EndpointSource, failoverTransport } from '../operators/failover.js';
import { CloseCode } from '../policy/close-codes.js';
import {
  handshakeTimeoutFor,
  type ResumableOptions,
  type ResumableTransport,
  type resumable,
} from '../resume/client/resumable-transport.js';
import { type WebSocketLike, type WebSocketLinkOptions, webSocketTransport } from './web-socket-transport.js';

/** Options of an {@link HAWebSocket}: the recovery policy of {@link attach} plus transport settings. */
export interface HAWebSocketOptions extends ConnectionOptions<LinkData, LinkData, unknown> {
  /** An open (and, with `resume`, its handshake) that takes longer fails, recoverably; in ms. @default 10_000 */
  connectTimeoutMs?: number;
  /**
   * Half-open detection (see {@link AttachOptions.heartbeat}). Unlike `attach`, on by default
   * wherever the link can ping at the protocol level (Node's ws ping frames, the resume
   * protocol's PINGs): a black-holed link is found within 30 s. `false` turns it off.
   * @default {@link DEFAULT_HA_WEB_SOCKET_HEARTBEAT} (10 s / 30 s, ifSupported)
   */
  heartbeat?: AttachOptions<LinkData, LinkData, unknown>['heartbeat'];
  /**
   * Wraps the WebSocket transport, e.g. with `resumable(...)` for exactly-once delivery.
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
   * (docs/protocol.md); the server must be a resume server. `true` uses the protocol's defaults.
   * Available where the platform package provides the protocol (`@lifeline/node`,
   * `@lifeline/deno`); in browsers pass `wrapTransport: (t) => resumable(t, options)` instead, so
   * bundles that do not resume do not carry the protocol.
   * @default false
   */
  resume?: boolean | ResumableOptions;
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

/** The events an {@link HAWebSocket} dispatches beyond the standard four. */
export interface HAWebSocketEventMap {
  open: Event;
  message: MessageEvent;
  error: Event;
  close: Event & { code: number; reason: string; wasClean: boolean };
  /** The link failed and recovery started (`detail` is the connection state). */
  recovering: Event;
  /** A new link is up after a failure. */
  recovered: Event;
  /**
   * `queue.overflow: 'drop-oldest'` dropped a message that waited for a link to make room
   * (`detail`: `{ data, error }`, the message and its {@link QueueOverflowError}).
   */
  dropped: Event;
}

/** The WebSocket-shaped drop-in: what {@link defineHAWebSocket} returns instances of. */
export interface HAWebSocketInstance extends EventTarget {
  readonly url: string;
  readonly readyState: number;
  readonly protocol: string;
  readonly extensions: string;
  readonly bufferedAmount: number;
  binaryType: string;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  onclose: ((event: Event) => void) | null;
  onrecovering: ((event: Event) => void) | null;
  onrecovered: ((event: Event) => void) | null;
  ondropped: ((event: Event) => void) | null;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  /**
   * Like WebSocket's `send`, but also accepted while connecting or recovering (queued, bounded;
   * binary data is copied at once). A message that cannot be accepted is refused by a synchronous
   * throw, as a WebSocket throws in CONNECTING, so the caller knows which message was not taken.
   * @throws {QueueOverflowError} the outgoing queue is full (`queue` option)
   * @throws {DOMException} `InvalidStateError` once CLOSING or CLOSED
   */
  send(data: LinkData): void;
  /**
   * Sends and resolves once written (acknowledged, with `resume`). Rejects with a
   * {@link QueueOverflowError} when refused, with `options.signal`'s reason when withdrawn while
   * it waited, or with the error that ended the connection.
   */
  sendAsync(data: LinkData, options?: SendOptions): Promise<void>;
  close(code?: number, reason?: string): void;
  /** The connection state, with attempts and budgets. */
  readonly state$: Observable<ConnectionState>;
  /** The underlying HA connection (suspend, enable, resetCounts, detach...). */
  readonly connection: HAConnection<LinkData, LinkData>;
  /** The resume session (its `session$` says new, resumed, lost), when `resume` is on. */
  readonly session: ResumableTransport | undefined;
}

export interface HAWebSocketConstructor {
  new (url: string | URL, protocols?: string | string[], options?: HAWebSocketOptions): HAWebSocketInstance;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
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
  /** Enables the `resume` option: the platform package hands in the protocol. @default none */
  resumable?: typeof resumable;
}

/**
 * Builds the `HAWebSocket` class for a platform: the WebSocket interface (readyState, url, protocol,
 * binaryType, bufferedAmount, send, close, on* handlers, addEventListener) backed by {@link attach}.
 * It recovers transparently: readyState stays OPEN while recovering, sends are queued (bounded) and
 * flushed in order, and `recovering`/`recovered` events tell what happens. An irrecoverable failure,
 * or recovery giving up, ends it as a plain WebSocket would end: an `error` event, then `close`.
 *
 * Called by the platform packages at their import, so core touches no global at its own import.
 *
 * @example
 * ```ts
 * const HAWebSocket = defineHAWebSocket({ WebSocket: globalThis.WebSocket });
 * const socket = new HAWebSocket('wss://example.com/feed');
 * socket.onmessage = (event) => console.log(event.data);
 * ```
 */
export function defineHAWebSocket<S extends WebSocketLike>(
  platform: HAWebSocketPlatform<S>,
): HAWebSocketConstructor {
  const convert = platform.convertBinary ?? convertBinaryStandard;
  class HAWebSocket extends EventTarget implements HAWebSocketInstance {
    static readonly CONNECTING = 0 as const;
    static readonly OPEN = 1 as const;
    static readonly CLOSING = 2 as const;
    static readonly CLOSED = 3 as const;
    readonly CONNECTING = 0 as const;
    readonly OPEN = 1 as const;
    readonly CLOSING = 2 as const;
    readonly CLOSED = 3 as const;
    readonly url: string;
    readonly connection: HAConnection<LinkData, LinkData>;
    session: ResumableTransport | undefined = undefined;
    readonly extensions = '';
    onopen: ((event: Event) => void) | null = null;
    onmessage: ((event: MessageEvent) => void) | null = null;
    onerror: ((event: Event) => void) | null = null;
    onclose: ((event: Event) => void) | null = null;
    onrecovering: ((event: Event) => void) | null = null;
    onrecovered: ((event: Event) => void) | null = null;
    ondropped: ((event: Event) => void) | null = null;
    private ready = 0;
    private binary: string;
    private readonly subscriptions: Subscription[] = [];

    constructor(url: string | URL, protocols?: string | string[], options: HAWebSocketOptions = {}) {
      super();
      this.url = String(url);
      this.binary = platform.defaultBinaryType ?? platform.binaryType ?? 'blob';
      const { connectTimeoutMs, endpoints, resume, ...attachOptions } = options;
      // Half-open detection by default wherever the link can ping at the protocol level (Node's
      // ws ping frames, the resume protocol's PINGs); a browser's plain WebSocket cannot, and an
      // application-level ping needs the server's cooperation, so there it stays opt-in.
      attachOptions.heartbeat = options.heartbeat ?? DEFAULT_HA_WEB_SOCKET_HEARTBEAT;
      let wrapTransport = options.wrapTransport;
      if (resume) {
        const makeResumable = platform.resumable;
        if (!makeResumable) {
          throw new InvalidOptionError(
            'this HAWebSocket has no resume protocol built in: pass wrapTransport: (t) => resumable(t)',
          );
        }
        wrapTransport = (transport) => {
          const resumeOptions = resume === true ? {} : resume;
          const session = makeResumable(transport, {
            handshakeTimeoutMs: handshakeTimeoutFor({ connectTimeoutMs, heartbeat: attachOptions.heartbeat }),
            ...resumeOptions,
          });
          this.session = session;
          return session;
        };
      }
      // Links always deliver the platform's raw bytes (never Blobs: the resume protocol decodes
      // frames synchronously); `binaryType` is applied per message at dispatch, so assigning it
      // takes effect at once, on the first link as on later ones, as on a WebSocket.
      const transportTo = (url: string | URL, attempt?: { readonly remainingMs: number | undefined }) =>
        webSocketTransport<S>({
          ...platform,
          url: String(url),
          protocols,
          connectTimeoutMs: attempt?.remainingMs ?? connectTimeoutMs,
          binaryType: platform.binaryType ?? 'arraybuffer',
        });
      const base =
        endpoints === undefined
          ? transportTo(this.url)
          : failoverTransport(Array.isArray(endpoints) ? [this.url, ...endpoints] : endpoints, transportTo, {
              connectTimeoutMs,
            });
      this.connection = attach(wrapTransport ? wrapTransport(base) : base, attachOptions);
      this.subscriptions.push(
        this.connection.messages$.subscribe((data) =>
          this.dispatch(
            'message',
            messageEvent(typeof data === 'string' ? data : convert(data, this.binary), this.url),
          ),
        ),
        this.connection.state$.subscribe((state) => this.onState(state)),
        this.connection.events$.subscribe((event) => {
          if (event.type === 'dropped') {
            this.dispatch('dropped', detailEvent('dropped', { data: event.data, error: event.error }));
          }
        }),
      );
    }

    get readyState(): number {
      return this.ready;
    }
    get protocol(): string {
      const info = this.connection.link?.info;
      return typeof info?.protocol === 'string' ? info.protocol : '';
    }
    get bufferedAmount(): number {
      return this.connection.pending.bytes + (this.connection.link?.bufferedAmount ?? 0);
    }
    get binaryType(): string {
      return this.binary;
    }
    set binaryType(value: string) {
      this.binary = value;
    }
    get state$(): Observable<ConnectionState> {
      return this.connection.state$;
    }

    send(data: LinkData): void {
      if (this.ready >= 2)
        throw domException('WebSocket is already in CLOSING or CLOSED state', 'InvalidStateError');
      // A refusal (queue full) throws here, synchronously. A message taken and then not delivered
      // is reported as an event rather than as a rejection nobody holds (see onSendFailed).
      this.connection.enqueue(data).catch((error) => this.onSendFailed(data, error));
    }

    /**
     * A message `send()` took was not delivered. Recovery giving up is reported by the error and
     * close events, a lost resume session by `session.lost$` (with the message), a 'drop-oldest'
     * drop by its own `dropped` event; anything else (a message the resume protocol refuses as
     * larger than its frame limit, a full replay window) fires `dropped` here, so nothing
     * vanishes silently.
     */
    private onSendFailed(data: LinkData, error: unknown): void {
      if (this.ready >= 2 || this.lastStatus === 'closed') return;
      if (error instanceof QueueOverflowError || error instanceof SessionLostError) return;
      this.dispatch('dropped', detailEvent('dropped', { data, error }));
    }

    sendAsync(data: LinkData, options?: SendOptions): Promise<void> {
      return this.connection.send(data, options);
    }

    close(code?: number, reason?: string): void {
      if (this.ready >= 2) return;
      this.ready = 2;
      this.closeCode = code ?? CloseCode.NormalClosure;
      this.closeReason = reason ?? '';
      this.connection.close(code, reason);
    }

    private closeCode = CloseCode.NoStatusReceived;
    private lastStatus: ConnectionState['status'] = 'connecting';
    private closeReason = '';

    private onState(state: ConnectionState): void {
      const previous = this.lastStatus;
      this.lastStatus = state.status;
      switch (state.status) {
        case 'open':
        case 'suspended':
          if (this.ready === 0) {
            this.ready = 1;
            this.dispatch('open', new Event('open'));
          } else if (previous === 'recovering') {
            this.dispatch('recovered', detailEvent('recovered', state));
          }
          break;
        case 'recovering':
          // Once per outage, not once per attempt.
          if (previous !== 'recovering' && this.ready === 1) {
            this.dispatch('recovering', detailEvent('recovering', state));
          }
          break;
        case 'closed': {
          for (const subscription of this.subscriptions) subscription.unsubscribe();
          // A WebSocket's close event never fires inside close(): code that calls close() and
          // then listens for 'close' must still hear it.
          queueMicrotask(() => this.dispatchClose(state));
          break;
        }
      }
    }

    private dispatchClose(state: Extract<ConnectionState, { status: 'closed' }>): void {
      this.ready = 3;
      let code = this.closeCode;
      let reason = this.closeReason;
      let wasClean = state.reason === 'user' || state.reason === 'detached';
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
        if (!closedCleanlyByPeer) this.dispatch('error', errorEvent(error));
      }
      this.dispatch('close', closeEvent(code, reason, wasClean));
    }

    private dispatch(type: keyof HAWebSocketEventMap, event: Event): void {
      const handler = (this as unknown as Record<string, ((event: Event) => void) | null>)[`on${type}`];
      handler?.call(this, event);
      this.dispatchEvent(event);
    }
  }
  return HAWebSocket;
}

/** 'arraybuffer' and 'blob', as a browser delivers them; anything else falls back to 'arraybuffer'. */
function convertBinaryStandard(data: ArrayBuffer | ArrayBufferView, binaryType: string): unknown {
  if (binaryType === 'blob' && typeof Blob === 'function') return new Blob([data as BlobPart]);
  if (data instanceof ArrayBuffer) return data;
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  if (whole && data.buffer instanceof ArrayBuffer) return data.buffer;
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
}

function messageEvent(data: unknown, origin: string): MessageEvent {
  if (typeof MessageEvent === 'function') return new MessageEvent('message', { data, origin });
  return Object.assign(new Event('message'), { data, origin }) as MessageEvent;
}

function detailEvent(type: string, detail: unknown): Event {
  return Object.assign(new Event(type), { detail });
}

function errorEvent(error: unknown): Event {
  const message = error instanceof Error ? error.message : String(error);
  return Object.assign(new Event('error'), {
    error,
    message,
    code: error instanceof LifelineError ? error.code : undefined,
  });
}

function closeEvent(
  code: number,
  reason: string,
  wasClean: boolean,
): Event & { code: number; reason: string; wasClean: boolean } {
  return Object.assign(new Event('close'), { code, reason, wasClean });
}

/** A `DOMException` where the runtime has one (every browser, Deno, Node 17+); an Error with its `name` otherwise. */
function domException(message: string, name: string): Error {
  if (typeof DOMException === 'function') return new DOMException(message, name);
  return Object.assign(new Error(message), { name });
}
