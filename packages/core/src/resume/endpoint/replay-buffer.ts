import { ReplayWindowFullError } from '../../engine/errors.js';
import { checkOptionTable } from '../../engine/options.js';

/** What `send()` does when the replay window is full. */
export type WindowFullPolicy = 'wait' | 'reject';

/** Limits of a session's replay window: the sent messages the peer has not acknowledged yet. */
export interface ReplayWindowOptions {
  /**
   * Messages sent and not yet acknowledged, at most: an integer ≥ 1.
   * @default 1_024
   */
  maxReplayMessages?: number;
  /**
   * Payload bytes sent and not yet acknowledged, at most (text counts its UTF-8 bytes): an
   * integer ≥ 1.
   * @default 8_388_608 (8 MiB)
   */
  maxReplayBytes?: number;
  /**
   * `'wait'`: a send that does not fit waits for acknowledgements to make room (backpressure: its
   * promise resolves later, in order). `'reject'`: it rejects at once with {@link ReplayWindowFullError}.
   * A message larger than `maxReplayBytes` is rejected in both modes.
   * @default 'wait'
   */
  onWindowFull?: WindowFullPolicy;
  /**
   * Sends that may wait for room in the window (policy `'wait'`), at most: one more rejects at
   * once with {@link ReplayWindowFullError} (`limit: 'messages'`), so a sender that does not await
   * its sends cannot grow memory without bound while the peer reads slowly or not at all. An
   * integer ≥ 0 (0: a send that does not fit the window is refused at once).
   * @default 1_024
   */
  maxWaitingMessages?: number;
  /**
   * Payload bytes of the sends waiting for room in the window, at most (see `maxWaitingMessages`;
   * `limit: 'bytes'`). An integer ≥ 0.
   * @default 8_388_608 (8 MiB)
   */
  maxWaitingBytes?: number;
}

/**
 * Checks {@link ReplayWindowOptions}: `maxReplayMessages` and `maxReplayBytes` integers ≥ 1,
 * `maxWaitingMessages` and `maxWaitingBytes` integers ≥ 0, `onWindowFull` a policy.
 * @throws {InvalidOptionError} naming the first bad option
 */
export function checkReplayWindowOptions(options: ReplayWindowOptions | undefined): void {
  checkOptionTable(
    'options',
    options,
    'maxReplayMessages i 1,maxReplayBytes i 1,maxWaitingMessages i,maxWaitingBytes i,onWindowFull e wait reject',
    false,
    '',
  );
}

export const DEFAULT_MAX_REPLAY_MESSAGES = 1_024;
export const DEFAULT_MAX_REPLAY_BYTES = 8 * 1024 * 1024;
export const DEFAULT_WINDOW_FULL_POLICY: WindowFullPolicy = 'wait';
export const DEFAULT_MAX_WAITING_MESSAGES = 1_024;
export const DEFAULT_MAX_WAITING_BYTES = 8 * 1024 * 1024;

/** A replay window's limits as read from its options. */
interface WindowLimits {
  readonly maxMessages_: number;
  readonly maxBytes_: number;
  readonly policy_: WindowFullPolicy;
  readonly maxWaitingMessages_: number;
  readonly maxWaitingBytes_: number;
  /** The endpoint's own limits from the same options, made by the first endpoint (same sharing). */
  endpoint_?: object;
}

// One limits object per options object, shared by every buffer made with it: a client makes one
// session per connection from the same options (~0.04 KB per idle connection as fields of each).
const windowLimitsOf = new WeakMap<ReplayWindowOptions, WindowLimits>();

/** The entries of a buffer that holds none: never pushed to (see `push`). */
const NO_ENTRIES: never[] = [];

/** What the buffer needs to know of an entry. */
export interface ReplayItem {
  readonly seq: number;
  /** Payload bytes, for the byte limit. */
  readonly size: number;
}

/**
 * The ordered outgoing messages of one direction of a session, from the first unacknowledged one
 * to the last one sent. The first `maxReplayMessages` / `maxReplayBytes` of them are *admitted*
 * (the window: written to the link, replayed after a reconnect); the rest wait for room.
 *
 * @example
 * ```ts
 * const buffer = new ReplayBuffer<Entry>({ maxReplayMessages: 2 });
 * buffer.push({ seq: buffer.nextSeq, size: 3 }); // admitted
 * buffer.acknowledge(1, (entry) => resolve(entry)); // released, now safe to resolve
 * ```
 * @see docs/protocol.md
 */
export class ReplayBuffer<E extends ReplayItem> {
  /** @internal Shared by every buffer made with the same options object (read on its first use). */
  readonly limits_: WindowLimits;
  // The shared empty array until the first push, and again once emptied: an idle session holds
  // no array of its own (~0.03 KB).
  private entries: E[] = NO_ENTRIES;
  private head = 0;
  private ackedSeq = 0;
  private lastAssigned = 0;
  private windowEnd = 0;
  private windowCount = 0;
  private windowBytes = 0;
  private waitingBytes = 0;
  /** The last entry {@link restore} loaded: those up to it may have been stored under larger limits. */
  private restoredEnd = 0;

  /**
   * @param options read on the first use of this options object, and shared from then on by every
   *   buffer made with it (a later change to the object is not seen).
   * @throws {InvalidOptionError} naming the first bad option
   */
  constructor(options: ReplayWindowOptions = {}) {
    let limits = windowLimitsOf.get(options);
    if (!limits) {
      checkReplayWindowOptions(options);
      limits = {
        maxMessages_: options.maxReplayMessages ?? DEFAULT_MAX_REPLAY_MESSAGES,
        maxBytes_: options.maxReplayBytes ?? DEFAULT_MAX_REPLAY_BYTES,
        policy_: options.onWindowFull ?? DEFAULT_WINDOW_FULL_POLICY,
        maxWaitingMessages_: options.maxWaitingMessages ?? DEFAULT_MAX_WAITING_MESSAGES,
        maxWaitingBytes_: options.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES,
      };
      windowLimitsOf.set(options, limits);
    }
    this.limits_ = limits;
  }

  /** The sequence number the next pushed entry must have. */
  get nextSeq(): number {
    return this.lastAssigned + 1;
  }
  /** The highest sequence number assigned. */
  get lastSeq(): number {
    return this.lastAssigned;
  }
  /** The peer's cumulative acknowledgement. */
  get acked(): number {
    return this.ackedSeq;
  }
  /** The highest admitted sequence number: entries up to it may be written. */
  get admittedEnd(): number {
    return this.windowEnd;
  }
  /** Entries not yet acknowledged (admitted or waiting). */
  get size(): number {
    return this.entries.length - this.head;
  }
  /** Entries waiting for room in the window, and their payload bytes. */
  get waiting(): { readonly messages: number; readonly bytes: number } {
    return { messages: this.lastAssigned - this.windowEnd, bytes: this.waitingBytes };
  }
  /** Admitted entries and their payload bytes. */
  get window(): { readonly messages: number; readonly bytes: number } {
    return { messages: this.windowCount, bytes: this.windowBytes };
  }

  /**
   * Whether the window with one more entry of `size` bytes stays under half its limits, in
   * messages and in bytes (an entry that would wait for room never does).
   */
  underHalf_(size: number): boolean {
    const limits = this.limits_;
    return (
      (this.windowCount + 1) * 2 < limits.maxMessages_ && (this.windowBytes + size) * 2 < limits.maxBytes_
    );
  }

  /**
   * Why an entry of `size` bytes cannot be accepted now, if it cannot: always when it is larger
   * than the byte limit; under policy `reject`, also when the window has no room for it; under
   * policy `wait`, when it would wait and the waiting sends are at their limit.
   */
  refusal(size: number): ReplayWindowFullError | undefined {
    const limits = this.limits_;
    if (size > limits.maxBytes_) {
      return new ReplayWindowFullError(
        'bytes',
        `a message of ${size} bytes never fits a replay window of ${limits.maxBytes_} bytes`,
      );
    }
    if (limits.policy_ === 'reject' && !this.fits(size)) {
      return this.windowCount >= limits.maxMessages_
        ? new ReplayWindowFullError(
            'messages',
            `replay window full (${limits.maxMessages_} unacknowledged messages)`,
          )
        : new ReplayWindowFullError('bytes', `replay window full (${limits.maxBytes_} unacknowledged bytes)`);
    }
    const wouldWait = this.windowEnd !== this.lastAssigned || !this.fits(size);
    // Restored messages still waiting (a session stored under larger limits): they are part of
    // why, and the refusal lasts only until the peer acknowledged enough of them.
    const why = this.windowEnd < this.restoredEnd ? ': a restored backlog waits' : '';
    if (wouldWait && this.lastAssigned - this.windowEnd >= limits.maxWaitingMessages_) {
      return new ReplayWindowFullError(
        'messages',
        `${limits.maxWaitingMessages_} sends already wait for room in the replay window${why}`,
      );
    }
    if (wouldWait && this.waitingBytes + size > limits.maxWaitingBytes_) {
      return new ReplayWindowFullError(
        'bytes',
        `the sends waiting for room in the replay window would pass ${limits.maxWaitingBytes_} bytes${why}`,
      );
    }
    return undefined;
  }

  /** Appends an entry with seq {@link nextSeq}; returns whether it was admitted at once. */
  push(entry: E): boolean {
    if (entry.seq !== this.lastAssigned + 1)
      throw new RangeError(`expected seq ${this.lastAssigned + 1}, got ${entry.seq}`);
    if (this.entries === NO_ENTRIES) this.entries = [];
    this.entries.push(entry);
    this.lastAssigned = entry.seq;
    if (this.windowEnd === entry.seq - 1 && this.fits(entry.size)) {
      this.admit(entry);
      return true;
    }
    this.waitingBytes += entry.size;
    return false;
  }

  /** The entry with sequence number `seq`, if it is still held. */
  get(seq: number): E | undefined {
    return seq > this.ackedSeq ? this.entries[this.head + (seq - this.ackedSeq - 1)] : undefined;
  }

  /**
   * Applies a cumulative acknowledgement (at most {@link admittedEnd}, the caller checks, but
   * after {@link restore} up to {@link lastSeq}: a process before this one may have written
   * entries that are waiting here); waiting entries that now fit are admitted. Then calls
   * `each` with every released entry, in order, once the buffer is in its new state (so `each`
   * may push). No list is made: a session at 5,000 connections releases one entry per ack frame.
   * @returns how many entries were released
   */
  acknowledge(ack: number, each?: (entry: E) => void): number {
    if (ack <= this.ackedSeq) return 0;
    const count = ack - this.ackedSeq;
    // The released entries stay at [from, from + count) of this array whatever happens to
    // `this.entries` below (emptied or compacted into a new array, or pushed to by `each`).
    const entries = this.entries;
    const from = this.head;
    this.head += count;
    this.ackedSeq = ack;
    for (let i = from; i < from + count; i++) {
      const entry = entries[i]!;
      if (entry.seq <= this.windowEnd) {
        this.windowCount--;
        this.windowBytes -= entry.size;
      } else this.waitingBytes -= entry.size;
    }
    if (this.windowEnd < ack) this.windowEnd = ack;
    if (this.head === this.entries.length) {
      this.entries = NO_ENTRIES;
      this.head = 0;
    } else if (this.head > 1_024 && this.head * 2 > this.entries.length) {
      // Reclaim the acknowledged prefix in bulk, so each acknowledgement is O(1) amortised.
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    for (
      let next = this.get(this.windowEnd + 1);
      next && this.fits(next.size);
      next = this.get(this.windowEnd + 1)
    ) {
      this.waitingBytes -= next.size;
      this.admit(next);
    }
    // Each released slot is cleared as it is handed over: until the array is compacted, the
    // acknowledged prefix would keep its messages (frames, slabs, the senders' tokens) reachable.
    for (let i = from; i < from + count; i++) {
      const entry = entries[i]!;
      entries[i] = undefined as never;
      each?.(entry);
    }
    return count;
  }

  /** Every entry still held, in order, and an empty buffer that continues the numbering from 0. */
  drain(): E[] {
    const rest = this.entries.slice(this.head);
    this.entries = NO_ENTRIES;
    this.head = 0;
    this.ackedSeq = 0;
    this.lastAssigned = 0;
    this.windowEnd = 0;
    this.windowCount = 0;
    this.windowBytes = 0;
    this.waitingBytes = 0;
    this.restoredEnd = 0;
    return rest;
  }

  /** Reloads a buffer from stored state: `acked` is the peer's ack, `entries` the ones after it. */
  restore(acked: number, entries: readonly E[]): void {
    this.drain();
    this.ackedSeq = acked;
    this.lastAssigned = acked;
    this.windowEnd = acked;
    this.entries = entries.slice();
    for (const entry of entries) {
      this.lastAssigned = entry.seq;
      // Entries were stored when sent, admitted or waiting: what fits is admitted again, the rest
      // waits, so a resume never writes more than a window at once. One written by the process
      // before and acknowledged in the handshake is released from the waiting part (acknowledge).
      if (this.windowEnd === entry.seq - 1 && this.fits(entry.size)) this.admit(entry);
      else this.waitingBytes += entry.size;
    }
    // Nothing stored is dropped, whatever this session's limits: what is over them waits, and
    // only new sends are refused meanwhile (see `refusal`), never for longer than it waits.
    this.restoredEnd = this.lastAssigned;
  }

  private fits(size: number): boolean {
    // An empty window admits anything that passes refusal(), so one large message cannot wedge it.
    if (this.windowCount === 0) return true;
    const limits = this.limits_;
    return this.windowCount < limits.maxMessages_ && this.windowBytes + size <= limits.maxBytes_;
  }

  private admit(entry: E): void {
    this.windowEnd = entry.seq;
    this.windowCount++;
    this.windowBytes += entry.size;
  }
}
