/**
 * How long to wait before each recovery attempt. Checked where it is passed: a value out of range
 * or of the wrong type throws an `InvalidOptionError` naming it (`backoff.maxDelayMs`).
 */
export interface BackoffOptions {
  /**
   * How the upper bound of the wait grows during one failure.
   * - `'proportional'`: with the time the failure has lasted so far: `ratio × elapsed`, never
   *   below `initialDelayMs` nor above `maxDelayMs`. The wait in progress when the server comes
   *   back is then short relative to the outage (after a 1 s outage, tens of ms; after 5 s, a few
   *   hundred), however many attempts were made, while a long outage is still probed rarely.
   * - `'exponential'`: with the attempt number: `initialDelayMs × factor^(attempt - 1)`, capped
   *   at `maxDelayMs` (the classic schedule; after a burst of fast-failing attempts the bound is
   *   far above the outage's length).
   * @default 'proportional'
   */
  strategy?: 'proportional' | 'exponential';
  /**
   * Upper bound of the wait at the start of a failure, in ms, from 0 to 2^31 - 1.
   * @default 250
   */
  initialDelayMs?: number;
  /**
   * The upper bound never grows past this, in ms, from 0 to 2^31 - 1 (a timer cannot wait
   * longer: Node would run it after 1 ms).
   * @default 30_000
   */
  maxDelayMs?: number;
  /**
   * `'proportional'` only: the bound as a fraction of the time the failure has lasted, from 0 to 1000.
   * @default 0.2
   */
  ratio?: number;
  /**
   * `'exponential'` only: the bound is multiplied by this after each failed attempt, from 1 to 1000.
   * @default 2
   */
  factor?: number;
  /**
   * `'full'`: wait a uniformly random time between 0 and the bound (spreads a fleet of clients
   * that lost the same server, so they do not reconnect in one thundering herd).
   * `'none'`: wait exactly the bound.
   * @default 'full'
   * @see https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
   */
  jitter?: 'full' | 'none';
}

/** The backoff defaults, exported so callers can derive their own. */
export const DEFAULT_BACKOFF: Readonly<Required<BackoffOptions>> = Object.freeze({
  strategy: 'proportional',
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  ratio: 0.2,
  factor: 2,
  jitter: 'full',
});

/**
 * The wait before attempt `attempt` (1-based) of a failure that has lasted `elapsedMs` so far:
 * the bound of the chosen strategy, with full jitter. Pure given `random`.
 *
 * @example
 * ```ts
 * backoffDelay(3, { strategy: 'exponential', jitter: 'none' }); // 1_000
 * backoffDelay(3, { jitter: 'none' }, Math.random, 10_000); // 2_000: a fifth of the 10 s so far
 * ```
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
  elapsedMs = 0,
): number {
  const { strategy, initialDelayMs, maxDelayMs, ratio, factor, jitter } = { ...DEFAULT_BACKOFF, ...options };
  const grown =
    strategy === 'exponential'
      ? initialDelayMs * factor ** Math.max(0, attempt - 1)
      : Math.max(initialDelayMs, ratio * Math.max(0, elapsedMs));
  const bound = Math.floor(Math.min(maxDelayMs, grown));
  return jitter === 'full' ? Math.floor(random() * bound) : bound;
}
