import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_HEADER_BYTES,
  FrameDispatcher,
  FrameType,
  MAX_CONTROL_PAYLOAD_BYTES,
  writeFrameHeader,
} from '@lifeline/core/internal/server';

/** Options of {@link FramedSocket}. */
export interface FramedSocketOptions {
  /** The largest payload accepted from the client. @default 16_777_216 (16 MiB) */
  maxFrameSize?: number;
  /**
   * Answer each ping frame with a pong frame carrying the same payload. While output is backed up,
   * at most one pong waits to be written: a ping that arrives meanwhile is not answered again (a
   * client that pings and never reads must not grow our output). Ping payloads are at most
   * {@link MAX_CONTROL_PAYLOAD_BYTES} (125) bytes; a larger one is a `FrameTooLargeError`.
   * @default true
   */
  answerPings?: boolean;
}

/** The events of a {@link FramedSocket}. */
export interface FramedSocketEvents {
  /** A data frame's payload. */
  message: [payload: Uint8Array];
  /** A ping frame arrived (already answered unless `answerPings` is false or a pong was still pending). */
  ping: [payload: Uint8Array];
  /** A pong frame arrived. */
  pong: [payload: Uint8Array];
  /** A socket error or a frame that breaks the format; the socket is destroyed. Emitted only when listened to. */
  error: [error: Error];
  /** The socket closed. */
  close: [];
}

/**
 * The server side of Lifeline's framed TCP protocol on one accepted socket: decodes frames,
 * answers pings (a Lifeline client with a heartbeat counts on it), and encodes what it sends.
 *
 * @example
 * ```ts
 * net.createServer((socket) => {
 *   const peer = new FramedSocket(socket);
 *   peer.on('message', (payload) => peer.send(payload)); // echo
 * }).listen(7000);
 * ```
 * @see createFramedServer, which does this for every connection.
 */
export class FramedSocket extends EventEmitter<FramedSocketEvents> {
  private readonly dispatcher: FrameDispatcher;

  constructor(
    readonly socket: Socket,
    options: FramedSocketOptions = {},
  ) {
    super();
    // The frame dispatch is the core's, shared with the TCP link: data, pings answered (one pong
    // on its way at most while output is backed up), pongs.
    this.dispatcher = new FrameDispatcher(
      {
        data: (payload) => this.emit('message', payload),
        ping: (payload) => this.emit('ping', payload),
        pong: (payload) => this.emit('pong', payload),
        answer:
          (options.answerPings ?? true)
            ? (payload, written) => this.write(payload, FrameType.Pong, written)
            : undefined,
        backedUp: () => socket.writableLength > 0,
      },
      { maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE },
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        this.dispatcher.push(chunk);
      } catch (error) {
        this.fail(error as Error);
      }
    });
    // A client that resets is routine for a server; without a listener it would crash the process.
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.emit('close'));
  }

  /**
   * Sends one message as a data frame. Returns `socket.write`'s backpressure signal; `callback`
   * runs once the frame was written, or with an error if the socket is gone.
   */
  send(payload: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    return this.write(payload, FrameType.Data, callback);
  }

  /**
   * Sends a ping frame; the client answers with a pong (emitted as `pong`).
   * @throws RangeError when `payload` is longer than {@link MAX_CONTROL_PAYLOAD_BYTES} (125) bytes.
   */
  ping(payload: Uint8Array = new Uint8Array(0)): boolean {
    if (payload.length > MAX_CONTROL_PAYLOAD_BYTES) {
      throw new RangeError(
        `a ping payload is at most ${MAX_CONTROL_PAYLOAD_BYTES} bytes, got ${payload.length}`,
      );
    }
    return this.write(payload, FrameType.Ping);
  }

  /** Ends the connection after what was sent (the client sees a recoverable close). */
  end(): void {
    this.socket.end();
  }

  /** Destroys the socket at once. */
  destroy(error?: Error): void {
    this.socket.destroy(error);
  }

  private write(payload: Uint8Array, type: FrameType, callback?: (error?: Error | null) => void): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) {
      if (callback) process.nextTick(callback, new Error('the socket is closed'));
      return false;
    }
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
    writeFrameHeader(frame, 0, payload.length, type);
    frame.set(payload, FRAME_HEADER_BYTES);
    return this.socket.write(frame, callback);
  }

  private fail(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    this.socket.destroy();
  }
}
