import { type HttpStatusError, LifelineError, LinkClosedError } from '../engine/errors.js';
import { RECOVERABLE_CLOSE_CODES } from './close-codes.js';

/** Decides whether an error is worth recovering from. Return `undefined` to defer to the default. */
export type ErrorClassifier = (error: unknown) => boolean | undefined;

/** HTTP statuses after which a retry may succeed: the gateway or the server is temporarily unable. */
export const RECOVERABLE_HTTP_STATUSES: ReadonlySet<number> = new Set([408, 429, 502, 503, 504]);

/** OS error codes of network failures that a reopen may cure. */
export const RECOVERABLE_SYSCALL_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * The default classification, in order; the first rule that matches decides.
 *
 * 1. The user closed the connection, or a limit of ours was hit: never recoverable.
 * 2. An error that states its own `recoverable` flag: that flag.
 * 3. A close code: recoverable only for 1001, 1005, 1006, 1011, 1012, 1013, 1014 (see {@link CloseCode}).
 * 4. An HTTP status: recoverable for 408, 429, 502, 503, 504; never for 401/403 or other 4xx.
 * 5. Heartbeat timeouts, failed links and failed connects: recoverable.
 * 6. An OS network error code (ECONNRESET, ECONNREFUSED...): recoverable.
 * 7. A `TypeError` that fetch raised (the call, or a read of its body) and {@link markFetchFailure}
 *    recorded: the Fetch standard reports every network error as a `TypeError`, and that type is
 *    all some runtimes give (Deno: no `cause`, no `code`; Chromium: none either). Decided by type
 *    and where the error came from, never by message text, which differs per runtime and release.
 *    Errors from the user's own code: not.
 * 8. Anything else: not recoverable, so unknown failures reach the caller unchanged.
 */
export function isRecoverableByDefault(error: unknown): boolean {
  if (error instanceof LifelineError) {
    switch (error.code) {
      case 'ERR_CLOSED_BY_USER':
      case 'ERR_DETACHED':
      case 'ERR_QUEUE_OVERFLOW':
      case 'ERR_INVALID_OPTION':
        return false;
    }
    if (error.recoverable !== undefined) return error.recoverable;
    if (error instanceof LinkClosedError) {
      return error.closeCode === undefined || RECOVERABLE_CLOSE_CODES.has(error.closeCode);
    }
    switch (error.code) {
      // By code, not `instanceof HttpStatusError` (the same answer: a status is only read where
      // the code says there is one), so a WebSocket-only browser bundle does not carry that class.
      case 'ERR_HTTP_STATUS':
        return RECOVERABLE_HTTP_STATUSES.has((error as HttpStatusError).status);
      case 'ERR_HEARTBEAT_TIMEOUT':
      case 'ERR_LINK_FAILED':
      case 'ERR_CONNECT_FAILED':
      case 'ERR_NOT_OPEN':
        return true;
      default:
        return false;
    }
  }
  const syscall = syscallCodeOf(error);
  if (syscall !== undefined && RECOVERABLE_SYSCALL_CODES.has(syscall)) return true;
  if (error instanceof TypeError && fetchFailures.has(error)) return true;
  return false;
}

// Weakly held: a mark lives exactly as long as its error.
const fetchFailures = new WeakSet<object>();

/**
 * Records that `error` was raised by fetch itself (the call, or a read of the response body),
 * so {@link isRecoverableByDefault} knows a `TypeError` for the network error it is. Called by
 * `haFetch`, and by any transport that drives fetch; returns `error`.
 *
 * @example
 * ```ts
 * try { await reader.read(); } catch (error) { throw markFetchFailure(error); }
 * ```
 * @see https://fetch.spec.whatwg.org/#concept-network-error
 */
export function markFetchFailure<E>(error: E): E {
  if (typeof error === 'object' && error !== null) fetchFailures.add(error);
  return error;
}

/** True when {@link markFetchFailure} recorded `error`. */
export function isFetchFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && fetchFailures.has(error);
}

/**
 * Classifies with the user's classifier first, falling back to {@link isRecoverableByDefault}.
 * Pure: the same error always gets the same answer.
 */
export function isRecoverable(error: unknown, classifier?: ErrorClassifier): boolean {
  const verdict = classifier?.(error);
  return verdict ?? isRecoverableByDefault(error);
}

function syscallCodeOf(error: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && RECOVERABLE_SYSCALL_CODES.has(code)) return code;
  return syscallCodeOf((error as { cause?: unknown }).cause, depth + 1);
}
