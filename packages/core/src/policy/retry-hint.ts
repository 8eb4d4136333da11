/**
 * A failure can carry the server's own word on when to try again: an HTTP `Retry-After`
 * (RFC 9110 §10.2.3), the SSE `retry:` field (WHATWG HTML, server-sent events), or a server's
 * going-away hint. The recovery core waits at least that long before the next attempt, whatever
 * the backoff says, capped by {@link RetryAfterOptions.maxDelayMs}.
 */
export interface RetryHint {
  /** The minimum wait before the next attempt, in ms (non-negative, finite). */
  readonly retryAfterMs?: number;
  /**
   * `retryAfterMs` is the wait itself, replacing the backoff rather than raising it: a server
   * that is going away and says "reconnect now" (a resume GOAWAY) is taken at its word.
   * @default false
   */
  readonly retryAfterExact?: boolean;
}

/** How the recovery core honours retry hints carried by failures. */
export interface RetryAfterOptions {
  /**
   * Honour hints at all. `false` ignores them and uses the backoff alone.
   * @default true
   */
  enabled?: boolean;
  /**
   * The longest wait a hint may impose, in ms (0 to 2^31 - 1); a longer hint is cut to this.
   * @default 120_000
   */
  maxDelayMs?: number;
}

/** Named default of {@link RetryAfterOptions.maxDelayMs}. */
export const DEFAULT_MAX_RETRY_AFTER_MS = 120_000;

/**
 * The exact wait `error` asks for, in ms (its own or its `cause` chain's `retryAfterMs` with
 * `retryAfterExact`), capped by `options.maxDelayMs`; `undefined` when it asks for none, or hints
 * are disabled. It replaces the backoff for the attempt that follows.
 */
export function exactRetryHintMs(
  error: unknown,
  options: RetryAfterOptions | false = {},
): number | undefined {
  return findHintMs(error, options, true);
}

/**
 * The minimum wait `error` asks for, in ms, or 0: its own `retryAfterMs`, else that of its
 * `cause` chain (a wrapper keeps the hint of the error it wraps). Capped by `options.maxDelayMs`.
 */
export function retryHintMs(error: unknown, options: RetryAfterOptions | false = {}): number {
  return findHintMs(error, options, false) ?? 0;
}

/**
 * The first hint in `error`'s `cause` chain (5 deep): with `exact`, the first `retryAfterExact`
 * one with a non-negative `retryAfterMs` (Infinity means the cap); else the first finite positive
 * `retryAfterMs`. One walk for both readers, so the browser bundle carries one copy.
 */
function findHintMs(error: unknown, options: RetryAfterOptions | false, exact: boolean): number | undefined {
  if (options === false || options.enabled === false) return undefined;
  const cap = options.maxDelayMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  let current = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const { retryAfterMs: ms, retryAfterExact } = current as RetryHint;
    if (
      typeof ms === 'number' &&
      (exact ? retryAfterExact === true && ms >= 0 : Number.isFinite(ms) && ms > 0)
    ) {
      return Math.min(Number.isFinite(ms) ? ms : cap, cap);
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
