/** How long to wait before each recovery attempt. */
export interface BackoffOptions {
  /**
   * Upper bound of the wait before the first attempt, in ms.
   * @default 250
   */
  initialDelayMs?: number;
  /**
   * The upper bound never grows past this, in ms.
   * @default 30_000
   */
  maxDelayMs?: number;
  /**
   * The upper bound is multiplied by this after each failed attempt.
   * @default 2
   */
  factor?: number;
  /**
   * `'full'`: wait a uniformly random time between 0 and the bound (spreads a fleet of clients
   * that lost the same server, so they do not reconnect in one thundering herd).
   * `'none'`: wait exactly the bound.
   * @default 'full'
   */
  jitter?: 'full' | 'none';
}

/** The backoff defaults, exported so callers can derive their own. */
export const DEFAULT_BACKOFF: Readonly<Required<BackoffOptions>> = Object.freeze({
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 'full',
});

/**
 * The wait before attempt `attempt` (1-based): exponential growth capped at `maxDelayMs`, with
 * full jitter. Pure given `random`.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { initialDelayMs, maxDelayMs, factor, jitter } = { ...DEFAULT_BACKOFF, ...options };
  const bound = Math.min(maxDelayMs, initialDelayMs * factor ** Math.max(0, attempt - 1));
  return jitter === 'full' ? Math.floor(random() * bound) : bound;
}
