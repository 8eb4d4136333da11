import { FrameDecoder, type FrameDecoderOptions, FrameType } from './length-prefixed-framing.js';

/** Where a {@link FrameDispatcher} sends each decoded frame. */
export interface FrameDispatchHandlers {
  /** A data frame's payload. */
  data(payload: Uint8Array): void;
  /** A pong frame's payload. */
  pong(payload: Uint8Array): void;
  /** A ping frame's payload, after it was answered (or not: see {@link answer}). */
  ping?(payload: Uint8Array): void;
  /**
   * Writes the pong that answers a ping, with the ping's payload; `written` must be called once,
   * when the pong was written or failed. Without it pings are not answered.
   */
  answer?(payload: Uint8Array, written: () => void): void;
  /** True while output waits to be written (the socket's buffer, a batch not yet handed over). */
  backedUp(): boolean;
}

/**
 * The one place frames are dispatched, for clients (the TCP link) and servers (Node's
 * `FramedSocket`, the resume servers' TCP adapters) alike: decodes chunks with a
 * {@link FrameDecoder} and hands out data, pings and pongs, answering each ping with a pong. While
 * output is backed up, one pong on its way answers every ping: a peer that pings and never reads
 * must not grow our output.
 *
 * @example
 * ```ts
 * const dispatcher = new FrameDispatcher({ data: onMessage, pong: onPong, answer: writePong, backedUp: () => false });
 * socket.on('data', (chunk) => dispatcher.push(chunk));
 * ```
 * @see FrameDecoder
 */
export class FrameDispatcher {
  private readonly decoder: FrameDecoder;
  private pongsPending = 0;
  private readonly pongWritten = (): void => {
    this.pongsPending--;
  };

  constructor(
    private readonly handlers: FrameDispatchHandlers,
    options: FrameDecoderOptions = {},
  ) {
    this.decoder = new FrameDecoder(options);
  }

  /** The decoder's limit on a data frame's payload, in bytes. */
  get maxFrameSize(): number {
    return this.decoder.maxFrameSize;
  }

  /**
   * Decodes `chunk` and dispatches every frame it completes, in order. Throws the decoder's
   * `FrameTooLargeError` or `MalformedFrameError` when the stream breaks the format (and every
   * later push throws it again), or what a handler threw.
   */
  push(chunk: Uint8Array): void {
    this.decoder.push(chunk, this.onFrame);
  }

  private readonly onFrame = (payload: Uint8Array, type: FrameType): void => {
    const handlers = this.handlers;
    if (type === FrameType.Data) handlers.data(payload);
    else if (type === FrameType.Ping) {
      if (handlers.answer !== undefined && !(this.pongsPending > 0 && handlers.backedUp())) {
        this.pongsPending++;
        handlers.answer(payload, this.pongWritten);
      }
      handlers.ping?.(payload);
    } else handlers.pong(payload);
  };
}
