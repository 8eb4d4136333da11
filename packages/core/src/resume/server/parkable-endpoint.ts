import type { OutgoingMessage } from '../endpoint/session-endpoint.js';
import { SessionEndpoint } from '../endpoint/session-endpoint.js';

/**
 * @internal The server's {@link SessionEndpoint}: one that can be parked while its session is
 * detached. Kept apart from the endpoint so a client bundle, which never parks, does not carry it.
 */
export class ParkableEndpoint extends SessionEndpoint {
  /**
   * @internal A disconnected endpoint with nothing in flight, as a {@link ParkedEndpoint}: the
   * watermarks and the unacknowledged messages (their promises with them), for a server to hold
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
