// Counting helpers for the resume tests: a stream of numbered messages is checked for loss,
// duplication and order by counting, never by sampling.

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

/** Resolves when `check` holds, re-checking on each call of the returned `poke`; rejects after `timeoutMs`. */
export function condition(check: () => boolean, timeoutMs: number, what: string) {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let done = false;
  const timer = setTimeout(() => {
    done = true;
    reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
  }, timeoutMs);
  const poke = () => {
    if (done || !check()) return;
    done = true;
    clearTimeout(timer);
    resolve();
  };
  poke();
  const cancel = () => {
    done = true;
    clearTimeout(timer);
  };
  return { promise, poke, cancel };
}
