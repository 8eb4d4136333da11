import { QueueOverflowError } from './errors.js';
import { byteSizeOf } from './link.js';

/** What happens when a send would overflow the outgoing queue. */
export type OverflowPolicy = 'reject' | 'drop-oldest';

/**
 * Limits of the outgoing queue: every send not yet confirmed, whether it waits for a link (while
 * connecting or recovering) or was written and awaits its confirmation (the write callback, or
 * the resume protocol's ack). Bytes are the primary limit: each message counts its payload plus
 * {@link QUEUE_ENTRY_OVERHEAD_BYTES} of bookkeeping, so many small messages are bounded by
 * memory too.
 */
export interface QueueOptions {
  /**
   * Messages that may be pending at once. A backstop: `maxBytes` bounds the count too
   * (`maxBytes / QUEUE_ENTRY_OVERHEAD_BYTES` = 32,768 messages at the defaults). An integer ≥ 0
   * (0 refuses every send), or Infinity (no limit but `maxBytes`).
   * @default Infinity
   */
  maxMessages?: number;
  /**
   * Bytes that may be pending: payloads (binary data by byte length, strings at 2 bytes per
   * UTF-16 code unit) plus {@link QUEUE_ENTRY_OVERHEAD_BYTES} per message. The default holds a
   * 500 msg/s stream of 64-byte messages through about 55 s of outage (29,127 binary or 26,214
   * string messages); the memory it stands for is about this many bytes. An integer ≥ 0.
   * @default 16_777_216 (16 MiB)
   */
  maxBytes?: number;
  /**
   * `'reject'`: the new send is refused with a {@link QueueOverflowError} (a rejection; a throw
   * from `HAWebSocket.send`).
   * `'drop-oldest'`: the oldest messages still waiting for a link are dropped to make room; each
   * dropped send rejects with a {@link QueueOverflowError} and is reported as a `dropped` event.
   * Messages already written (awaiting confirmation) are never dropped.
   * @default 'reject'
   */
  overflow?: OverflowPolicy;
}

// `Infinity` and a literal (16 MiB): esbuild keeps `Number.POSITIVE_INFINITY` and `16 * 1024 * 1024` as
// written, and the browser bundle gate counts every byte.
export const DEFAULT_QUEUE_MAX_MESSAGES = Infinity;
export const DEFAULT_QUEUE_MAX_BYTES = 16_777_216;
/**
 * What one pending message costs beside its payload (its entry, its promise and their
 * functions, the private copy of binary data), counted against {@link QueueOptions.maxBytes}.
 * Measured on V8 (Node 20) with the caller's own promise: 520 bytes per pending 64-character
 * string and 740 per pending 64-byte Uint8Array, payload included.
 */
export const QUEUE_ENTRY_OVERHEAD_BYTES = 512;

/** One send: settled once, when written on a link (or when it fails for good). */
export interface OutgoingEntry<Out> {
  readonly data: Out;
  readonly size: number;
  /** The link generation it was last written on; -1 while it waits for a link. */
  generation: number;
  /** It was written on a link at least once (the peer may have it): it can no longer be withdrawn. */
  written_: boolean;
  settled: boolean;
  resolve(): void;
  reject(error: unknown): void;
  /** Called once when the entry settles (removes an abort listener). */
  release?: (() => void) | undefined;
  /**
   * Its bytes of application data as {@link OutgoingQueue.dataBytes_} counted them (text as
   * UTF-8), 0 until counted: measured when first read, not when sent.
   */
  counted_: number;
}

/**
 * The ordered outbox: every send not yet confirmed written, in send order. A send that was written
 * on a link that then broke goes back to waiting (generation -1) and is written again, in its
 * original place, on the next link.
 */
/**
 * Who is told of each entry `'drop-oldest'` dropped, as a method (`attach`'s connection: no
 * closure per connection). Not marked internal: {@link OutgoingQueue.enqueue}'s declaration names
 * it, and a stripped type there breaks every consumer's type check of the published `.d.ts`.
 */
export interface DropListener<Out> {
  queueDropped_(entry: OutgoingEntry<Out>, error: QueueOverflowError): void;
}

export class OutgoingQueue<Out> {
  private entries: OutgoingEntry<Out>[] = [];
  private head = 0;
  private count_ = 0;
  private bytes_ = 0;
  /** {@link dataBytes_}: the sum of the unsettled entries' `counted_`, and the index measured up to. */
  private counted_ = 0;
  private measured_ = 0;
  /**
   * Every entry before this index is settled or written, so the search for one waiting starts
   * here ({@link firstWaiting_}): kept across calls, moved with the list when it is compacted,
   * and reset when entries go back to waiting (requeueAll_).
   */
  private next_ = 0;
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly overflow: OverflowPolicy;

  constructor(options: QueueOptions = {}) {
    this.maxMessages = options.maxMessages ?? DEFAULT_QUEUE_MAX_MESSAGES;
    this.maxBytes = options.maxBytes ?? DEFAULT_QUEUE_MAX_BYTES;
    this.overflow = options.overflow ?? 'reject';
  }

  get size(): number {
    return this.count_;
  }
  get bytes(): number {
    return this.bytes_;
  }

  /**
   * Adds a send, within the limits: when it does not fit, the new entry is refused (returns the
   * error) or the oldest waiting entries are dropped (passed to `onDrop`). Binary data is copied
   * (as `WebSocket.send` does): the caller may reuse its buffer at once, and what is written,
   * now or again after a recovery, is what was passed. `copy: false` skips the copy for a send
   * written at once on a link that takes its own (a replaying link encodes it into its frame and
   * replays that frame itself; the engine never writes the entry again).
   */
  enqueue(
    data: Out,
    resolve: () => void,
    reject: (error: unknown) => void,
    onDrop: DropListener<Out>,
    copy = true,
  ): OutgoingEntry<Out> | QueueOverflowError {
    const size = byteSizeOf(data);
    const overflow = this.overflowFor_(size);
    // Victims are told only once the new entry is in: a `dropped` listener that sends again must
    // find the room taken, not refill it while room is being made (which would never end).
    let dropped: [OutgoingEntry<Out>, QueueOverflowError][] | undefined;
    if (overflow) {
      // A send made by a `dropped` listener would evict another message whose listener sends
      // again, without end: while drops are being reported, a full queue refuses instead.
      if (
        this.overflow === 'reject' ||
        this.reportingDrops_ ||
        size + QUEUE_ENTRY_OVERHEAD_BYTES > this.maxBytes
      ) {
        return overflow;
      }
      for (let over: QueueOverflowError | undefined = overflow; over; over = this.overflowFor_(size)) {
        // The oldest entry still waiting for a link. Entries written on a link (generation set)
        // are not candidates: a replaying link's session still owns and will deliver them, so
        // dropping one would tell the caller a message was lost that then arrives.
        const oldest = this.firstWaiting_();
        // Nothing left to drop (all written, or maxMessages below 1): the new send cannot fit.
        // The ones already dropped stay dropped (they made room) and are reported.
        if (!oldest) {
          if (dropped) this.reportDrops_(dropped, onDrop);
          return over;
        }
        const error = new QueueOverflowError(
          over.limit,
          'dropped from the outgoing queue to make room (drop-oldest)',
        );
        this.settle(oldest);
        dropped ??= [];
        dropped.push([oldest, error]);
      }
    }
    if (copy) data = copyBytes(data);
    // Every field set here, `release` too, so that writing and settling an entry does not change
    // its shape (a hidden-class transition per send, and entries of two shapes in the queue).
    const entry: OutgoingEntry<Out> = {
      data,
      size,
      generation: -1,
      written_: false,
      settled: false,
      resolve,
      reject,
      release: undefined,
      counted_: 0,
    };
    this.entries.push(entry);
    this.count_++;
    this.bytes_ += size;
    if (dropped) this.reportDrops_(dropped, onDrop);
    return entry;
  }

  private reportingDrops_ = false;

  private reportDrops_(
    dropped: readonly [OutgoingEntry<Out>, QueueOverflowError][],
    onDrop: DropListener<Out>,
  ): void {
    const outer = this.reportingDrops_;
    this.reportingDrops_ = true;
    try {
      for (const [entry, error] of dropped) {
        entry.reject(error);
        onDrop.queueDropped_(entry, error);
      }
    } finally {
      this.reportingDrops_ = outer;
    }
  }

  /**
   * Bytes of application data in the unsettled entries, each counted once: binary data by its
   * byte length, text by its UTF-8 length (the bytes a WebSocket sends), without framing. Entries
   * are measured here, each once, from the first not yet measured on: a read costs what was sent
   * since the last one (text is scanned then, not on every send), and a send nobody reads the
   * count of costs nothing.
   */
  dataBytes_(): number {
    while (this.measured_ < this.entries.length) {
      const entry = this.entries[this.measured_++];
      // An entry counted already (the list was cut or rebuilt since: see compact) counts once; a
      // settled one before `head` is a cleared slot (see compact).
      if (entry?.settled === false && !entry.counted_) {
        // Text as a WebSocket sends it, in UTF-8 (a lone surrogate as U+FFFD, 3 bytes).
        this.counted_ += entry.counted_ =
          typeof entry.data === 'string' ? new TextEncoder().encode(entry.data).length : entry.size;
      }
    }
    return this.counted_;
  }

  /** Marks an entry done and releases its budget. Idempotent. */
  settle(entry: OutgoingEntry<Out>): void {
    if (entry.settled) return;
    entry.settled = true;
    this.count_--;
    this.bytes_ -= entry.size;
    this.counted_ -= entry.counted_;
    if (entry.release !== undefined) entry.release();
    this.compact_();
  }

  /**
   * Takes back an entry that still waits for a link (never written, or requeued after its link
   * broke). Returns false when it was written and awaits confirmation: it can no longer be
   * withdrawn, since the peer may already have it.
   */
  withdraw(entry: OutgoingEntry<Out>): boolean {
    // (Written at least once covers written now: a generation is only ever set with `written_`.)
    if (entry.settled || entry.written_) return false;
    this.settle(entry);
    return true;
  }

  /** Settles and returns every entry never written yet (a snapshot, in order). */
  withdrawWaiting(): OutgoingEntry<Out>[] {
    // (Never written means waiting; the settled prefix before `head` is cleared slots.)
    const found = this.entries.filter((entry) => entry?.settled === false && !entry.written_);
    for (const entry of found) this.settle(entry);
    return found;
  }

  /**
   * The oldest entry waiting for a link (never written, or requeued), if any. Amortised O(1):
   * the search resumes where the last one stopped, since an entry that stopped waiting (written,
   * held, settled) never waits again but through requeueAll_. Called afresh for each entry rather
   * than iterated over the list, so a list compacted meanwhile (an entry settled from inside a
   * write) skips none.
   */
  firstWaiting_(): OutgoingEntry<Out> | undefined {
    for (; this.next_ < this.entries.length; this.next_++) {
      const entry = this.entries[this.next_];
      // (Passes what is before `head` as settled: cleared slots, or no slot at all where a
      // compaction left the cursor below 0; the cursor may be behind `head` either way.)
      if (entry?.settled === false && entry.generation < 0) return entry;
    }
    return undefined;
  }

  /** Unsettled entries last written on link `generation`, in order (a snapshot: settle them freely). */
  writtenOn(generation: number): OutgoingEntry<Out>[] {
    return this.entries.filter((entry) => entry?.settled === false && entry.generation === generation);
  }

  /** The link broke: everything not confirmed goes back to waiting, in order. */
  requeueAll_(): void {
    // Settled entries are never read again: all of them will do but the cleared slots before `head`.
    for (const entry of this.entries) if (entry) entry.generation = -1;
    this.next_ = 0;
  }

  /**
   * Removes and returns every unsettled entry (to reject them all), except those written on
   * `keepGeneration`, which are left for that link's confirmation to settle.
   */
  drain(keepGeneration?: number): OutgoingEntry<Out>[] {
    const rest: OutgoingEntry<Out>[] = [];
    const kept: OutgoingEntry<Out>[] = [];
    for (const entry of this.entries) {
      // (Settled, or a cleared slot before `head`: see compact.)
      if (entry?.settled !== false) continue;
      // (A generation is a number: none equals an undefined `keepGeneration`.)
      if (entry.generation === keepGeneration) kept.push(entry);
      else rest.push(entry);
    }
    // Kept entries stay counted: their confirmation settles them later through `settle`, which
    // must find them here, or the counts would go negative.
    this.entries = kept;
    this.head = this.measured_ = this.next_ = 0;
    this.count_ = kept.length;
    this.bytes_ = 0;
    for (const entry of kept) this.bytes_ += entry.size;
    for (const entry of rest) {
      entry.settled = true;
      this.counted_ -= entry.counted_;
      entry.release?.();
    }
    return rest;
  }

  private overflowFor_(size: number): QueueOverflowError | undefined {
    if (this.count_ + 1 > this.maxMessages) {
      return new QueueOverflowError('messages', `outgoing queue is full (${this.maxMessages} messages)`);
    }
    const accounted = this.bytes_ + (this.count_ + 1) * QUEUE_ENTRY_OVERHEAD_BYTES + size;
    if (accounted > this.maxBytes) {
      return new QueueOverflowError('bytes', `outgoing queue is full (${this.maxBytes} bytes)`);
    }
    return undefined;
  }

  private compact_(): void {
    // Settled entries are cleared as they are passed: until the array is compacted, they would
    // stay reachable (with their data) however long the entries behind them wait.
    while (this.head < this.entries.length && this.entries[this.head]!.settled)
      this.entries[this.head++] = undefined as never;
    // Reclaim the settled prefix in bulk, so settling is O(1) amortised.
    if (this.head === this.entries.length) {
      this.entries.length = 0;
      this.head = this.measured_ = this.next_ = 0;
    } else if (this.head > 1_024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      // The next read looks at the list again from its start (see dataBytes_); the search for a
      // waiting entry moves with the list.
      this.next_ -= this.head;
      this.head = this.measured_ = 0;
    }
  }
}

/**
 * `%TypedArray%.prototype.slice`: copies into a new array of the same kind (a Node `Buffer` stays
 * a `Buffer`, whose own `slice` would return a view instead of a copy).
 */
const typedArraySlice = (Object.getPrototypeOf(Uint8Array.prototype) as { slice(): unknown }).slice;

/** A private copy of binary data, of the same type; other data (strings, Blobs, objects) as is. */
/** Copies binary data (strings are immutable): what the outbox keeps of a send. */
export function copyBytes<T>(data: T): T {
  if (typeof data === 'string') return data;
  // Bytes (a Uint8Array, or a Node Buffer) are copied into a plain Uint8Array: a Buffer's own
  // copy goes through its species constructor and costs several times as much (issue 13), and
  // every link takes any ArrayBufferView. The queued copy is what a `dropped` event then carries.
  // The constructor's copy from a typed array of the same element type (a memcpy) costs about
  // half an allocation and a `set` for a 64 B send (Node 20).
  if (data instanceof Uint8Array) return new Uint8Array(data) as T;
  if (data instanceof ArrayBuffer) return data.slice(0) as T;
  if (data instanceof DataView) {
    return new DataView(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) as T;
  }
  if (ArrayBuffer.isView(data)) return typedArraySlice.call(data) as T;
  return data;
}
