import type { Socket } from 'node:net';
import { clearTimeout, setTimeout } from 'node:timers';
import {
  DEFAULT_MAX_FRAME_SIZE,
  FrameDecoder,
  FrameTooLargeError,
  FrameType,
  type Link,
  LinkClosedError,
  LinkFailedError,
  MAX_CONTROL_PAYLOAD_BYTES,
  NotOpenError,
  type TcpMode,
} from '@lifeline/core/internal';
import { Observable, Subject } from 'rxjs';
import { WriteBatcher } from './write-batcher.js';

/** How a TCP link cuts the byte stream into messages. */
export type { TcpMode } from '@lifeline/core/internal';

/**
 * How long `close()` waits for written bytes to reach the kernel before it destroys the socket
 * anyway (a peer that stopped reading must not keep a closed link's socket alive).
 */
export const TCP_CLOSE_LINGER_MS = 2_000;

const EMPTY = new Uint8Array(0);

/** A link over one `net.Socket`: what {@link tcpTransport} opens. */
export interface TcpLink extends Link<Uint8Array, Uint8Array> {
  /** `'framed'`: one message per frame; `'stream'`: messages are the raw chunks read. */
  readonly mode: TcpMode;
  /** Settles once the socket's handle is released (after `close()` or a failure). Never rejects. */
  readonly closed: Promise<void>;
  /**
   * Framed mode only: sends a ping frame; the peer's pong arrives on `pongs$`.
   * Throws a RangeError for a payload longer than {@link MAX_CONTROL_PAYLOAD_BYTES} (125) bytes.
   */
  readonly ping?: (payload?: Uint8Array) => void;
  /** Framed mode only: the payload of each pong frame from the peer. */
  readonly pongs$?: Observable<Uint8Array>;
  /**
   * Stops reading the socket: what the peer sends waits in the kernel's buffers, and once they
   * are full TCP's flow control stops the peer. For a reader that cannot keep up (a Duplex whose
   * `push()` returned false). Pings and pongs are not read either while paused. Idempotent.
   */
  pause(): void;
  /** Reads the socket again after {@link TcpLink.pause}. Idempotent. */
  resume(): void;
}

/**
 * Wraps a connected socket as a {@link TcpLink}. Reading starts at the first subscription to
 * `messages$`, so nothing is lost between `open()` and `subscribe()`. An unexpected end from the
 * peer is a {@link LinkClosedError} without a close code (recoverable); a socket error is a
 * {@link LinkFailedError} carrying the OS code (ECONNRESET, EPIPE...); a frame that breaks the format
 * fails the link with the decoder's irrecoverable error. Incoming pings are answered with pongs;
 * while output is backed up, a ping that arrives as a pong waits to be written is not answered again, and
 * ping payloads are at most {@link MAX_CONTROL_PAYLOAD_BYTES} (125) bytes.
 *
 * `send` resolves once the socket reports the bytes written. The sends of one tick leave together
 * in one writev (see {@link WriteBatcher}), so a burst of small messages costs one syscall.
 *
 * @example
 * ```ts
 * const socket = net.connect({ port });
 * socket.once('connect', () => useLink(createTcpLink(socket, 'framed', 1024 * 1024)));
 * ```
 * @see tcpTransport, which opens sockets and wraps them with this.
 */
export function createTcpLink(socket: Socket, mode: TcpMode, maxFrameSize = DEFAULT_MAX_FRAME_SIZE): TcpLink {
  return new TcpLinkImpl(socket, mode, maxFrameSize);
}

class TcpLinkImpl implements TcpLink {
  readonly messages$: Observable<Uint8Array>;
  readonly pongs$: Observable<Uint8Array> | undefined;
  readonly ping: ((payload?: Uint8Array) => void) | undefined;
  readonly closed: Promise<void>;
  readonly info: Readonly<Record<string, unknown>>;
  private readonly incoming = new Subject<Uint8Array>();
  private readonly pongs: Subject<Uint8Array> | undefined;
  private readonly decoder: FrameDecoder | undefined;
  /** Set once the link failed or was closed: nothing more is delivered or written. */
  private done = false;
  private failure: unknown;
  private reading = false;
  private readonly writes: WriteBatcher;
  /** The payload `send` hands to {@link enqueueData}, which runs synchronously inside `new Promise`. */
  private pendingData: Uint8Array | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Pongs on their way: while output is backed up, a peer that pings and never reads gets no second one. */
  private pongsPending = 0;
  private readonly pongWritten = (): void => {
    this.pongsPending--;
  };

  constructor(
    private readonly socket: Socket,
    readonly mode: TcpMode,
    private readonly maxFrameSize: number,
  ) {
    this.writes = new WriteBatcher(
      socket,
      mode === 'framed',
      (error) => this.failure ?? new LinkFailedError(`TCP write failed: ${error.message}`, { cause: error }),
    );
    this.info = {
      mode,
      localAddress: socket.localAddress,
      localPort: socket.localPort,
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
    };
    if (mode === 'framed') {
      this.decoder = new FrameDecoder({ maxFrameSize });
      this.pongs = new Subject();
      this.pongs$ = this.pongs.asObservable();
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
      socket.once('close', () => {
        if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
        this.lingerTimer = undefined;
        this.end(new LinkFailedError('the socket closed'));
        resolve();
      });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.end(
        new LinkFailedError(`TCP link failed: ${error.message}`, { cause: error, syscallCode: error.code }),
      );
    });
    socket.on('end', () => {
      this.end(new LinkClosedError(undefined, 'the peer closed the connection'));
      socket.destroy();
    });
  }

  get bufferedAmount(): number {
    return this.socket.writableLength + this.writes.queuedBytes;
  }

  send(data: Uint8Array): Promise<void> {
    if (this.done) return Promise.reject(this.failure ?? new NotOpenError());
    if (this.decoder !== undefined && data.byteLength > this.maxFrameSize) {
      // A peer with the same limit would reset the connection, and the reset would be retried with
      // the same message until the budget ran out. Refusing is the honest answer: the connection
      // ends with an irrecoverable error, as a WebSocket ends with 1009 for a message too big.
      const error = new FrameTooLargeError(data.byteLength, this.maxFrameSize);
      this.end(error);
      this.socket.destroy();
      return Promise.reject(error);
    }
    this.pendingData = data;
    return new Promise<void>(this.enqueueData);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.done) this.socket.resume();
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.incoming.complete();
    this.pongs?.complete();
    // Flush what was accepted (its sends settle as written), then FIN; a peer that does not read
    // gets the socket destroyed after the linger time instead.
    this.writes.flush();
    this.socket.destroySoon();
    if (!this.socket.destroyed) {
      this.lingerTimer = setTimeout(() => this.socket.destroy(), TCP_CLOSE_LINGER_MS);
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
    this.socket.on('data', this.decoder === undefined ? this.onChunk : this.onFramedChunk);
  }

  private readonly onChunk = (chunk: Buffer): void => {
    if (!this.done) this.incoming.next(chunk);
  };

  private readonly onFramedChunk = (chunk: Buffer): void => {
    if (this.done) return;
    try {
      this.decoder!.push(chunk, this.onFrame);
    } catch (error) {
      this.end(error);
      this.socket.destroy();
    }
  };

  private readonly onFrame = (payload: Uint8Array, type: FrameType): void => {
    if (this.done) return;
    if (type === FrameType.Data) this.incoming.next(payload);
    else if (type === FrameType.Ping) {
      if (this.pongsPending > 0 && this.bufferedAmount > 0) return;
      this.pongsPending++;
      this.writes.enqueue(payload, FrameType.Pong, this.pongWritten, this.pongWritten);
    } else this.pongs!.next(payload);
  };

  /** The first end wins: a later 'close' after an 'error' must not replace the real cause. */
  private end(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failure = error;
    // Writes not yet handed to the socket never will be: their sends fail with the link.
    this.writes.fail(error);
    this.incoming.error(error);
    this.pongs?.complete();
  }
}
