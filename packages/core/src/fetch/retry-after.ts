import { HttpStatusError } from '../engine/errors.js';

const DELAY_SECONDS = /^\d{1,10}$/;

/**
 * Parses a `Retry-After` header value into a wait in ms: delta-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`, measured against `nowMs`; a date in the past is 0).
 * `undefined` when the header is absent or malformed (it is then ignored, as RFC 9110 allows).
 *
 * An HTTP-date is wall-clock time by definition, so it is the one place `Date.now()` is right.
 *
 * @example
 * ```ts
 * parseRetryAfter('2') // 2000
 * parseRetryAfter(new Date(Date.now() + 5_000).toUTCString()) // about 5000
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (DELAY_SECONDS.test(text)) return Number(text) * 1000;
  // IMF-fixdate and the two obsolete forms RFC 9110 §5.6.7 obliges a recipient to accept all
  // parse with Date; anything without a GMT zone is not an HTTP-date.
  if (!/GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

/**
 * The {@link HttpStatusError} for a response that is not a success, carrying its `Retry-After`
 * as `retryAfterMs`, so the recovery core waits at least that long before the next attempt.
 *
 * @example
 * ```ts
 * throw httpStatusError(response); // 503 with Retry-After: 2 → retryAfterMs 2000
 * ```
 */
export function httpStatusError(response: Response): HttpStatusError {
  return new HttpStatusError(response.status, undefined, {
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
  });
}
