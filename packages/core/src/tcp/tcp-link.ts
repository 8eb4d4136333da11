import { Observable, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import { monotonicScheduler } from '../engine/clock.js';
import { FrameTooLargeError, LinkClosedError, LinkFailedError, NotOpenError } from '../engine/errors.js';
import type { Link } from '../engine/link.js';
import type { ByteStream, ByteStreamSink } from './byte-stream.js';
import { FrameDispatcher } from './frame-dispatcher.js';
import { DEFAULT_MAX_FRAME_SIZE, FrameType, MAX_CONTROL_PAYLOAD_BYTES } from './length-prefixed-framing.js';
import type { TcpMode } from './tcp-options.js';
import { WriteBatcher } from './write-batcher.js';

/**
 * How long `close()` waits for written bytes to reach the kernel before it destroys the connection
 * anyway (a peer that stopped reading must not keep a closed link's connection alive), in ms.
 */
export const TCP_CLOSE_LINGER_MS = 2_000;

const EMPTY = new Uint8Array(0);

/** A link over one connected {@link ByteStream}: what every runtime's `tcpTransport` opens. */
export interface TcpLink extends Link<Uint8Array, Uint8Array> {
  /** `'framed'`: one message per frame; `'stream'`: messages are the raw chunks read. */
  readonly mode: TcpMode;
  /** Settles once the connection's handle is released (after `close()` or a failure). Never rejects. */
  readonly closed: Promise<void>;
  /**
   * Framed mode only: sends a ping frame; the peer's pong arrives on `pongs$`.
   * Throws a RangeError for a payload longer than {@link MAX_CONTROL_PAYLOAD_BYTES} (125) bytes.
   */
  readonly ping?: (payload?: Uint8Array) => void;
  /** Framed mode only: the payload of each pong frame from the peer. */
  readonly pongs$?: Observable<Uint8Array>;
  /**
   * Stops reading the connection: what the peer sends waits in the kernel's buffers, and once they
   * are full TCP's flow control stops the peer. For a reader that cannot keep up (a Duplex whose
   * `push()` returned false). Pings and pongs are not read either while paused. Idempotent.
   */
  pause(): void;
  /** Reads the connection again after {@link TcpLink.pause}. Idempotent. */
  resume(): void;
}

/** Options of {@link createTcpLink} beyond the mode and the frame limit. */
export interface TcpLinkOptions {
  /** Runs the close linger timer. @default the monotonic `asyncScheduler` (`monotonicScheduler`) */
  scheduler?: SchedulerLike;
}

/**
 * Wraps a connected {@link ByteStream} as a {@link TcpLink}: the one TCP link of every runtime.
 * Reading starts at the first subscription to `messages$`, so nothing is lost between `open()`
 * and `subscribe()`. An unexpected end from the peer is a {@link LinkClosedError} without a close
 * code (recoverable); a connection error is a {@link LinkFailedError} carrying the OS code
 * (ECONNRESET, EPIPE...); a frame that breaks the format fails the link with the decoder's
 * irrecoverable error. Incoming pings are answered with pongs; while output is backed up, a ping
 * that arrives as a pong waits to be written is not answered again, and ping payloads are at most
 * {@link MAX_CONTROL_PAYLOAD_BYTES} (125) bytes.
 *
 * In framed mode a send larger than `maxFrameSize` rejects with a {@link FrameTooLargeError} and
 * ends the link with it (irrecoverable): a peer with the same limit would reset the connection, and
 * the reset would be retried with the same message until the budget ran out.
 *
 * `send` resolves once the stream reports the bytes written. The sends of one tick leave together
 * in one write (see {@link WriteBatcher}), so a burst of small messages costs one syscall.
 *
 * @example
 * ```ts
 * const link = createTcpLink(nodeByteStream(socket), 'framed', 1024 * 1024);
 * link.messages$.subscribe((payload) => console.log(payload.length));
 * ```
 * @see ByteStream, the seam each runtime implements.
 */
export function createTcpLink(
  stream: ByteStream,
  mode: TcpMode,
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
  options: TcpLinkOptions = {},
): TcpLink {
  return new ByteStreamLink(stream, mode, maxFrameSize, options.scheduler ?? monotonicScheduler);
}

class ByteStreamLink implements TcpLink {
  readonly messages$: Observable<Uint8Array>;
  readonly pongs$: Observable<Uint8Array> | undefined;
  readonly ping: ((payload?: Uint8Array) => void) | undefined;
  readonly closed: Promise<void>;
  readonly info: Readonly<Record<string, unknown>>;
  private readonly incoming = new Subject<Uint8Array>();
  private readonly pongs: Subject<Uint8Array> | undefined;
  private readonly dispatcher: FrameDispatcher | undefined;
  /** Set once the link failed or was closed: nothing more is delivered or written. */
  private done = false;
  private failure: unknown;
  private reading = false;
  private released = false;
  private readonly writes: WriteBatcher;
  /** The payload `send` hands to {@link enqueueData}, which runs synchronously inside `new Promise`. */
  private pendingData: Uint8Array | undefined;
  private linger: Subscription | undefined;
  private resolveClosed!: () => void;

  constructor(
    private readonly stream: ByteStream,
    readonly mode: TcpMode,
    private readonly maxFrameSize: number,
    private readonly scheduler: SchedulerLike,
  ) {
    this.writes = new WriteBatcher(stream, mode === 'framed', (error) => this.writeFailed(error));
    this.info = { mode, ...stream.info };
    if (mode === 'framed') {
      this.pongs = new Subject();
      this.pongs$ = this.pongs.asObservable();
      this.dispatcher = new FrameDispatcher(
        {
          data: (payload) => {
            if (!this.done) this.incoming.next(payload);
          },
          pong: (payload) => {
            if (!this.done) this.pongs!.next(payload);
          },
          answer: (payload, written) => {
            if (this.done) written();
            else this.writes.enqueue(payload, FrameType.Pong, written, written);
          },
          backedUp: () => this.bufferedAmount > 0,
        },
        { maxFrameSize },
      );
      this.ping = (payload = EMPTY) => {
        if (payload.length > MAX_CONTROL_PAYLOAD_BYTES) {
          throw new RangeError(
            `a ping payload is at most ${MAX_CONTROL_PAYLOAD_BYTES} bytes, got ${payload.length}`,
          );
        }
        if (!this.done) this.writes.enqueue(payload, FrameType.Ping);
      };
    } else {
      this.pongs$ = undefined;
      this.ping = undefined;
    }
    this.messages$ = new Observable<Uint8Array>((subscriber) => {
      const subscription = this.incoming.subscribe(subscriber);
      this.startReading();
      return subscription;
    });
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    const sink: ByteStreamSink = {
      data: this.dispatcher === undefined ? this.onChunk : this.onFramedChunk,
      end: () => {
        this.end(new LinkClosedError(undefined, 'the peer closed the connection'));
        stream.destroy();
      },
      error: (error, syscallCode) => {
        this.end(new LinkFailedError(`TCP link failed: ${messageOf(error)}`, { cause: error, syscallCode }));
        stream.destroy();
      },
      close: () => {
        if (this.released) return;
        this.released = true;
        this.linger?.unsubscribe();
        this.linger = undefined;
        this.end(new LinkFailedError('the socket closed'));
        this.resolveClosed();
      },
    };
    stream.listen(sink);
  }

  get bufferedAmount(): number {
    return this.stream.bufferedAmount + this.writes.queuedBytes;
  }

  send(data: Uint8Array): Promise<void> {
    if (this.done) return Promise.reject(this.failure ?? new NotOpenError());
    if (this.dispatcher !== undefined && data.byteLength > this.maxFrameSize) {
      // Refusing is the honest answer: the connection ends with an irrecoverable error, as a
      // WebSocket ends with 1009 for a message too big (see createTcpLink).
      const error = new FrameTooLargeError(data.byteLength, this.maxFrameSize);
      this.end(error);
      this.stream.destroy();
      return Promise.reject(error);
    }
    this.pendingData = data;
    return new Promise<void>(this.enqueueData);
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    if (!this.done) this.stream.resume();
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.incoming.complete();
    this.pongs?.complete();
    // Flush what was accepted (its sends settle as written), then FIN; a peer that does not read
    // gets the connection destroyed after the linger time instead.
    this.writes.flush();
    this.stream.end();
    if (!this.released) {
      this.linger = this.scheduler.schedule(() => {
        this.linger = undefined;
        this.stream.destroy();
      }, TCP_CLOSE_LINGER_MS);
    }
  }

  /** One executor for every send's promise, rather than a closure per send: `send` is the hot path. */
  private readonly enqueueData = (resolve: () => void, reject: (error: unknown) => void): void => {
    const data = this.pendingData!;
    this.pendingData = undefined;
    this.writes.enqueue(data, FrameType.Data, resolve, reject);
  };

  private startReading(): void {
    if (this.reading) return;
    this.reading = true;
    this.stream.startReading();
  }

  private readonly onChunk = (chunk: Uint8Array): void => {
    if (!this.done) this.incoming.next(chunk);
  };

  private readonly onFramedChunk = (chunk: Uint8Array): void => {
    if (this.done) return;
    try {
      this.dispatcher!.push(chunk);
    } catch (error) {
      this.end(error);
      this.stream.destroy();
    }
  };

  /** A write that failed means the connection is broken: the link fails with it, once. */
  private writeFailed(error: Error): unknown {
    if (this.failure === undefined && !this.done) {
      this.end(new LinkFailedError(`TCP write failed: ${error.message}`, { cause: error }));
      this.stream.destroy();
    }
    return this.failure ?? new LinkFailedError(`TCP write failed: ${error.message}`, { cause: error });
  }

  /** The first end wins: a later 'close' after an 'error' must not replace the real cause. */
  private end(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failure = error;
    // Writes not yet handed to the stream never will be: their sends fail with the link.
    this.writes.fail(error);
    this.incoming.error(error);
    this.pongs?.complete();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
