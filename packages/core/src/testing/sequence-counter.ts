/** What a {@link SequenceCounter} saw. */
export interface SequenceCounts {
  /** Messages the sender reports it sent (the highest sequence number + 1, or what `sent` was set to). */
  readonly sent: number;
  /** Every delivery, duplicates included. */
  readonly received: number;
  /** Distinct sequence numbers delivered. */
  readonly unique: number;
  /** Sent but never delivered. */
  readonly lost: number;
  /** Deliveries of a sequence number already delivered. */
  readonly duplicated: number;
  /** First deliveries that came after a higher sequence number had already been delivered. */
  readonly reordered: number;
}

/**
 * Counts a numbered stream at the receiver: sent, received, lost, duplicated, out of order.
 * Sequence numbers start at 0. Stream tests assert on these counts instead of sampling.
 *
 * @example
 * ```ts
 * const counter = new SequenceCounter();
 * conn.messages$.subscribe((m) => counter.record(Number(m)));
 * expect(counter.counts(sent)).toMatchObject({ lost: 0, duplicated: 0, reordered: 0 });
 * ```
 */
export class SequenceCounter {
  private readonly seen = new Set<number>();
  private deliveries = 0;
  private duplicates = 0;
  private outOfOrder = 0;
  private highest = -1;

  record(sequence: number): void {
    this.deliveries++;
    if (this.seen.has(sequence)) {
      this.duplicates++;
      return;
    }
    this.seen.add(sequence);
    if (sequence < this.highest) this.outOfOrder++;
    else this.highest = sequence;
  }

  /** Whether `sequence` was delivered at least once. */
  has(sequence: number): boolean {
    return this.seen.has(sequence);
  }

  get uniqueCount(): number {
    return this.seen.size;
  }

  /** The counts, given how many the sender sent (0..sent-1). */
  counts(sent: number): SequenceCounts {
    let lost = 0;
    for (let i = 0; i < sent; i++) if (!this.seen.has(i)) lost++;
    return {
      sent,
      received: this.deliveries,
      unique: this.seen.size,
      lost,
      duplicated: this.duplicates,
      reordered: this.outOfOrder,
    };
  }
}
