import type { OutgoingMessage } from '../endpoint/session-endpoint.js';
import { SessionEndpoint } from '../endpoint/session-endpoint.js';

/**
 * @internal The server's {@link SessionEndpoint}: one that can be parked while its session is
 * detached, acknowledged by the application (`ack: 'manual'`) and frozen for a hand-over. Kept
 * apart from the endpoint so a client bundle, which does none of these, does not carry them.
 */
export class ParkableEndpoint extends SessionEndpoint {
  /** The last sequence number the application acknowledged in order (manual acknowledgement). */
  get applicationAcked(): number {
    return this.hooks.manualAck ? this.appAckedSeq : this.deliveredSeq;
  }

  /**
   * Manual acknowledgement: the application is done with message `seq` (`cumulative`: with every
   * delivered message up to it). The received watermark advances over the messages acknowledged
   * in order, is stored, then acknowledged to the peer. Returns false (and changes nothing) for a
   * `seq` that is not a delivered message (not an integer >= 1, or not delivered yet), after the
   * session ended, or outside manual mode; acknowledging one twice is harmless (true).
   */
  applicationAck(seq: number, cumulative: boolean): boolean {
    if (!this.hooks.manualAck || !Number.isSafeInteger(seq) || seq < 1 || seq > this.deliveredSeq)
      return false;
    // An ended session takes no acknowledgement: it changes nothing, so it is not reported as taken.
    if (this.endedWith !== undefined) return false;
    if (seq <= this.appAckedSeq) return true;
    this.appAckedAbove ??= new Set();
    const above = this.appAckedAbove;
    if (cumulative) {
      this.appAckedSeq = seq;
      for (const acked of above) if (acked <= seq) above.delete(acked);
    } else {
      above.add(seq);
    }
    while (above.delete(this.appAckedSeq + 1)) this.appAckedSeq++;
    this.advanceAckable(this.appAckedSeq);
    return true;
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
    this.frozen = true;
    if (!this.persistingReceived) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.receivedStoredWaiters ??= [];
      this.receivedStoredWaiters.push(resolve);
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
    if (
      this.writer !== undefined ||
      this.endedWith !== undefined ||
      this.frozen ||
      this.persisting ||
      this.persistingReceived ||
      (this.persistBatch?.length ?? 0) > 0 ||
      (this.receivedWaiting?.length ?? 0) > 0 ||
      (this.receivedStoredWaiters?.length ?? 0) > 0 ||
      (this.appAckedAbove !== undefined && this.appAckedAbove.size > 0) ||
      (this.queue?.length ?? 0) > this.queueHead ||
      (this.hooks.persistReceived !== undefined && this.ackableSeq !== this.receivedTarget)
    )
      return undefined;
    const messages = this.unacknowledged();
    return new ParkedEndpoint(
      messages.length > 0 ? messages : undefined,
      this.buffer.acked,
      this.highestWritten,
      this.deliveredSeq,
      this.appAckedSeq,
      this.ackableSeq,
      this.duplicatesDropped,
      this.framesWritten,
      this.replayed,
    );
  }

  /** @internal Takes the state {@link park} returned, on a new endpoint with the same options and hooks. */
  unpark(parked: ParkedEndpoint): void {
    this.buffer.restore(parked.peerAcked, parked.messages ?? []);
    // Parked only with every accepted message stored (or, without a store, as if it were).
    this.persistedEnd = this.hooks.persist ? this.buffer.lastSeq : this.buffer.admittedEnd;
    this.highestWritten = parked.highestWritten;
    this.writeCursor = parked.peerAcked + 1;
    this.deliveredSeq = parked.delivered;
    this.appAckedSeq = parked.applicationAcked;
    this.ackableSeq = parked.ackable;
    this.receivedTarget = parked.ackable;
    this.queuedEnd = parked.delivered;
    this.clearedSeq = this.checkingSeq = parked.delivered;
    this.duplicatesDropped = parked.duplicatesDropped;
    this.framesWritten = parked.framesWritten;
    this.replayed = parked.replayed;
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
