import type { MonoTypeOperatorFunction, Observable, SchedulerLike } from 'rxjs';
import type { BackoffOptions } from '../policy/backoff-delay.js';
import type { ErrorClassifier } from '../policy/classify.js';
import { recoverWith } from './recover-with.js';

export { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from '../policy/backoff-delay.js';

/** Options of {@link backoff}: the delays of {@link BackoffOptions} and the attempt budget. */
export interface BackoffOperatorOptions extends BackoffOptions {
  /** Attempts per failure before the error goes through. @default 10 */
  maxAttempts?: number;
  /** Drives the waits, so marble tests and fake timers control time. @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Source of randomness for jitter, in [0, 1). @default Math.random */
  random?: () => number;
  /** Overrides the recoverable/irrecoverable classification; `undefined` defers to the default. */
  isRecoverable?: ErrorClassifier;
  /** Each emission cuts the current wait short (e.g. "back online"). */
  trigger?: Observable<unknown>;
}

/**
 * Retries the source after a backoff wait with full jitter, up to `maxAttempts` per failure.
 * Irrecoverable errors pass through at once. A thin preset of {@link recoverWith}.
 *
 * @example
 * ```ts
 * ticks$.pipe(backoff({ initialDelayMs: 50, maxDelayMs: 5_000, maxAttempts: 8 }))
 * ```
 */
export function backoff<T>(options: BackoffOperatorOptions = {}): MonoTypeOperatorFunction<T> {
  const { maxAttempts, scheduler, random, isRecoverable, trigger, ...delays } = options;
  return recoverWith<T>({
    backoff: delays,
    maxAttemptsPerFailure: maxAttempts,
    minUptimeMs: 0,
    scheduler,
    random,
    isRecoverable,
    trigger,
  });
}
