import type { SchedulerLike, Subscription } from 'rxjs';
import { monotonicScheduler } from '../../engine/clock.js';
import {
  type BackpressureError,
  FrameTooLargeError,
  LinkClosedError,
  ProtocolError,
  type UnacknowledgedMessage,
} from '../../engine/errors.js';
import { invalidMessageError, isLinkData, type Link, type LinkData } from '../../engine/link.js';
import { checkOptionTable, MAX_TIMER_MS } from '../../engine/options.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  dataHeaderLength,
  dataPayload,
  type EncodedData,
  encodeAck,
  encodeDataFrame,
  LAZY_DATA_FLAG,
  ResumeFrameType,
} from '../wire/resume-frame.js';
import { checkReplayWindowOptions, ReplayBuffer, type ReplayWindowOptions } from './replay-buffer.js';

/** Options of one end of a resume session: the replay window, acknowledgements and frame limits. */
export interface SessionEndpointOptions extends ReplayWindowOptions {
  /**
   * A standalone ACK goes out once this many delivered messages are unacknowledged (acks ride on
   * outgoing DATA frames for free; this bounds the replay window the peer must keep). An integer ≥ 1.
   * @default 32
   */
  ackEvery?: number;
  /**
   * A standalone ACK goes out at most this long after the first unacknowledged delivery, in ms
   * (0 to 2^31 - 1). Messages the peer flagged "the ack may wait" (protocol version 3: nobody
   * awaits them) wait 20 times longer (1 s at the default), unless
   * `ackEvery` or an unflagged message comes first.
   * @default 50
   */
  ackDelayMs?: number;
  /**
   * Frames larger than this are refused: incoming ones close the link with a
   * {@link FrameTooLargeError}, outgoing ones reject their `send()`. An integer ≥ 64.
   * @default 1_048_576 (1 MiB)
   */
  maxFrameBytes?: number;
  /**
   * Drives the ack timer; on a resume server, every timer (the sweep that times handshakes, idle
   * links, pings and the session TTL; the adapters' upgrade timeout). @default monotonicScheduler
   */
  scheduler?: SchedulerLike;
  /**
   * Incoming messages that may wait for the application (nobody subscribed to the receive stream
   * yet). They are not acknowledged while they wait, so a peer that honours its own replay window
   * stops long before this; one that goes on is closing the link with a {@link ProtocolError}
   * instead of exhausting memory. An integer ≥ 1.
   * @default 16_384
   */
  maxUnreadMessages?: number;
  /**
   * Bytes of incoming messages that may wait for the application (see `maxUnreadMessages`). An
   * integer ≥ `maxFrameBytes` (one message must fit).
   * @default 67_108_864 (64 MiB)
   */
  maxUnreadBytes?: number;
  /**
   * The output high-water mark of each link, in bytes written and not yet taken by the network (ws
   * `bufferedAmount`, Node `writableLength`). A peer that stops reading makes them pass it, and the
   * link is closed with a {@link BackpressureError} (recoverable: the session resumes on a new link)
   * instead of letting its output grow. Below it, at most one PONG and one standalone ACK wait to be
   * written at a time, and DATA is bounded by the replay window, so a session that honours its own
   * limits never reaches it. An integer ≥ `maxFrameBytes`: below, one frame the network does not
   * take at once would close a healthy link, and the next would replay it (a loop of reconnects).
   * A value below the default lets a replay of a full window after a reconnect pass it on a link
   * slower than the burst.
   * @default maxReplayBytes + 64 x maxReplayMessages + 2 x maxFrameBytes (10.06 MiB at the defaults)
   */
  outputHighWaterBytes?: number;
}

/**
 * Checks {@link SessionEndpointOptions} (the replay window's too): `ackEvery` an integer ≥ 1,
 * `ackDelayMs` a duration, `maxFrameBytes` an integer ≥ 64, `maxUnreadMessages` and
 * `maxUnreadBytes` integers ≥ 1, `outputHighWaterBytes` an integer ≥ 1.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkSessionEndpointOptions(options: SessionEndpointOptions | undefined): void {
  checkReplayWindowOptions(options);
  checkOptionTable(
    'options',
    options,
    'ackEvery i 1,ackDelayMs d,maxFrameBytes i 64,maxUnreadMessages i 1,maxUnreadBytes i 1,outputHighWaterBytes i 1',
    false,
    '',
  );
}

export const DEFAULT_MAX_UNREAD_MESSAGES = 16_384;
export const DEFAULT_MAX_UNREAD_BYTES = 64 * 1024 * 1024;

export const DEFAULT_ACK_EVERY = 32;
export const DEFAULT_ACK_DELAY_MS = 50;
/**
 * A standalone ACK owed only for messages flagged "the ack may wait" goes out this many times
 * `ackDelayMs` after the first of them (1 s at the default 50 ms), or at `ackEvery`: nobody waits
 * for them, and at thousands of connections a tick of sends outlasts `ackDelayMs`, which would
 * make one ACK frame per message (docs/benchmarks.md, "Client CPU per 64 B send, 5,000
 * connections").
 */
export const LAZY_ACK_DELAY_FACTOR = 20;

/** @internal An endpoint's own limits as read from its options (the replay window's are the buffer's). */
interface EndpointLimits {
  readonly ackEvery_: number;
  readonly ackDelayMs_: number;
  readonly maxFrameBytes_: number;
  readonly scheduler_: SchedulerLike;
  readonly maxUnreadMessages_: number;
  readonly maxUnreadBytes_: number;
}

/** An endpoint's options and hooks when given none: one object, so such endpoints share their limits. */
const NO_OPTIONS = {};

/** Durable-store hooks of a server session: writes that must land before the wire sees them. */
export interface SessionEndpointHooks {
  /**
   * Small DATA frames are cut from the shared slab (`encodeData`'s `pooled`, views of an 8 KiB
   * buffer) rather than each given its own. The client's endpoint is: its frames are acknowledged
   * in order. A server's sessions would pin a shared slab for the slowest of them, so a server's
   * are not.
   * @internal
   */
  readonly pooled?: boolean;
  /**
   * Newly accepted outgoing messages, in order, whether admitted to the replay window or waiting
   * for room: resolve once stored (write-ahead of the DATA frames).
   */
  persist?(messages: readonly OutgoingMessage[]): Promise<void>;
  /**
   * Resolve once `received` (the ack about to be sent) is stored. Called only once every message
   * accepted by {@link SessionEndpoint.send} before `received` became ackable is stored, so the
   * stored watermark never gets ahead of what the application sent in answer.
   */
  persistReceived?(received: number): Promise<void>;
  /** The peer acknowledged up to `ack` (stored lazily: a resume re-sends it). */
  peerAcked?(ack: number): void;
  /** A hook rejected: the session can no longer keep its promise. */
  storeFailed?(error: unknown): void;
  /**
   * Resolve once this end may deliver the received messages up to `upTo`: the server stores
   * `upTo` as its "delivered" watermark (so that a later server knows which messages an earlier
   * one may have handed the application, and flags them `redelivered`), with its owner epoch on a
   * fenced store (so that a server that lost the session to another replica never hands the
   * application a message the new owner also gets). Delivery of a message waits for a write that
   * began after it arrived. A rejection goes to {@link storeFailed} and nothing is delivered.
   */
  confirmOwner?(upTo: number): Promise<void>;
  /**
   * Manual acknowledgement: a delivered message counts as received (stored, then acknowledged to
   * the peer) only once the application calls `applicationAck` (the server's `ParkableEndpoint`) for it.
   * Without it, delivery is acknowledgement.
   * @default false
   */
  readonly manualAck?: boolean;
}

/** Where delivered messages go: the receive stream of the current link. */
export interface DeliverySink {
  /** False while nobody listens: messages wait, unacknowledged, until it turns true. */
  readonly ready: boolean;
  deliver(data: string | Uint8Array, seq: number): void;
}

/**
 * Told the outcome of one outgoing message, once: `error` is `undefined` when the peer
 * acknowledged the message, the session's end error when the session ended first (or the refusal,
 * for a {@link SessionEndpoint.send} refused at once). `token` is the message's own (the shape of
 * {@link Link.sendWith}'s `confirmed`, so a link passes that straight through).
 */
export type SendOutcome = (error: unknown, token: object) => void;

/**
 * One outgoing message held until the peer acknowledges it: its DATA frame's fields are its own
 * (not an object of their own, ~0.04 KB less per message held, `pnpm bench server`).
 */
export interface OutgoingMessage extends EncodedData {
  readonly seq: number;
  readonly size: number;
  /**
   * Who waits for the outcome, called with {@link token}; `undefined` when nobody does (a
   * {@link SessionEndpoint.post} without one, a message restored from a store: whoever waited
   * lived in the process that stored it).
   */
  readonly settle: SendOutcome | undefined;
  readonly token: object | undefined;
}

/** Writes one frame on the current link. */
export type FrameWriter = (frame: Uint8Array) => void;

/** Counters of one endpoint, for tests and metrics. */
export interface SessionEndpointStats {
  /** Replayed DATA frames that were already delivered and were dropped. */
  readonly duplicatesDropped: number;
  /** DATA frames written, replays included. */
  readonly framesWritten: number;
  /** Messages written again after a reconnect. */
  readonly replayed: number;
}

const noop = () => {};

/** Tells a message's sender that the peer acknowledged it. */
const settleAcknowledged = (message: OutgoingMessage): void => message.settle?.(undefined, message.token!);

/**
 * @internal The part of a {@link SessionEndpoint} that only a durable store (`persist`,
 * `persistReceived`), manual acknowledgement, ownership checks (`confirmOwner`) or a hand-over
 * (the server's `freeze`) uses: one object made with the endpoint when its hooks need it (on
 * `freeze` or `restore` otherwise), so an endpoint without them (a client without a session
 * store) carries none of these fields (~0.1 KB less per idle resuming connection, `pnpm bench ws`).
 * The server's endpoint, whose hooks always need them, has them as its own fields instead (one
 * object less per session: `ParkableEndpoint`).
 */
export class DurableState {
  /** The last outgoing seq stored (`persist`): DATA is written only up to it. */
  persistedEnd_ = 0;
  // The lists below are made when first needed and dropped when emptied: four empty arrays per
  // session cost ~0.13 KB for its whole life (`pnpm bench server`).
  persistBatch_: OutgoingMessage[] | undefined = undefined;
  persisting_ = false;
  /** Manual acknowledgement: every message up to this one is acknowledged by the application. */
  appAckedSeq_ = 0;
  /**
   * Manual acknowledgement: acknowledged messages above `appAckedSeq` (acknowledged out of order);
   * created on the first such acknowledgement (an empty Set per session costs ~0.2 KB).
   */
  appAckedAbove_: Set<number> | undefined = undefined;
  receivedTarget_ = 0;
  persistingReceived_ = false;
  /**
   * Received watermarks waiting for the store, in order, each with `after`: the last outgoing
   * seq accepted when it became ackable, which must be stored first (a crash between the two
   * writes would keep the client's request acknowledged and lose the answer).
   */
  receivedWaiting_: { received: number; after: number }[] | undefined = undefined;
  receivedStoredWaiters_: (() => void)[] | undefined = undefined;
  /** With `confirmOwner`: messages up to this seq may be delivered; a check covers up to `checkingSeq`. */
  clearedSeq_ = 0;
  checkingSeq_ = 0;
  /** Raised by {@link SessionEndpoint.disconnect}: a check that began on an earlier link clears nothing. */
  ownerCheck_ = 0;
  /** Handing the session over (`freeze`): nothing more is delivered or stored. */
  frozen_ = false;
}

/**
 * One end of a resume session, shared by the client (`resumable`) and the server: numbers and
 * keeps outgoing messages until acknowledged, replays them on each new link, drops duplicates,
 * delivers in order and acknowledges cumulatively. Links come and go through
 * {@link connect} / {@link disconnect}; the session outlives them.
 *
 * @example
 * ```ts
 * const endpoint = new SessionEndpoint({ ackEvery: 16 });
 * endpoint.connect((frame) => link.send(frame), welcome.lastReceived, sink);
 * const acknowledged = endpoint.send('hello');
 * ```
 * @see docs/protocol.md
 */
export class SessionEndpoint {
  /** @internal */ protected readonly buffer_: ReplayBuffer<OutgoingMessage>;
  /** @internal */ protected writer_: FrameWriter | undefined;
  private sink_: DeliverySink | undefined;
  /** @internal */ protected writeCursor_ = 1;
  /** @internal */ protected highestWritten_ = 0;
  /** @internal */ protected deliveredSeq_ = 0;
  /** @internal */ protected ackableSeq_ = 0;
  private toldPeer_ = 0;
  /** @internal */ protected queue_: { seq: number; data: string | Uint8Array }[] | undefined;
  /** @internal */ protected queueHead_ = 0;
  /** @internal */ protected queuedEnd_ = 0;
  private unreadBytes_ = 0;
  private pumping_ = false;
  /** {@link writePending_} is running (see there: a send from inside a write waits for it). */
  private writing_ = false;
  private ackTimer_: Subscription | undefined;
  /**
   * The last received message not flagged "the ack may wait": while it is above the ack told to
   * the peer, the ack timer is the prompt one (`ackDelayMs`), else the longer one.
   */
  private urgent_ = 0;
  /**
   * @internal The link negotiated protocol version 3 (set by its owner from the handshake): DATA
   * flagged "the ack may wait" may be written on it. Only the last link's: a flagged frame
   * replayed on a link that did not negotiate it is written as plain DATA.
   */
  lazyLink_ = false;
  /** @internal */ protected endedWith_: unknown;
  // Counters as fields, not an object of their own (~0.03 KB per session, `pnpm bench server`).
  /** @internal */ protected duplicatesDropped_ = 0;
  /** @internal */ protected framesWritten_ = 0;
  /** @internal */ protected replayed_ = 0;
  /**
   * @internal The store's, manual acknowledgement's, ownership checks' and hand-over's state; made
   * in the constructor when the hooks need it, else on `freeze` or `restore`. Until then it is not
   * even a field of the object (`declare`: no initializer), and reads as `undefined`.
   */
  /** @internal */ declare durable_: DurableState | undefined;

  /**
   * @param options read on the first use of this options object, and shared from then on by every
   *   endpoint made with it (a later change to the object is not seen).
   */
  constructor(
    options: SessionEndpointOptions = NO_OPTIONS,
    /** @internal */ protected readonly hooks_: SessionEndpointHooks = NO_OPTIONS,
  ) {
    this.buffer_ = new ReplayBuffer(options);
    // Shared by every endpoint made with this options object, as the buffer's limits are (a
    // client makes one session per connection from the same options, a server one per session).
    const shared = this.buffer_.limits_;
    if (!shared.endpoint_) {
      checkSessionEndpointOptions(options);
      shared.endpoint_ = {
        ackEvery_: options.ackEvery ?? DEFAULT_ACK_EVERY,
        ackDelayMs_: options.ackDelayMs ?? DEFAULT_ACK_DELAY_MS,
        maxFrameBytes_: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        scheduler_: options.scheduler ?? monotonicScheduler,
        maxUnreadMessages_: options.maxUnreadMessages ?? DEFAULT_MAX_UNREAD_MESSAGES,
        maxUnreadBytes_: options.maxUnreadBytes ?? DEFAULT_MAX_UNREAD_BYTES,
      } satisfies EndpointLimits;
    }
    const { persist, persistReceived, confirmOwner, manualAck } = hooks_;
    if (persist || persistReceived || confirmOwner || manualAck) this.durableState_();
  }

  /** @internal {@link durable_}, made now if it was not (the server's endpoint is its own). */
  protected durableState_(): DurableState {
    this.durable_ ??= new DurableState();
    return this.durable_;
  }

  /** @internal Shared by every endpoint made with the same options object (read on its first use). */
  get limits_(): EndpointLimits {
    // Kept with the buffer's limits, not in a field of its own: one field less per session.
    return this.buffer_.limits_.endpoint_ as EndpointLimits;
  }

  /** The last sequence number delivered to the receive stream (what a HELLO/WELCOME reports). */
  get delivered(): number {
    return this.deliveredSeq_;
  }
  /** The highest received sequence number that may be acknowledged (delivered, and stored if there is a store). */
  get ackable(): number {
    return this.ackableSeq_;
  }
  /** The highest outgoing sequence number assigned. */
  get lastSent(): number {
    return this.buffer_.lastSeq;
  }
  /** The peer's cumulative acknowledgement of our messages. */
  get peerAcked(): number {
    return this.buffer_.acked;
  }
  /** Messages sent and not yet acknowledged, whether admitted to the window or waiting for room. */
  get pending(): number {
    return this.buffer_.size;
  }
  /**
   * Whether the sends waiting for room in the window fill their limits (`maxWaitingMessages`,
   * `maxWaitingBytes`) or are over them, so a send that would wait is refused: right after
   * {@link restore}, a session stored under larger limits.
   */
  get waitingFull(): boolean {
    const buffer = this.buffer_;
    const { messages, bytes } = buffer.waiting;
    const limits = buffer.limits_;
    return messages > 0 && (messages >= limits.maxWaitingMessages_ || bytes >= limits.maxWaitingBytes_);
  }
  get connected(): boolean {
    return this.writer_ !== undefined;
  }
  get stats(): SessionEndpointStats {
    return {
      duplicatesDropped: this.duplicatesDropped_,
      framesWritten: this.framesWritten_,
      replayed: this.replayed_,
    };
  }

  /**
   * Sends a message: resolves once the peer acknowledged it, across reconnects. Rejects when the
   * session ends first, or at once when the message can never be sent (too large, window full
   * under policy `reject`). {@link post} does the same without a promise.
   */
  send(data: LinkData): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const refused = this.post(data, settlePromise, { resolve, reject });
      if (refused !== undefined) reject(refused);
    });
  }

  /**
   * {@link send} without a promise: numbers the message, frames it, keeps it in the replay window
   * (stored first with a store) and writes it if a link is up, exactly as `send` does. The outcome
   * goes to `settle(error, token)`, once, never from inside this call: `undefined` once the peer
   * acknowledged the message, the end error when the session ends first. Without `settle` nobody
   * is told (the owner reports unacknowledged messages from {@link end}'s list). A message that
   * cannot be taken is not: its refusal is returned (`InvalidMessageError`, `FrameTooLargeError`,
   * `ReplayWindowFullError`, or the session's end error), and `settle` is never called for it.
   * Saves the promise, its resolving functions and their reactions per send. `lazy`: nobody waits
   * for the outcome, so the frame is flagged "the ack may wait" (protocol version 3, on a link that
   * negotiated it) while the replay window, with this message, stays under half its limits
   * (messages and bytes): a sender near its limit always has an unflagged message out, answered
   * within `ackDelayMs`.
   * @returns the refusal, or `undefined` when the message was taken
   */
  post(data: LinkData, settle?: SendOutcome, token?: object, lazy?: boolean): unknown {
    if (this.endedWith_ !== undefined) return this.endedWith_;
    // Refused, not encoded as something else (an empty payload): nothing is replaced silently.
    if (!isLinkData(data)) return invalidMessageError(data);
    const seq = this.buffer_.nextSeq;
    const ack = this.ackableSeq_;
    let frame: Uint8Array;
    try {
      frame = encodeDataFrame(seq, ack, data, this.hooks_.pooled);
    } catch (error) {
      return error;
    }
    const maxFrameBytes = this.limits_.maxFrameBytes_;
    if (frame.length > maxFrameBytes) return new FrameTooLargeError(frame.length, maxFrameBytes);
    const payloadOffset = dataHeaderLength(seq, ack);
    const size = frame.length - payloadOffset;
    const refusal = this.buffer_.refusal(size);
    if (refusal) return refusal;
    if (lazy && this.lazyLink_ && this.buffer_.underHalf_(size)) frame[0]! += LAZY_DATA_FLAG;
    const message = outgoingMessage(seq, size, frame, payloadOffset, ack, settle, token);
    const admitted = this.buffer_.push(message);
    // Stored at once, admitted or not: an acknowledgement of the request this may answer can be
    // stored next, and must not survive a crash that this message does not.
    if (this.hooks_.persist) {
      const durable = this.durable_!;
      durable.persistBatch_ ??= [];
      durable.persistBatch_.push(message);
      this.flushPersist_();
    }
    if (admitted) this.admitted_();
    return undefined;
  }

  /**
   * A link is ready (handshake done): `peerLastReceived` is the peer's cumulative ack from the
   * handshake. Releases what it covers, writes `preamble`, and replays the rest, in order. Returns a
   * {@link ProtocolError} when the peer claims what cannot be (the caller ends the session). Set
   * `lazyLink_` for the link first.
   */
  connect(
    writer: FrameWriter,
    peerLastReceived: number,
    sink: DeliverySink,
    preamble?: Uint8Array,
  ): ProtocolError | undefined {
    const problem = this.checkAck_(peerLastReceived, true);
    if (problem) return problem;
    this.disconnect();
    this.applyAck_(peerLastReceived);
    this.writer_ = writer;
    this.sink_ = sink;
    // The handshake told the peer our `delivered`; nothing was delivered since (no link).
    this.toldPeer_ = this.ackableSeq_;
    this.writeCursor_ = this.buffer_.acked + 1;
    // The preamble (WELCOME, or the client's confirming ACK) is written only now: on a link that
    // delivers synchronously the peer answers inside this write, and must find us connected.
    if (preamble) writer(preamble);
    this.writePending_();
    return undefined;
  }

  /** A {@link ProtocolError} if the peer's handshake `lastReceived` cannot be right, for checking before answering. */
  checkResume(peerLastReceived: number): ProtocolError | undefined {
    return this.checkAck_(peerLastReceived, true);
  }

  /** The link is gone: stop writing; undelivered incoming messages are dropped (the peer replays them). */
  disconnect(): void {
    this.writer_ = undefined;
    this.sink_ = undefined;
    this.ackTimer_?.unsubscribe();
    this.ackTimer_ = undefined;
    this.queue_ = undefined;
    this.queueHead_ = 0;
    this.unreadBytes_ = 0;
    this.queuedEnd_ = this.deliveredSeq_;
    const durable = this.durable_;
    if (durable !== undefined) {
      durable.ownerCheck_++;
      durable.clearedSeq_ = durable.checkingSeq_ = this.deliveredSeq_;
    }
  }

  /**
   * Handles an incoming DATA frame (`lazy`: flagged "the ack may wait"); returns the protocol error
   * that must close the link, if any.
   */
  receiveData(
    seq: number,
    ack: number,
    data: string | Uint8Array,
    lazy?: boolean,
  ): ProtocolError | undefined {
    const problem = this.receiveAck(ack);
    if (problem) return problem;
    if (seq <= this.queuedEnd_) {
      this.duplicatesDropped_++;
      return undefined;
    }
    if (seq !== this.queuedEnd_ + 1) {
      return new ProtocolError(`sequence gap: expected ${this.queuedEnd_ + 1}, got ${seq}`);
    }
    const size = typeof data === 'string' ? data.length * 2 : data.byteLength;
    // With manual acknowledgement, delivered messages the application has not acknowledged are
    // still unread: the client keeps them in its window, and so do we (in the application's hands).
    const unread = this.hooks_.manualAck
      ? this.queuedEnd_ - this.durable_!.appAckedSeq_
      : (this.queue_?.length ?? 0) - this.queueHead_;
    const limits = this.limits_;
    if (unread >= limits.maxUnreadMessages_ || this.unreadBytes_ + size > limits.maxUnreadBytes_) {
      return new ProtocolError(
        `peer sent past the unread limit (${limits.maxUnreadMessages_} messages, ${limits.maxUnreadBytes_} bytes) without acknowledgement`,
      );
    }
    this.queuedEnd_ = seq;
    this.unreadBytes_ += size;
    this.queue_ ??= [];
    this.queue_.push({ seq, data });
    if (!lazy) {
      // The first unflagged message since the last ack told: a running timer is the longer one.
      if (this.urgent_ <= this.toldPeer_) {
        this.ackTimer_?.unsubscribe();
        this.ackTimer_ = undefined;
      }
      this.urgent_ = seq;
    }
    this.pump();
    return undefined;
  }

  /** Handles a cumulative ack from the peer; returns the protocol error that must close the link, if any. */
  receiveAck(ack: number): ProtocolError | undefined {
    if (ack <= this.buffer_.acked) return undefined;
    const problem = this.checkAck_(ack, false);
    if (problem) return problem;
    this.applyAck_(ack);
    return undefined;
  }

  /** Delivers what waited for a subscriber (call when the sink becomes ready). */
  pump(): void {
    if (this.pumping_) return;
    this.pumping_ = true;
    try {
      // Read again after each delivery: the application may disconnect (the queue is dropped) or
      // a frame may arrive (and make one) while it handles a message.
      for (
        let queue = this.queue_;
        queue !== undefined && !this.durable_?.frozen_ && this.queueHead_ < queue.length && this.sink_?.ready;
        queue = this.queue_
      ) {
        if (this.hooks_.confirmOwner && queue[this.queueHead_]!.seq > this.durable_!.clearedSeq_) {
          this.confirmOwner_();
          break;
        }
        const item = queue[this.queueHead_++]!;
        this.unreadBytes_ -= typeof item.data === 'string' ? item.data.length * 2 : item.data.byteLength;
        this.deliveredSeq_ = item.seq;
        this.sink_.deliver(item.data, item.seq);
      }
      if (this.queue_ !== undefined && this.queueHead_ === this.queue_.length) {
        this.queue_ = undefined;
        this.queueHead_ = 0;
      }
    } finally {
      this.pumping_ = false;
    }
    if (!this.hooks_.manualAck) this.advanceAckable_(this.deliveredSeq_);
  }

  /** @internal */ protected receivedSettled_(): void {
    const durable = this.durable_!;
    if (durable.persistingReceived_) return;
    const waiters = durable.receivedStoredWaiters_;
    durable.receivedStoredWaiters_ = undefined;
    for (const resolve of waiters ?? []) resolve();
  }

  /** Starts an ownership check covering everything queued, unless one is running (it re-pumps when done). */
  private confirmOwner_(): void {
    const durable = this.durable_!;
    if (durable.checkingSeq_ > durable.clearedSeq_) return;
    const target = this.queuedEnd_;
    const check = durable.ownerCheck_;
    durable.checkingSeq_ = target;
    this.hooks_.confirmOwner!(target).then(
      () => {
        if (this.endedWith_ !== undefined || check !== durable.ownerCheck_) return;
        if (target > durable.clearedSeq_) durable.clearedSeq_ = target;
        this.pump();
      },
      (error) => {
        if (check === durable.ownerCheck_) durable.checkingSeq_ = durable.clearedSeq_;
        this.hooks_.storeFailed?.(error);
      },
    );
  }

  /**
   * Ends the session: every message not acknowledged is taken out, in order, and rejected with the
   * error `errorFor` builds from their list. Later sends reject with that error too unless
   * {@link restart} starts a new session.
   */
  end(
    errorFor: (unacknowledged: readonly UnacknowledgedMessage[]) => unknown,
  ): readonly UnacknowledgedMessage[] {
    const lost = this.buffer_.drain();
    // Written to a link (or restored: an earlier process may have written it) may have arrived.
    const list = lost.map((message) => ({
      seq: message.seq,
      data: dataPayload(message),
      maybeDelivered: message.seq <= this.highestWritten_,
    }));
    const error = errorFor(list);
    const ended = error ?? new LinkClosedError(undefined, 'session ended');
    this.endedWith_ = ended;
    this.disconnect();
    const durable = this.durable_;
    if (durable !== undefined) durable.persistBatch_ = durable.receivedWaiting_ = undefined;
    for (const message of lost) message.settle?.(ended, message.token!);
    return list;
  }

  /** After {@link end}: a fresh session, numbering from 1 both ways. */
  restart(): void {
    this.buffer_.drain();
    this.endedWith_ = undefined;
    this.writeCursor_ = 1;
    this.highestWritten_ = 0;
    this.deliveredSeq_ = 0;
    this.ackableSeq_ = 0;
    this.toldPeer_ = this.urgent_ = 0;
    this.queuedEnd_ = 0;
    const durable = this.durable_;
    if (durable !== undefined) {
      durable.persistedEnd_ = durable.appAckedSeq_ = durable.receivedTarget_ = 0;
      durable.appAckedAbove_ = durable.receivedWaiting_ = undefined;
      durable.clearedSeq_ = durable.checkingSeq_ = 0;
    }
  }

  /**
   * Loads stored state (a server resuming a session from its store): the peer's ack, our
   * `received`, and the stored unacknowledged messages, which were all persisted (and may have been written).
   */
  restore(state: { peerAcked: number; received: number; messages: readonly OutgoingMessage[] }): void {
    this.buffer_.restore(state.peerAcked, state.messages);
    const durable = this.durableState_();
    durable.persistedEnd_ = this.buffer_.lastSeq;
    this.highestWritten_ = this.buffer_.lastSeq;
    this.writeCursor_ = state.peerAcked + 1;
    this.deliveredSeq_ = state.received;
    durable.appAckedSeq_ = state.received;
    durable.appAckedAbove_ = undefined;
    this.ackableSeq_ = state.received;
    durable.receivedTarget_ = state.received;
    this.queuedEnd_ = state.received;
    durable.clearedSeq_ = durable.checkingSeq_ = state.received;
  }

  private checkAck_(ack: number, handshake: boolean): ProtocolError | undefined {
    if (ack > this.highestWritten_) {
      return new ProtocolError(
        `the peer acknowledged ${ack} but only ${this.highestWritten_} message(s) were sent`,
      );
    }
    if (handshake && ack < this.buffer_.acked) {
      return new ProtocolError(`the peer reports ${ack} received after acknowledging ${this.buffer_.acked}`);
    }
    return undefined;
  }

  private applyAck_(ack: number): void {
    const before = this.buffer_.admittedEnd;
    if (this.buffer_.acknowledge(ack, settleAcknowledged) === 0) return;
    if (this.writeCursor_ <= ack) this.writeCursor_ = ack + 1;
    this.hooks_.peerAcked?.(ack);
    if (this.buffer_.admittedEnd > before) this.admitted_();
  }

  /** The window's end moved: what is admitted and stored may be written. */
  private admitted_(): void {
    this.writePending_();
  }

  private flushPersist_(): void {
    // Handing over: the next server continues from what is stored; sends from now on stay here
    // and reject when the session ends here (listed as unacknowledged), never half-appended.
    const durable = this.durable_!;
    const batch = durable.persistBatch_;
    if (durable.frozen_ || durable.persisting_ || batch === undefined || batch.length === 0) return;
    durable.persistBatch_ = undefined;
    durable.persisting_ = true;
    this.hooks_.persist!(batch).then(
      () => {
        durable.persisting_ = false;
        // An end() during the write emptied the buffer; the stored batch is the store's to drop.
        if (this.endedWith_ !== undefined) return;
        durable.persistedEnd_ = Math.max(durable.persistedEnd_, batch[batch.length - 1]!.seq);
        this.writePending_();
        this.flushPersist_();
        this.flushReceived();
      },
      (error) => {
        durable.persisting_ = false;
        this.hooks_.storeFailed?.(error);
      },
    );
  }

  private writePending_(): void {
    // A send made from inside a write (a wrapped link's own `send`, or anything it calls) comes
    // back here with the next seq: written at once, it would reach the link before the frame
    // being written, a sequence gap the peer closes the link for (1002). The running loop writes
    // it next instead, in order: its end is read again after every write.
    if (this.writing_) return;
    this.writing_ = true;
    try {
      for (;;) {
        // Without `persist` what is admitted counts as stored.
        const admitted = this.buffer_.admittedEnd;
        const end = this.hooks_.persist ? Math.min(admitted, this.durable_!.persistedEnd_) : admitted;
        if (!this.writer_ || this.writeCursor_ > end) break;
        const message = this.buffer_.get(this.writeCursor_++);
        if (!message) continue;
        this.framesWritten_++;
        if (message.seq > this.highestWritten_) this.highestWritten_ = message.seq;
        else this.replayed_++;
        // A frame keeps the ack it was encoded with; a stale one is harmless (acks are cumulative)
        // but only a current one saves a standalone ACK.
        if (message.ack > this.toldPeer_) this.toldPeer_ = message.ack;
        let frame = message.frame;
        // Flagged when sent, written on a link older than version 3 (a replay after a fallback):
        // plain DATA, in a copy (the frame may still be in the previous link's output).
        if (frame[0]! > ResumeFrameType.DataBinary && !this.lazyLink_) {
          frame = new Uint8Array(frame);
          frame[0]! -= LAZY_DATA_FLAG;
        }
        this.writer_(frame);
      }
    } finally {
      this.writing_ = false;
    }
    if (this.toldPeer_ >= this.ackableSeq_) {
      this.ackTimer_?.unsubscribe();
      this.ackTimer_ = undefined;
    }
  }

  /** @internal */ protected advanceAckable_(target: number): void {
    if (!this.hooks_.persistReceived) {
      this.ackableSeq_ = target;
      this.scheduleAck();
      return;
    }
    const durable = this.durable_!;
    if (target <= durable.receivedTarget_) return;
    durable.receivedTarget_ = target;
    // Whatever the application sent up to now may answer the messages up to `target`.
    const after = this.hooks_.persist ? this.buffer_.lastSeq : 0;
    durable.receivedWaiting_ ??= [];
    const waiting = durable.receivedWaiting_;
    const last = waiting[waiting.length - 1];
    if (last && last.after === after) last.received = target;
    else waiting.push({ received: target, after });
    this.flushReceived();
  }

  /**
   * Stores the highest waiting watermark whose answers are stored, one write at a time. Bounded:
   * entries have distinct `after`s, all above `persistedEnd` but the ones taken here, so at most
   * one per accepted send that is not stored yet.
   */
  private flushReceived(): void {
    const durable = this.durable_!;
    if (durable.persistingReceived_ || this.endedWith_ !== undefined) return;
    let ready = 0;
    let taken = 0;
    const waiting = durable.receivedWaiting_;
    if (waiting === undefined) return;
    while (taken < waiting.length && waiting[taken]!.after <= durable.persistedEnd_) {
      ready = waiting[taken++]!.received;
    }
    if (taken === 0) return;
    if (taken === waiting.length) durable.receivedWaiting_ = undefined;
    else waiting.splice(0, taken);
    durable.persistingReceived_ = true;
    this.hooks_.persistReceived!(ready).then(
      () => {
        durable.persistingReceived_ = false;
        if (ready > this.ackableSeq_) this.ackableSeq_ = ready;
        this.scheduleAck();
        this.flushReceived();
        this.receivedSettled_();
      },
      (error) => {
        durable.persistingReceived_ = false;
        this.receivedSettled_();
        this.hooks_.storeFailed?.(error);
      },
    );
  }

  private scheduleAck(): void {
    const owed = this.ackableSeq_ - this.toldPeer_;
    if (owed <= 0 || !this.writer_) return;
    const limits = this.limits_;
    if (owed >= limits.ackEvery_ || limits.ackDelayMs_ === 0) {
      this.flushAck();
      return;
    }
    // Owed only for messages flagged "the ack may wait": the longer delay (an unflagged one
    // arriving cancels it, see receiveData), at most the longest timer: one above it fires after
    // 1 ms (setTimeout).
    this.ackTimer_ ??= limits.scheduler_.schedule(
      () => {
        this.ackTimer_ = undefined;
        this.flushAck();
      },
      this.urgent_ > this.toldPeer_
        ? limits.ackDelayMs_
        : Math.min(limits.ackDelayMs_ * LAZY_ACK_DELAY_FACTOR, MAX_TIMER_MS),
    );
  }

  /** The messages sent and not acknowledged yet, in order (held, written or waiting for room). */
  unacknowledged(): OutgoingMessage[] {
    const messages: OutgoingMessage[] = [];
    for (let seq = this.buffer_.acked + 1; seq <= this.buffer_.lastSeq; seq++) {
      const message = this.buffer_.get(seq);
      if (message) messages.push(message);
    }
    return messages;
  }

  /** Sends a standalone ACK now if the peer is owed one. */
  flushAck(): void {
    this.ackTimer_?.unsubscribe();
    this.ackTimer_ = undefined;
    if (!this.writer_ || this.ackableSeq_ <= this.toldPeer_) return;
    this.toldPeer_ = this.ackableSeq_;
    this.writer_(encodeAck(this.ackableSeq_));
  }
}

/**
 * An {@link OutgoingMessage}: one literal, so every message has one shape whoever made it (a
 * send, a restore; a hidden class per variant would make the write path polymorphic). Fields, not
 * an {@link EncodedData}: a send makes no object but its message.
 */
export function outgoingMessage(
  seq: number,
  size: number,
  frame: Uint8Array,
  payloadOffset: number,
  ack: number,
  settle: SendOutcome | undefined,
  token: object | undefined,
): OutgoingMessage {
  return { seq, size, frame, payloadOffset, ack, settle, token };
}

/** A promise's resolving functions: the token of a message whose sender awaits it. */
export interface PromiseSettlers {
  resolve(): void;
  reject(error: unknown): void;
}

/** Settles the promise whose {@link PromiseSettlers} are `token`. @internal */
export function settlePromise(error: unknown, token: object): void {
  if (error === undefined) (token as PromiseSettlers).resolve();
  else (token as PromiseSettlers).reject(error);
}

/** A writer that ignores a link's write failures: the link reports them through its messages$. */
export function frameWriter(send: (frame: Uint8Array) => Promise<void>): FrameWriter {
  return (frame) => {
    send(frame).then(undefined, noop);
  };
}
