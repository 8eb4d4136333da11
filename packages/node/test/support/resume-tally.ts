// Counting helpers for the resume tests: a stream of numbered messages is checked for loss,
// duplication and order by counting, never by sampling.
import { waitFor } from '@lifeline/core/testing';
import { Subject } from 'rxjs';

/** Counts of one direction of a numbered stream. */
export interface StreamTally {
  readonly sent: number;
  readonly received: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
}

/** Tallies messages `${prefix}${n}` received against `sent` messages numbered 1..sent. */
export class NumberedStream {
  private readonly seen = new Set<number>();
  private last = 0;
  received = 0;
  duplicated = 0;
  outOfOrder = 0;

  constructor(readonly prefix: string) {}

  add(message: unknown): void {
    const n = Number(String(message).slice(this.prefix.length));
    this.received++;
    if (this.seen.has(n)) this.duplicated++;
    else this.seen.add(n);
    if (n !== this.last + 1) this.outOfOrder++;
    this.last = n;
  }

  tally(sent: number): StreamTally {
    let lost = 0;
    for (let n = 1; n <= sent; n++) if (!this.seen.has(n)) lost++;
    return { sent, received: this.received, lost, duplicated: this.duplicated, outOfOrder: this.outOfOrder };
  }
}

/**
 * Counts ids received against 1..`count`: how many are missing, repeated, or out of order (not above
 * the id before them).
 */
export function tallyIds(ids: readonly number[], count: number) {
  const seen = new Set<number>();
  let duplicated = 0;
  let outOfOrder = 0;
  let previous = 0;
  for (const id of ids) {
    if (seen.has(id)) duplicated++;
    if (id <= previous) outOfOrder++;
    seen.add(id);
    previous = id;
  }
  let lost = 0;
  for (let id = 1; id <= count; id++) if (!seen.has(id)) lost++;
  return { received: ids.length, lost, duplicated, outOfOrder };
}

/**
 * A wait that the test's own events wake: `until(check, …)` is {@link waitFor} (re-checked every
 * 5 ms too), and `poke()`, called from the message and state handlers, re-checks it at once.
 */
export function waiter() {
  const wake = new Subject<void>();
  return {
    poke: (): void => wake.next(),
    until: (
      check: () => boolean,
      timeoutMs: number,
      what: string,
      state?: () => unknown,
    ): Promise<undefined> => waitFor(check, { timeoutMs, what, state, wake }),
  };
}

/** {@link waiter} already waiting on `check`: its `promise`, and `poke` to re-check at once. */
export function condition(check: () => boolean, timeoutMs: number, what: string) {
  const { poke, until } = waiter();
  return { poke, promise: until(check, timeoutMs, what) };
}
