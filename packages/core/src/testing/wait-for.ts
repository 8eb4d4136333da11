import type { Subscribable, Unsubscribable } from 'rxjs';

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** How long to wait before failing, in milliseconds. @default 10_000 */
  timeoutMs?: number;
  /** What is awaited, for the timeout message (`timed out after 10000 ms waiting for <what>`). @default 'the condition' */
  what?: string;
  /** Read when the wait fails, JSON-encoded into the message: the counts that tell why. */
  state?: () => unknown;
  /** A condition is re-checked every `intervalMs` milliseconds. @default 5 */
  intervalMs?: number;
  /** A condition is also re-checked at once on each emission: the events that change what it reads. */
  wake?: Subscribable<unknown>;
  /** Aborting stops the wait: it rejects with the signal's reason and leaves no timer behind. */
  signal?: AbortSignal;
}

/**
 * Waits, bounded in time, for one of:
 * - a condition (`() => boolean`, or a promise of one) to hold: resolves with `undefined` once it
 *   returns true, re-checked every `intervalMs` and on each `wake` emission;
 * - the first value of an `Observable` (any `Subscribable`): resolves with it; an error or a
 *   completion without a value rejects;
 * - a promise: resolves or rejects as it does.
 *
 * Past `timeoutMs` it rejects with an `Error` whose message says how long, what was awaited and
 * `state()`; a condition that throws rejects with what it threw. Every timer and subscription it
 * makes is released when it settles, so a test that awaits it leaks nothing. It uses the global
 * `setTimeout`: under fake timers, advance the clock to move it.
 *
 * @example
 * ```ts
 * await waitFor(() => received.length === 100, { what: '100 messages', state: () => ({ received: received.length }) });
 * const open = await waitFor(conn.state$.pipe(filter((s) => s.status === 'open')), { timeoutMs: 5_000, what: 'open' });
 * ```
 */
export function waitFor(
  condition: () => boolean | PromiseLike<boolean>,
  options?: WaitForOptions,
): Promise<undefined>;
export function waitFor<T>(source: Subscribable<T> | PromiseLike<T>, options?: WaitForOptions): Promise<T>;
export function waitFor<T>(
  awaited: (() => boolean | PromiseLike<boolean>) | Subscribable<T> | PromiseLike<T>,
  options: WaitForOptions = {},
): Promise<T | undefined> {
  const { timeoutMs = 10_000, what = 'the condition', state, intervalMs = 5, wake, signal } = options;
  return new Promise<T | undefined>((resolve, reject) => {
    const subscriptions: Unsubscribable[] = [];
    let poll: ReturnType<typeof setTimeout> | undefined;
    let settled = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(poll);
      signal?.removeEventListener('abort', onAbort);
      for (const subscription of subscriptions.splice(0)) subscription.unsubscribe();
      settle();
    };
    const fail = (error: unknown) => finish(() => reject(error));
    const onAbort = () => fail(signal?.reason);
    const deadline = setTimeout(() => {
      let detail = '';
      try {
        if (state) detail = `; ${JSON.stringify(state())}`;
      } catch (error) {
        detail = `; state() threw ${String(error)}`;
      }
      fail(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`));
    }, timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });

    if (typeof awaited === 'function') {
      let checking = false;
      let again = false;
      const check = async () => {
        // One check at a time (a condition may be async); a wake meanwhile re-runs it after.
        if (checking) {
          again = true;
          return;
        }
        checking = true;
        try {
          do {
            again = false;
            if (await awaited()) return finish(() => resolve(undefined));
          } while (again && !settled);
        } catch (error) {
          return fail(error);
        } finally {
          checking = false;
        }
        if (!settled) {
          clearTimeout(poll);
          poll = setTimeout(check, intervalMs);
        }
      };
      if (wake) subscriptions.push(wake.subscribe({ next: () => void check() }));
      void check();
    } else if ('subscribe' in awaited) {
      let done = false;
      const subscription = awaited.subscribe({
        next: (value) => {
          done = true;
          finish(() => resolve(value));
        },
        error: fail,
        complete: () => {
          if (!done) fail(new Error(`${what} completed without a value`));
        },
      });
      if (settled) subscription.unsubscribe();
      else subscriptions.push(subscription);
    } else {
      awaited.then(
        (value) => finish(() => resolve(value)),
        (error: unknown) => fail(error),
      );
    }
  });
}
