import { QueueOverflowError } from './errors.js';
import { byteSizeOf } from './link.js';

/** What happens when a send would overflow the queue of messages waiting for a link. */
export type OverflowPolicy = 'reject' | 'drop-oldest';

/** Limits of the queue in which sends wait while the connection is recovering. */
export interface QueueOptions {
  /**
   * Messages that may wait while no link is open (sends that were in flight when the link broke count too).
   * @default 1_024
   */
  maxMessages?: number;
  /**
   * Bytes that may wait (strings count 2 bytes per UTF-16 code unit).
   * @default 8_388_608 (8 MiB)
   */
  maxBytes?: number;
  /**
   * `'reject'`: the new send rejects with a {@link QueueOverflowError}.
   * `'drop-oldest'`: the oldest waiting messages are dropped to make room; each dropped send
   * rejects with a {@link QueueOverflowError} and is reported as a `dropped` event.
   * @default 'reject'
   */
  overflow?: OverflowPolicy;
}

export const DEFAULT_QUEUE_MAX_MESSAGES = 1_024;
export const DEFAULT_QUEUE_MAX_BYTES = 8 * 1024 * 1024;

/** One send: settled once, when written on a link (or when it fails for good). */
export interface OutgoingEntry<Out> {
  readonly data: Out;
  readonly size: number;
  /** The link generation it was last written on; -1 while it waits for a link. */
  generation: number;
  settled: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The ordered outbox: every send not yet confirmed written, in send order. A send that was written
 * on a link that then broke goes back to waiting (generation -1) and is written again, in its
 * original place, on the next link.
 */
export class OutgoingQueue<Out> {
  private entries: OutgoingEntry<Out>[] = [];
  private head = 0;
  private pendingCount = 0;
  private pendingBytes = 0;
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;

  constructor(options: QueueOptions = {}) {
    this.maxMessages = options.maxMessages ?? DEFAULT_QUEUE_MAX_MESSAGES;
    this.maxBytes = options.maxBytes ?? DEFAULT_QUEUE_MAX_BYTES;
    this.overflow = options.overflow ?? 'reject';
  }

  get size(): number {
    return this.pendingCount;
  }
  get bytes(): number {
    return this.pendingBytes;
  }

  /**
   * Adds a send. When `bounded` (no link is open) the limits apply: the new entry is refused
   * (returns the error) or the oldest waiting entries are dropped (passed to `onDrop`).
   */
  enqueue(
    data: Out,
    resolve: () => void,
    reject: (error: unknown) => void,
    bounded: boolean,
    onDrop: (entry: OutgoingEntry<Out>, error: QueueOverflowError) => void,
  ): OutgoingEntry<Out> | QueueOverflowError {
    const size = byteSizeOf(data);
    if (bounded) {
      const overflow = this.overflowFor(size);
      if (overflow) {
        if (this.overflow === 'reject' || size > this.maxBytes) return overflow;
        for (let over: QueueOverflowError | undefined = overflow; over; over = this.overflowFor(size)) {
          const oldest = this.oldestWaiting();
          // Nothing left to drop (maxMessages below 1): the new send is the one that cannot fit.
          if (!oldest) return over;
          const error = new QueueOverflowError(
            over.limit,
            'dropped from the outgoing queue to make room (drop-oldest)',
          );
          this.settle(oldest);
          oldest.reject(error);
          onDrop(oldest, error);
        }
      }
    }
    const entry: OutgoingEntry<Out> = { data, size, generation: -1, settled: false, resolve, reject };
    this.entries.push(entry);
    this.pendingCount++;
    this.pendingBytes += size;
    return entry;
  }

  /** Marks an entry done and releases its budget. Idempotent. */
  settle(entry: OutgoingEntry<Out>): void {
    if (entry.settled) return;
    entry.settled = true;
    this.pendingCount--;
    this.pendingBytes -= entry.size;
    this.compact();
  }

  /** Entries waiting for a link, in order. */
  *waiting(): Generator<OutgoingEntry<Out>> {
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (!entry.settled && entry.generation === -1) yield entry;
    }
  }

  /** Unsettled entries last written on link `generation`, in order (a snapshot: settle them freely). */
  writtenOn(generation: number): OutgoingEntry<Out>[] {
    const found: OutgoingEntry<Out>[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (!entry.settled && entry.generation === generation) found.push(entry);
    }
    return found;
  }

  /** The link broke: everything not confirmed goes back to waiting, in order. */
  requeueAll(): void {
    for (let i = this.head; i < this.entries.length; i++) this.entries[i]!.generation = -1;
  }

  /**
   * Removes and returns every unsettled entry (to reject them all), except those written on
   * `keepGeneration`, which are left for that link's confirmation to settle.
   */
  drain(keepGeneration?: number): OutgoingEntry<Out>[] {
    const rest: OutgoingEntry<Out>[] = [];
    const kept: OutgoingEntry<Out>[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (entry.settled) continue;
      if (keepGeneration !== undefined && entry.generation === keepGeneration) kept.push(entry);
      else rest.push(entry);
    }
    // Kept entries stay counted: their confirmation settles them later through `settle`, which
    // must find them here, or the counts would go negative.
    this.entries = kept;
    this.head = 0;
    this.pendingCount = kept.length;
    this.pendingBytes = 0;
    for (const entry of kept) this.pendingBytes += entry.size;
    for (const entry of rest) entry.settled = true;
    return rest;
  }

  private overflowFor(size: number): QueueOverflowError | undefined {
    if (this.pendingCount + 1 > this.maxMessages) {
      return new QueueOverflowError('messages', `outgoing queue is full (${this.maxMessages} messages)`);
    }
    if (this.pendingBytes + size > this.maxBytes) {
      return new QueueOverflowError('bytes', `outgoing queue is full (${this.maxBytes} bytes)`);
    }
    return undefined;
  }

  /**
   * The oldest entry still waiting for a link. Entries written on a link (generation set) are not
   * candidates: a replaying link's session still owns and will deliver them, so dropping one would
   * tell the caller a message was lost that then arrives.
   */
  private oldestWaiting(): OutgoingEntry<Out> | undefined {
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (!entry.settled && entry.generation === -1) return entry;
    }
    return undefined;
  }

  private compact(): void {
    while (this.head < this.entries.length && this.entries[this.head]!.settled) this.head++;
    // Reclaim the settled prefix in bulk, so settling is O(1) amortised.
    if (this.head === this.entries.length) {
      this.entries.length = 0;
      this.head = 0;
    } else if (this.head > 1_024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
