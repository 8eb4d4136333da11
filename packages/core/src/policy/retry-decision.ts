import { type BackoffOptions, backoffDelay } from './backoff-delay.js';
import { type ErrorClassifier, isRecoverable } from './classify.js';
import { exactRetryHintMs, type RetryAfterOptions, retryHintMs } from './retry-hint.js';

/** Why recovery gave up. */
export type GiveUpReason =
  | 'closed'
  | 'suspended'
  | 'irrecoverable'
  | 'attempts-exhausted'
  | 'recoveries-exhausted'
  | 'declined';

/** The outcome of {@link decideRetry}. */
export type RetryDecision =
  | { readonly action: 'retry'; readonly attempt: number; readonly delayMs: number }
  | { readonly action: 'give-up'; readonly reason: GiveUpReason };

/** Everything the decision depends on; nothing else is consulted. */
export interface RetryDecisionInput {
  /** The error just seen: the failure itself or a failed attempt. */
  readonly error: unknown;
  /** The user closed the connection. */
  readonly closed: boolean;
  /** Recovery is suspended: failures propagate as on a plain connection. */
  readonly suspended: boolean;
  /** Attempts already made for the current failure (0 when the failure just happened). */
  readonly attemptsMade: number;
  readonly maxAttemptsPerFailure: number;
  /** Failures recovered from (or being recovered from) before this one, over the connection's life. */
  readonly recoveriesUsed: number;
  readonly maxRecoveries: number;
  /** True when `error` starts a new failure rather than failing an attempt of the current one. */
  readonly newFailure: boolean;
  readonly classify?: ErrorClassifier | undefined;
  /** The user's last word: return false to give up on this error. */
  readonly shouldRecover?: ((error: unknown, attempt: number) => boolean) | undefined;
  readonly backoff?: BackoffOptions | undefined;
  /** How long the current failure has lasted, in ms (0 when it just happened). */
  readonly elapsedMs?: number | undefined;
  readonly random?: (() => number) | undefined;
  /** How a retry hint carried by `error` (see {@link retryHintMs}) is honoured. */
  readonly retryAfter?: RetryAfterOptions | false | undefined;
}

/**
 * The one retry decision, in order: closed by the user → suspended → irrecoverable error →
 * lifetime budget → per-failure budget → the user's predicate → the delay (the backoff, raised to
 * the error's own retry hint when it carries one, or replaced by an exact one: `retryAfterExact`).
 * Pure (given `random`), so every branch is testable without sockets or timers.
 */
export function decideRetry(input: RetryDecisionInput): RetryDecision {
  if (input.closed) return { action: 'give-up', reason: 'closed' };
  if (input.suspended) return { action: 'give-up', reason: 'suspended' };
  if (!isRecoverable(input.error, input.classify)) return { action: 'give-up', reason: 'irrecoverable' };
  if (input.newFailure && input.recoveriesUsed >= input.maxRecoveries) {
    return { action: 'give-up', reason: 'recoveries-exhausted' };
  }
  if (input.attemptsMade >= input.maxAttemptsPerFailure)
    return { action: 'give-up', reason: 'attempts-exhausted' };
  const attempt = input.attemptsMade + 1;
  if (input.shouldRecover && !input.shouldRecover(input.error, attempt)) {
    return { action: 'give-up', reason: 'declined' };
  }
  // A server's exact word (a GOAWAY's "reconnect now") replaces the backoff; any other hint raises it.
  const delayMs =
    exactRetryHintMs(input.error, input.retryAfter) ??
    Math.max(
      backoffDelay(attempt, input.backoff, input.random, input.elapsedMs),
      retryHintMs(input.error, input.retryAfter),
    );
  return { action: 'retry', attempt, delayMs };
}
