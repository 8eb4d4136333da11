import { BackpressureError, InvalidOptionError, LinkFailedError } from '../../engine/errors.js';
import { count } from '../../engine/options.js';
import { DEFAULT_MAX_FRAME_BYTES, ResumeFrameType } from '../wire/resume-frame.js';
import { DEFAULT_MAX_REPLAY_BYTES, DEFAULT_MAX_REPLAY_MESSAGES } from './replay-buffer.js';
import {
  DEFAULT_MAX_UNREAD_BYTES,
  type FrameWriter,
  type SessionEndpointOptions,
} from './session-endpoint.js';

/** Bytes of framing each written DATA frame may add to its payload, for the default high-water mark. */
const FRAME_OVERHEAD_ALLOWANCE = 64;

/**
 * The output high-water mark of a resume link at `options`: what the session may legitimately
 * have written and not yet seen leave (its whole replay window, framed, plus a frame or two of
 * control traffic), so only a peer that stops reading passes it. Also checks the byte limits
 * that must hold a whole frame (client and server alike): `outputHighWaterBytes` and
 * `maxUnreadBytes` at least `maxFrameBytes`. Below it, one frame the network does not take at
 * once would close the link, and the next link would replay the same frame: a loop of
 * reconnects, or (unread) a link lost for one message nobody read yet.
 * @throws {InvalidOptionError} a limit below `maxFrameBytes`, naming both
 * @see SessionEndpointOptions.outputHighWaterBytes
 */
export function outputHighWaterOf(options: SessionEndpointOptions): number {
  const frame = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const highWater =
    options.outputHighWaterBytes ??
    (options.maxReplayBytes ?? DEFAULT_MAX_REPLAY_BYTES) +
      FRAME_OVERHEAD_ALLOWANCE * (options.maxReplayMessages ?? DEFAULT_MAX_REPLAY_MESSAGES) +
      2 * frame;
  count('outputHighWaterBytes', options.outputHighWaterBytes, { min: 1 });
  if (!(highWater > 0)) throw new InvalidOptionError('outputHighWaterBytes must be > 0');
  holdsFrame('outputHighWaterBytes', highWater, frame);
  holdsFrame('maxUnreadBytes', options.maxUnreadBytes ?? DEFAULT_MAX_UNREAD_BYTES, frame);
  return highWater;
}

function holdsFrame(name: string, bytes: number, frame: number): void {
  if (bytes < frame) throw new InvalidOptionError(`${name} (${bytes}) must be >= maxFrameBytes (${frame})`);
}

/** How {@link LinkOutput} writes on its link. */
export interface LinkOutputPort {
  /** Writes a frame without confirmation. */
  write(frame: Uint8Array): void;
  /** Writes a frame and calls `done` exactly once, when it was handed to the network or failed. */
  writeConfirmed(frame: Uint8Array, done: () => void): void;
  /** Bytes written and not yet taken by the network (ws `bufferedAmount`, Node `writableLength`). */
  readonly bufferedAmount: number;
  /**
   * Told of an overflow when the output was made without an `overflow` callback (a port that is
   * its link's own object need not keep a closure for it).
   */
  drop_?(error: unknown): void;
}

/**
 * The output side of one resume link, shared by the client and the server. It bounds what a peer
 * that does not read can make us hold. While the output is backed up (bytes buffered):
 * - at most one PONG waits to be written: a PING that arrives meanwhile is not answered again
 *   (the pending PONG answers it as well: a PONG only says the link is alive);
 * - at most one standalone ACK waits to be written: a newer one replaces the one held behind it
 *   (acks are cumulative, so nothing is lost), and goes out when the pending ones are written;
 * - when the bytes buffered pass the high-water mark, `overflow` is called once (in a microtask)
 *   with a {@link BackpressureError}, the caller closes the link, and later writes are dropped.
 * DATA frames are bounded by the replay window and go straight through.
 *
 * @example
 * ```ts
 * const output = new LinkOutput(port, outputHighWaterOf(options), (error) => link.fail(error));
 * endpoint.connect(output.writer, lastReceived, sink);
 * ```
 */
export class LinkOutput {
  // Counters as fields, not an object of their own (~0.03 KB per link, `pnpm bench server`).
  private droppedPongs = 0;
  private droppedAcks = 0;
  private pongsPending = 0;
  private acksPending = 0;
  private ackWaiting: Uint8Array | undefined;
  private overflowed = false;

  constructor(
    private readonly port: LinkOutputPort,
    readonly highWater: number,
    private readonly overflow?: (error: unknown) => void,
  ) {}

  /** Counters: PONGs not written because one was pending, ACKs replaced by a newer one. */
  get dropped(): { readonly pongs: number; readonly acks: number } {
    return { pongs: this.droppedPongs, acks: this.droppedAcks };
  }

  /** Writes one resume frame under the rules above. */
  readonly writer: FrameWriter = (frame) => {
    if (this.overflowed) return;
    const type = frame[0];
    try {
      // A control frame is held back only while output is backed up: with nothing buffered it
      // leaves at once, whatever the confirmations still on their way.
      if (type === ResumeFrameType.Pong) {
        if (this.pongsPending > 0 && this.port.bufferedAmount > 0) {
          this.droppedPongs++;
          return;
        }
        this.pongsPending++;
        this.pongWritten ??= () => this.pongDone();
        this.port.writeConfirmed(frame, this.pongWritten);
      } else if (type === ResumeFrameType.Ack) {
        if (this.ackWaiting || (this.acksPending > 0 && this.port.bufferedAmount > 0)) {
          if (this.ackWaiting) this.droppedAcks++;
          this.ackWaiting = frame;
          return;
        }
        this.acksPending++;
        this.ackWritten ??= () => this.ackDone();
        this.port.writeConfirmed(frame, this.ackWritten);
      } else {
        this.port.write(frame);
      }
      this.check();
    } catch (error) {
      // The link's own `send` threw (a `wrapTransport` link's may: it refused the frame). The
      // session's frames are numbered: one missing is a gap the peer ends the session for (1002),
      // so nothing more is written on this link, which is given up as on an overflow; the next
      // replays from the refused frame on (a failed link: recovered, whatever was thrown).
      this.fail_(new LinkFailedError('send failed', { cause: error }));
    }
  };

  /** Calls `overflow` if the output is above the high-water mark (once). */
  check(): void {
    if (this.overflowed) return;
    const buffered = this.port.bufferedAmount;
    if (buffered > this.highWater) this.fail_(new BackpressureError(buffered, this.highWater));
  }

  /** Gives the link up (once): later writes are dropped, and `overflow` is told in a microtask. */
  private fail_(error: unknown): void {
    this.overflowed = true;
    // Not inside the write: the writer may be the session's, in the middle of a replay or of a
    // frame handler; the link closes just after. Writes until then are dropped (the link is lost,
    // and what the session wrote on it is replayed on the next).
    queueMicrotask(() => (this.overflow ? this.overflow(error) : this.port.drop_?.(error)));
  }

  // The confirmations' callbacks, made on the first PONG or ACK written: an idle link writes
  // neither for long stretches, and keeps this object for its whole life.
  private pongWritten: (() => void) | undefined;
  private ackWritten: (() => void) | undefined;

  private pongDone(): void {
    this.pongsPending--;
  }

  private ackDone(): void {
    this.acksPending--;
    const waiting = this.ackWaiting;
    if (!waiting || this.acksPending > 0) return;
    this.ackWaiting = undefined;
    this.writer(waiting);
  }
}
