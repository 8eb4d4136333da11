import {
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameType,
  type Link,
  LinkClosedError,
  LinkFailedError,
  MAX_CONTROL_PAYLOAD_BYTES,
  NotOpenError,
  type TcpMode,
  writeFrameHeader,
} from '@lifeline/core/internal';
import { Observable, Subject } from 'rxjs';
import type { DenoConnLike } from './deno-connect.js';
import { syscallCodeOf } from './deno-net-error.js';

/** How a TCP link cuts the byte stream into messages. */
export type { TcpMode } from '@lifeline/core/internal';

/**
 * How long `close()` waits for accepted writes to reach the kernel before it closes the
 * connection anyway (a peer that stopped reading must not keep a closed link's connection open).
 */
export const TCP_CLOSE_LINGER_MS = 2_000;

/** Bytes asked for by each read. */
export const TCP_READ_BUFFER_BYTES = 64 * 1024;

/** Payloads at least this large are written after their header instead of copied behind it. */
const COPY_LIMIT = 2_048;

const EMPTY = new Uint8Array(0);

/** A link over one `Deno.Conn`: what {@link tcpTransport} opens. */
export interface TcpLink extends Link<Uint8Array, Uint8Array> {
  /** `'framed'`: one message per frame; `'stream'`: messages are the raw chunks read. */
  readonly mode: TcpMode;
  /** Settles once the connection's resource is released (after `close()` or a failure). Never rejects. */
  readonly closed: Promise<void>;
  /** Framed mode only: sends a ping frame; the peer's pong arrives on `pongs$`. */
  readonly ping?: (payload?: Uint8Array) => void;
  /** Framed mode only: the payload of each pong frame from the peer. */
  readonly pongs$?: Observable<Uint8Array>;
}

/**
 * Wraps a connected `Deno.Conn` as a {@link TcpLink}, speaking the same framed protocol as
 * `@lifeline/node/tcp` (the core's length-prefixed framing) or passing bytes through.
 * Reading starts at the first subscription to `messages$`, so nothing is lost between `open()`
 * and `subscribe()`. The peer's end of stream is a {@link LinkClosedError} without a close code
 * (recoverable); a failed read or write is a {@link LinkFailedError} with the OS code
 * (ECONNRESET, EPIPE...); a frame that breaks the format fails the link with the decoder's
 * irrecoverable error.
 *
 * @example
 * ```ts
 * const link = createTcpLink(await Deno.connect({ port: 7000 }), 'framed');
 * link.messages$.subscribe((payload) => console.log(payload.length));
 * ```
 * @see tcpTransport, which connects and wraps with this.
 */
export function createTcpLink(
  conn: DenoConnLike,
  mode: TcpMode,
  maxFrameSize = DEFAULT_MAX_FRAME_SIZE,
): TcpLink {
  return new DenoTcpLink(conn, mode, maxFrameSize);
}

class DenoTcpLink implements TcpLink {
  readonly messages$: Observable<Uint8Array>;
  readonly pongs$: Observable<Uint8Array> | undefined;
  readonly ping: ((payload?: Uint8Array) => void) | undefined;
  readonly closed: Promise<void>;
  readonly info: Readonly<Record<string, unknown>>;
  private readonly incoming = new Subject<Uint8Array>();
  private readonly pongs: Subject<Uint8Array> | undefined;
  private readonly decoder: FrameDecoder | undefined;
  /** Writes run one after another: `Deno.Conn.write` may write part of a buffer. */
  private writing: Promise<void> = Promise.resolve();
  private queuedBytes = 0;
  /** Set once the link failed or was closed by us: nothing more is delivered or accepted. */
  private done = false;
  private failure: unknown;
  private reading = false;
  private released = false;
  private resolveClosed!: () => void;

  constructor(
    private readonly conn: DenoConnLike,
    readonly mode: TcpMode,
    maxFrameSize: number,
  ) {
    const local = conn.localAddr as { hostname?: string; port?: number } | undefined;
    const remote = conn.remoteAddr as { hostname?: string; port?: number } | undefined;
    this.info = {
      mode,
      localAddress: local?.hostname,
      localPort: local?.port,
      remoteAddress: remote?.hostname,
      remotePort: remote?.port,
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
        // A ping that cannot be written means the connection is failing: the read loop reports it.
        if (!this.done) this.enqueueFrame(payload, FrameType.Ping).catch(() => {});
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
  }

  get bufferedAmount(): number {
    return this.queuedBytes;
  }

  send(data: Uint8Array): Promise<void> {
    if (this.done) return Promise.reject(this.failure ?? new NotOpenError());
    return this.decoder === undefined ? this.enqueue([data]) : this.enqueueFrame(data, FrameType.Data);
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.incoming.complete();
    this.pongs?.complete();
    // Let what was accepted reach the kernel (its sends settle as written), then close; a peer
    // that does not read gets the connection closed after the linger time instead.
    let linger: ReturnType<typeof setTimeout> | undefined;
    const lingered = new Promise<void>((resolve) => {
      linger = setTimeout(resolve, TCP_CLOSE_LINGER_MS);
    });
    void Promise.race([this.writing, lingered]).then(() => {
      clearTimeout(linger);
      this.release();
    });
  }

  private enqueueFrame(payload: Uint8Array, type: FrameType): Promise<void> {
    const length = payload.length;
    if (length >= COPY_LIMIT) {
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      writeFrameHeader(header, 0, length, type);
      return this.enqueue([header, payload]);
    }
    const frame = new Uint8Array(FRAME_HEADER_BYTES + length);
    writeFrameHeader(frame, 0, length, type);
    frame.set(payload, FRAME_HEADER_BYTES);
    return this.enqueue([frame]);
  }

  private enqueue(parts: Uint8Array[]): Promise<void> {
    let bytes = 0;
    for (const part of parts) bytes += part.length;
    this.queuedBytes += bytes;
    const written = this.writing.then(async () => {
      try {
        for (const part of parts) await this.writeAll(part);
      } finally {
        this.queuedBytes -= bytes;
      }
    });
    // The chain only orders writes; each write's failure reaches its own caller through `written`.
    this.writing = written.catch(() => {});
    return written;
  }

  private async writeAll(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      if (this.released || this.failure !== undefined) throw this.failure ?? new NotOpenError();
      try {
        offset += await this.conn.write(offset === 0 ? data : data.subarray(offset));
      } catch (error) {
        const failure = new LinkFailedError(`TCP write failed: ${messageOf(error)}`, {
          cause: error,
          syscallCode: syscallCodeOf(error),
        });
        this.end(failure);
        throw this.failure;
      }
    }
  }

  private startReading(): void {
    if (this.reading) return;
    this.reading = true;
    void this.readLoop();
  }

  private async readLoop(): Promise<void> {
    const buffer = new Uint8Array(TCP_READ_BUFFER_BYTES);
    while (!this.done) {
      let read: number | null;
      try {
        read = await this.conn.read(buffer);
      } catch (error) {
        // After our own close() the read is interrupted on purpose; end() ignores it then.
        this.end(
          new LinkFailedError(`TCP link failed: ${messageOf(error)}`, {
            cause: error,
            syscallCode: syscallCodeOf(error),
          }),
        );
        return;
      }
      if (read === null) {
        this.end(new LinkClosedError(undefined, 'the peer closed the connection'));
        return;
      }
      if (this.done) return;
      // A copy per read: the decoder hands out views of the chunks it is given, so the read
      // buffer must not be reused under them.
      const chunk = buffer.slice(0, read);
      if (this.decoder === undefined) {
        this.incoming.next(chunk);
        continue;
      }
      try {
        this.decoder.push(chunk, this.onFrame);
      } catch (error) {
        this.end(error);
        return;
      }
    }
  }

  private pongsPending = 0;
  private readonly pongWritten = (): void => {
    this.pongsPending--;
  };

  private readonly onFrame = (payload: Uint8Array, type: FrameType): void => {
    if (this.done) return;
    if (type === FrameType.Data) this.incoming.next(payload);
    else if (type === FrameType.Ping) {
      // While output is backed up, one pong on its way answers every ping: a peer that pings and
      // never reads must not grow our queue.
      if (this.pongsPending > 0 && this.queuedBytes > 0) return;
      this.pongsPending++;
      this.enqueueFrame(payload, FrameType.Pong).then(this.pongWritten, this.pongWritten);
    } else this.pongs!.next(payload);
  };

  /** The first end wins: a later failure must not replace the real cause. */
  private end(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failure = error;
    this.release();
    this.incoming.error(error);
    this.pongs?.complete();
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    try {
      this.conn.close();
    } catch {
      // Already closed by the runtime (the peer reset it): the resource is gone either way.
    }
    this.resolveClosed();
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
