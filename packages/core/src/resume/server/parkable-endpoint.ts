import type { OutgoingMessage } from '../endpoint/session-endpoint.js';
import { type DurableState, SessionEndpoint } from '../endpoint/session-endpoint.js';

/**
 * @internal The server's {@link SessionEndpoint}: one that can be parked while its session is
 * detached, acknowledged by the application (`ack: 'manual'`) and frozen for a hand-over. Kept
 * apart from the endpoint so a client bundle, which does none of these, does not carry them.
 */
export class ParkableEndpoint extends SessionEndpoint implements DurableState {
  // The store's state (see DurableState) as fields of this object: a server session's hooks
  // always need it (every server has a store), and an object of its own would cost its header.
  persistedEnd_ = 0;
  persistBatch_: OutgoingMessage[] | undefined = undefined;
  persisting_ = false;
  appAckedSeq_ = 0;
  appAckedAbove_: Set<number> | undefined = undefined;
  receivedTarget_ = 0;
  persistingReceived_ = false;
  receivedWaiting_: { received: number; after: number }[] | undefined = undefined;
  receivedStoredWaiters_: (() => void)[] | undefined = undefined;
  clearedSeq_ = 0;
  checkingSeq_ = 0;
  ownerCheck_ = 0;
  frozen_ = false;

  /**
   * Called after every delivery run and every store write of the received watermark, while set:
   * a session closed by its client waits here until what arrived before the CLOSE is delivered,
   * stored and acknowledgeable (see {@link drained}).
   */
  onProgress_: (() => void) | undefined = undefined;

  /** @internal */ protected override durableState_(): DurableState {
    this.durable_ = this;
    return this;
  }

  /** The last sequence number the application acknowledged in order (manual acknowledgement). */
  get applicationAcked(): number {
    return this.hooks_.manualAck ? this.durable_!.appAckedSeq_ : this.deliveredSeq_;
  }

  /**
   * Manual acknowledgement: the application is done with message `seq` (`cumulative`: with every
   * delivered message up to it). The received watermark advances over the messages acknowledged
   * in order, is stored, then acknowledged to the peer. Returns false (and changes nothing) for a
   * `seq` that is not a delivered message (not an integer >= 1, or not delivered yet), after the
   * session ended, or outside manual mode; acknowledging one twice is harmless (true).
   */
  applicationAck(seq: number, cumulative: boolean): boolean {
    if (!this.hooks_.manualAck || !Number.isSafeInteger(seq) || seq < 1 || seq > this.deliveredSeq_)
      return false;
    // An ended session takes no acknowledgement: it changes nothing, so it is not reported as taken.
    if (this.endedWith_ !== undefined) return false;
    // Made with the endpoint: its hooks have `manualAck`.
    const durable = this.durable_!;
    if (seq <= durable.appAckedSeq_) return true;
    durable.appAckedAbove_ ??= new Set();
    const above = durable.appAckedAbove_;
    if (cumulative) {
      durable.appAckedSeq_ = seq;
      for (const acked of above) if (acked <= seq) above.delete(acked);
    } else {
      above.add(seq);
    }
    while (above.delete(durable.appAckedSeq_ + 1)) durable.appAckedSeq_++;
    this.advanceAckable_(durable.appAckedSeq_);
    return true;
  }

  override pump(): void {
    super.pump();
    this.onProgress_?.();
  }

  /** @internal */ protected override receivedSettled_(): void {
    super.receivedSettled_();
    this.onProgress_?.();
  }

  /**
   * Whether every received message was delivered (`reading`: a subscriber takes them; without
   * one they wait for nobody) and the received watermark of what was delivered (`manualAck`:
   * acknowledged by the application) is stored, so the ACK owed covers it; or delivery stopped
   * for a hand-over. What the application has not acknowledged (`manualAck`) is not waited for.
   */
  drained(reading: boolean): boolean {
    return (
      this.frozen_ ||
      ((!reading || (this.queue_?.length ?? 0) <= this.queueHead_) &&
        !this.persistingReceived_ &&
        this.receivedWaiting_ === undefined)
    );
  }

  /**
   * Stops delivering and storing, for a server that hands the session over to another: messages
   * that arrive from now on stay unacknowledged, for the peer to replay to the next server, and
   * messages sent from now on are not appended (they reject when the session ends here, the
   * store's writer free for the next server). Resolves once the
   * `received` of every delivered (`manualAck`: acknowledged) message is stored, or its write
   * failed, so the next server never delivers again what this one delivered.
   */
  freeze(): Promise<void> {
    const durable = this.durableState_();
    durable.frozen_ = true;
    if (!durable.persistingReceived_) return Promise.resolve();
    return new Promise<void>((resolve) => {
      durable.receivedStoredWaiters_ ??= [];
      durable.receivedStoredWaiters_.push(resolve);
    });
  }

  /**
   * @internal A disconnected endpoint with nothing in flight, as a {@link ParkedEndpoint}: the
   * watermarks and the unacknowledged messages (with whoever waits for them), for a server to hold
   * while the session is detached in place of this object (~0.6 KB less per detached session,
   * `pnpm bench server`). `undefined` while anything is under way (a link attached, a store write
   * pending, received messages waiting to be stored, out-of-order manual acks, a hand-over, the
   * end): such an endpoint stays as it is.
   */
  park(): ParkedEndpoint | undefined {
    const durable = this.durable_;
    if (
      this.writer_ !== undefined ||
      this.endedWith_ !== undefined ||
      (this.queue_?.length ?? 0) > this.queueHead_ ||
      (durable !== undefined &&
        (durable.frozen_ ||
          durable.persisting_ ||
          durable.persistingReceived_ ||
          (durable.persistBatch_?.length ?? 0) > 0 ||
          (durable.receivedWaiting_?.length ?? 0) > 0 ||
          (durable.receivedStoredWaiters_?.length ?? 0) > 0 ||
          (durable.appAckedAbove_ !== undefined && durable.appAckedAbove_.size > 0) ||
          (this.hooks_.persistReceived !== undefined && this.ackableSeq_ !== durable.receivedTarget_)))
    )
      return undefined;
    const messages = this.unacknowledged();
    return new ParkedEndpoint(
      messages.length > 0 ? messages : undefined,
      this.buffer_.acked,
      this.highestWritten_,
      this.deliveredSeq_,
      // Without manual acknowledgement (no state made for it), unused: the getter reads `delivered`.
      durable?.appAckedSeq_ ?? 0,
      this.ackableSeq_,
      this.duplicatesDropped_,
      this.framesWritten_,
      this.replayed_,
    );
  }

  /** @internal Takes the state {@link park} returned, on a new endpoint with the same options and hooks. */
  unpark(parked: ParkedEndpoint): void {
    this.buffer_.restore(parked.peerAcked, parked.messages ?? []);
    this.highestWritten_ = parked.highestWritten;
    this.writeCursor_ = parked.peerAcked + 1;
    this.deliveredSeq_ = parked.delivered;
    this.ackableSeq_ = parked.ackable;
    this.queuedEnd_ = parked.delivered;
    // Made with the endpoint when its hooks need it; without, none of it is read (an endpoint is
    // parked unfrozen).
    const durable = this.durable_;
    if (durable !== undefined) {
      // Parked only with every accepted message stored.
      durable.persistedEnd_ = this.buffer_.lastSeq;
      durable.appAckedSeq_ = parked.applicationAcked;
      durable.receivedTarget_ = parked.ackable;
      durable.clearedSeq_ = durable.checkingSeq_ = parked.delivered;
    }
    this.duplicatesDropped_ = parked.duplicatesDropped;
    this.framesWritten_ = parked.framesWritten;
    this.replayed_ = parked.replayed;
  }
}

/**
 * @internal What a disconnected, idle {@link SessionEndpoint} must keep (see
 * {@link SessionEndpoint.park}): one flat object, the messages in the list the buffer held.
 */
export class ParkedEndpoint {
  constructor(
    readonly messages: OutgoingMessage[] | undefined,
    readonly peerAcked: number,
    readonly highestWritten: number,
    readonly delivered: number,
    readonly applicationAcked: number,
    readonly ackable: number,
    readonly duplicatesDropped: number,
    readonly framesWritten: number,
    readonly replayed: number,
  ) {}
}
