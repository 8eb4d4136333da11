import { defer, finalize, type MonoTypeOperatorFunction, noop, retry, tap } from 'rxjs';
import { RecoveryCore, type RecoveryEvent, type RecoveryOptions } from '../engine/recovery-core.js';

/** Options of {@link recoverWith}: the recovery policy plus a listener for what it does. */
export interface RecoverWithOptions extends RecoveryOptions {
  /** Told of every recovery step (recovering, attempting, recovered, gave-up). */
  onEvent?: (event: RecoveryEvent) => void;
}

/**
 * Recovers any Observable by resubscribing under the recovery policy: budgets per failure and
 * per lifetime, backoff with jitter, irrecoverable errors passed through unchanged.
 * The source counts as up at its first value after a (re)subscription.
 *
 * @example
 * ```ts
 * quotes$.pipe(recoverWith({ maxAttemptsPerFailure: 5, backoff: { initialDelayMs: 100 } }))
 * ```
 * @see attach, which uses the same {@link RecoveryCore} for links.
 */
export function recoverWith<T>(options: RecoverWithOptions = {}): MonoTypeOperatorFunction<T> {
  return (source) =>
    defer(() => {
      const core = new RecoveryCore(options, { recoveryEvent_: options.onEvent ?? noop });
      // The core is ours alone: closing it on teardown cancels its minUptime timer, which would
      // otherwise outlive the subscription (keeping a process alive and reporting a recovery late).
      return source.pipe(
        recoverWithCore(core),
        finalize(() => core.close()),
      );
    });
}

/** {@link recoverWith} with a core the caller holds, so it can read counts and suspend or close it. */
export function recoverWithCore<T>(core: RecoveryCore): MonoTypeOperatorFunction<T> {
  return (source) =>
    source.pipe(
      tap(() => {
        if (!core.up) core.markUp();
      }),
      retry({ delay: (error) => core.fail(error) }),
    );
}
