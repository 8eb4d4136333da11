import type { MonoTypeOperatorFunction } from 'rxjs';
import type { RecoveryOptions } from '../engine/recovery-core.js';
import type { BackoffOptions } from '../policy/backoff-delay.js';
import { recoverWith } from './recover-with.js';

export { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from '../policy/backoff-delay.js';

/**
 * Retries the source after a backoff wait with full jitter, up to `maxAttempts` per failure.
 * Irrecoverable errors pass through at once. A thin preset of {@link recoverWith}.
 *
 * @example
 * ```ts
 * ticks$.pipe(backoff({ initialDelayMs: 50, maxDelayMs: 5_000, maxAttempts: 8 }))
 * ```
 */
export function backoff<T>(
  options: BackoffOptions &
    Pick<RecoveryOptions, 'scheduler' | 'random' | 'isRecoverable' | 'trigger'> & {
      /** @default 10 */
      maxAttempts?: number;
    } = {},
): MonoTypeOperatorFunction<T> {
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
