import type { Observable, Subscription } from 'rxjs';
import { type AttachOptions, attach, type HAConnection } from './attach.js';
import type { ConnectionState } from './connection-state.js';
import { InvalidOptionError, LifelineError, LinkClosedError } from './errors.js';
import { type EndpointSource, failoverTransport } from './failover.js';
import type { LinkData, Transport } from './link.js';
import type { ResumableOptions, ResumableTransport, resumable } from './resumable-transport.js';
import {
  type WebSocketLike,
  type WebSocketTransportOptions,
  webSocketTransport,
} from './web-socket-transport.js';

/** Options of an {@link HAWebSocket}: the recovery policy of {@link attach} plus transport settings. */
export interface HAWebSocketOptions extends Omit<AttachOptions<LinkData, LinkData, unknown>, 'handle'> {
  /** @default 10_000 */
  connectTimeoutMs?: number;
  /**
   * Wraps the WebSocket transport, e.g. with `resumable(...)` for exactly-once delivery.
   * @default none
   */
  wrapTransport?: (transport: Transport<LinkData, LinkData>) => Transport<LinkData, LinkData>;
  /**
   * More endpoints to fail over to: each recovery attempt opens the next one, starting again
   * from the last one that worked. A function is asked before every open instead (service
   * discovery, or a load balancer's address). The constructor's `url` is tried first.
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
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  /** Like WebSocket's `send`, but also accepted while connecting or recovering (queued, bounded). */
  send(data: LinkData): void;
  /** Sends and resolves once written (rejects with the error that ended the connection). */
  sendAsync(data: LinkData): Promise<void>;
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
export type HAWebSocketPlatform<S extends WebSocketLike> = Omit<
  WebSocketTransportOptions<S>,
  'url' | 'protocols'
> & {
  /** @default 'blob' in browsers; the platform package decides */
  defaultBinaryType?: string;
  /** Enables the `resume` option: the platform package hands in the protocol. @default none */
  resumable?: typeof resumable;
};

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
    private ready = 0;
    private binary: string;
    private readonly subscriptions: Subscription[] = [];

    constructor(url: string | URL, protocols?: string | string[], options: HAWebSocketOptions = {}) {
      super();
      this.url = String(url);
      this.binary = platform.defaultBinaryType ?? platform.binaryType ?? 'blob';
      const { connectTimeoutMs, endpoints, resume, ...attachOptions } = options;
      let wrapTransport = options.wrapTransport;
      if (resume) {
        const makeResumable = platform.resumable;
        if (!makeResumable) {
          throw new InvalidOptionError(
            'this HAWebSocket has no resume protocol built in: pass wrapTransport: (t) => resumable(t)',
          );
        }
        wrapTransport = (transport) => {
          const session = makeResumable(transport, resume === true ? {} : resume);
          this.session = session;
          return session;
        };
      }
      const self = this;
      const transportTo = (url: string | URL) =>
        webSocketTransport<S>({
          ...platform,
          url: String(url),
          protocols,
          connectTimeoutMs,
          // Read at each open, so a binaryType set after construction applies to later links too.
          // A wrapped transport (the resume protocol) decodes binary frames synchronously: its links
          // must deliver bytes, never Blobs, whatever binaryType the page chose.
          get binaryType() {
            return wrapTransport !== undefined && self.binary === 'blob' ? 'arraybuffer' : self.binary;
          },
        } as WebSocketTransportOptions<S>);
      const base =
        endpoints === undefined
          ? transportTo(this.url)
          : failoverTransport(Array.isArray(endpoints) ? [this.url, ...endpoints] : endpoints, transportTo);
      this.connection = attach(wrapTransport ? wrapTransport(base) : base, attachOptions);
      this.subscriptions.push(
        this.connection.messages$.subscribe((data) => this.dispatch('message', messageEvent(data, this.url))),
        this.connection.state$.subscribe((state) => this.onState(state)),
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
        throw new DOMExceptionLike('WebSocket is already in CLOSING or CLOSED state', 'InvalidStateError');
      // Delivery failures surface as the error and close events when recovery gives up; the
      // per-send rejection must not also become an unhandled rejection.
      this.connection.send(data).catch(() => {});
    }

    sendAsync(data: LinkData): Promise<void> {
      return this.connection.send(data);
    }

    close(code?: number, reason?: string): void {
      if (this.ready >= 2) return;
      this.ready = 2;
      this.closeCode = code ?? 1000;
      this.closeReason = reason ?? '';
      this.connection.close(code, reason);
    }

    private closeCode = 1005;
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
          wasClean = code !== 1006;
        } else {
          code = 1006;
          reason = '';
          wasClean = false;
        }
        this.dispatch('error', errorEvent(error));
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

function messageEvent(data: LinkData, origin: string): MessageEvent {
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

/** `DOMException` where the runtime has it; an Error with the same `name` otherwise. */
class DOMExceptionLike extends Error {
  constructor(message: string, name: string) {
    super(message);
    this.name = name;
  }
}
