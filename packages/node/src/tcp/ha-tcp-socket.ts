import { Duplex } from 'node:stream';
import {
  type AttachOptions,
  attach,
  type ConnectionState,
  checkConnectionOptions,
  count,
  type HAConnection,
  type LinkData,
  type ResumableOptions,
  type ResumeProtocol,
  type ResumeSession,
  resolveTcpOptions,
  resume,
  resumeProtocolOf,
  type Transport,
} from '@lifeline/core/internal';
import type { Observable, Subscription } from 'rxjs';
import type { ConnectTcpOptions } from './connect-tcp.js';
import type { TcpLink } from './tcp-link.js';
import { tcpTransport } from './tcp-transport.js';

/** Options of {@link HATcpSocket}: where to connect, how to recover, and the stream's buffer sizes. */
export interface HATcpSocketOptions extends ConnectTcpOptions {
  /** Bytes buffered by `write()` before it returns false; an integer ≥ 0. @default 16_384 (Node's default) */
  writableHighWaterMark?: number;
  /**
   * Bytes of incoming data buffered for the reader; an integer ≥ 0. Every numeric and enum option
   * is checked by the constructor: a bad value throws an `InvalidOptionError` naming it.
   * @default 16_384 (Node's default)
   */
  readableHighWaterMark?: number;
  /**
   * Exactly-once delivery across reconnects with the resume protocol (docs/protocol.md): the
   * server must be a resume server (`createResumeServer` with `transport: 'tcp'`). Needs
   * `mode: 'framed'`. `resume()` (from `@lifeline/core/resume`), or `resume(options)`, as for
   * `HAWebSocket`; `true` and a {@link ResumableOptions} object are shorthands for them.
   * @default false
   */
  resume?: boolean | ResumableOptions | ResumeProtocol;
}

/**
 * A highly available TCP socket with `net.Socket`'s stream interface: write/end/destroy, `data`,
 * `connect`, `close`, and `error` only once recovery gives up (or the error is irrecoverable).
 * Beneath it, `attach` reconnects over {@link tcpTransport}: writes made while recovering wait in
 * the engine's bounded queue and are flushed in order, and a write's callback fires once its
 * bytes were written to a socket, so `write()`'s return value is honest backpressure.
 *
 * Extra events, with `HAWebSocket`'s semantics: `recovering` once per outage (the link failed
 * after `connect` and recovery started; the argument is the {@link ConnectionState} of its first
 * attempt, and the later attempts are on `state$`) and `recovered` (a new link is up). Failed
 * attempts before the first `connect` emit nothing: the socket is still connecting. `state$` is
 * the connection state; `connection` is the underlying `HAConnection`.
 *
 * Reads are flow-controlled, as `net.Socket`'s: when the readable buffer reaches
 * `readableHighWaterMark` (`push()` returns false) the socket stops reading, and TCP stops the
 * peer; reading resumes when the application reads (`_read`). At most one more chunk read from
 * the socket (64 KiB) lands above the mark. A new link opened while paused reads until the next
 * chunk is refused (under `resume`, its handshake needs reading). A heartbeat cannot see the peer
 * while reading is paused: a reader that stops for longer than `heartbeat.timeoutMs` looks like a
 * dead peer to it, and the connection recovers (with `resume`, losing nothing).
 * `end()` flushes what was written, then closes the connection (half-open connections are not
 * supported: data the server sends after that is not read); as with any Duplex, 'close' follows
 * once the readable side is consumed. `destroy()` closes at once.
 *
 * @example
 * ```ts
 * const socket = new HATcpSocket({ port: 7000, mode: 'stream', maxAttemptsPerFailure: 20 });
 * socket.on('recovering', (state) => console.warn(`reconnecting after ${state.error}`));
 * source.pipe(socket).pipe(sink);
 * ```
 * @see connectTcp for the same connection as an `HAConnection`.
 */
export class HATcpSocket extends Duplex {
  /** The engine beneath the stream: budgets, `suspend()`, `resetCounts()`, `events$`... */
  readonly connection: HAConnection<LinkData, Uint8Array>;
  /**
   * The resume session when `resume` is on, flat as `HAWebSocket.session`: `id`, `state`,
   * `lastSent`, `peerAcked`, `lastReceived`, `pending`, `stats`, `events$` (new, resumed, lost).
   */
  readonly session: ResumeSession | undefined;
  private readonly links = new Set<TcpLink>();
  private readonly opening = new Set<Promise<unknown>>();
  private readonly subscriptions: Subscription[] = [];
  private connected = false;
  private lastStatus: ConnectionState['status'] = 'connecting';
  private readPaused = false;

  constructor(options: HATcpSocketOptions) {
    // Checked before anything is built, so a bad value throws here, naming the option.
    count('writableHighWaterMark', options?.writableHighWaterMark);
    count('readableHighWaterMark', options?.readableHighWaterMark);
    resolveTcpOptions(options);
    checkConnectionOptions(options);
    super({
      allowHalfOpen: false,
      decodeStrings: true,
      writableHighWaterMark: options.writableHighWaterMark,
      readableHighWaterMark: options.readableHighWaterMark,
    });
    const transport = tcpTransport(options);
    // Tracks every socket the engine opens, so destroy() can wait until all their handles are released.
    const tracked: Transport<Uint8Array, Uint8Array> = {
      open: (signal) => {
        const opened = transport.open(signal);
        this.opening.add(opened);
        const forget = () => this.opening.delete(opened);
        opened.then((link) => {
          forget();
          this.links.add(link);
          void link.closed.then(() => this.links.delete(link));
        }, forget);
        return opened;
      },
    };
    const protocol = resumeProtocolOf(options.resume, resume);
    if (protocol) {
      const transport = protocol(tracked, options);
      this.session = transport.handle;
      // The attach options (budgets, backoff, heartbeat) are link-agnostic; only the message types differ.
      this.connection = attach<LinkData, Uint8Array>(
        transport,
        options as AttachOptions<LinkData, Uint8Array>,
      );
    } else {
      this.session = undefined;
      this.connection = attach(tracked, options);
    }
    this.subscriptions.push(
      this.connection.messages$.subscribe((chunk) => {
        if (!this.destroyed && !this.push(chunk)) this.pauseReading();
      }),
      this.connection.events$.subscribe((event) => {
        if (event.type !== 'link-open') return;
        if (!this.connected) {
          this.connected = true;
          this.emit('connect');
          this.emit('ready');
        } else if (event.recovered) this.emit('recovered');
      }),
      this.connection.state$.subscribe((state) => {
        // Once per outage, not once per attempt, as HAWebSocket's `recovering`: the attempts of
        // one outage are on `state$`. Before the first link, the socket is still connecting.
        const previous = this.lastStatus;
        this.lastStatus = state.status;
        if (state.status === 'recovering' && previous !== 'recovering' && this.connected) {
          this.emit('recovering', state);
        }
      }),
    );
    void this.connection.closed.then((state) => {
      if (this.destroyed) return;
      if (state.error !== undefined) {
        this.destroy(state.error instanceof Error ? state.error : new Error(String(state.error)));
      } else if (!this.writableEnded) {
        // Closed through `connection.close()`: end both sides, as a socket the peer closed.
        this.push(null);
        this.end();
      }
    });
  }

  /** The connection's state, with the current value at hand. */
  get state$(): Observable<ConnectionState> & { readonly value: ConnectionState } {
    return this.connection.state$;
  }

  /** True while no link is open: connecting, or recovering. */
  get connecting(): boolean {
    return this.connection.link === undefined && this.connection.state$.value.status !== 'closed';
  }

  get remoteAddress(): string | undefined {
    return this.connection.link?.info?.remoteAddress as string | undefined;
  }

  get remotePort(): number | undefined {
    return this.connection.link?.info?.remotePort as number | undefined;
  }

  get localPort(): number | undefined {
    return this.connection.link?.info?.localPort as number | undefined;
  }

  override _read(): void {
    // The reader wants more: every link reads again (see the class comment).
    if (!this.readPaused) return;
    this.readPaused = false;
    for (const link of this.links) link.resume();
  }

  /** The reader's buffer is full: stop reading the sockets until `_read` asks for more. */
  private pauseReading(): void {
    this.readPaused = true;
    for (const link of this.links) link.pause();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.connection.send(chunk).then(() => callback(), callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    Promise.all(chunks.map(({ chunk }) => this.connection.send(chunk))).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    // Every write has called back by now: closing loses nothing that was written.
    this.connection.close();
    void this.released().then(() => {
      this.push(null);
      callback();
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.connection.close();
    void this.released().then(() => callback(error));
  }

  /** Settles once no socket opened for this connection holds a handle. */
  private async released(): Promise<void> {
    while (this.opening.size > 0 || this.links.size > 0) {
      await Promise.allSettled([...this.opening, ...[...this.links].map((link) => link.closed)]);
    }
  }
}
