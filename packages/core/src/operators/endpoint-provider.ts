import type { SchedulerLike } from 'rxjs';
import { after, monotonicScheduler } from '../engine/clock.js';
import { ConnectFailedError, LifelineError } from '../engine/errors.js';

/**
 * Awaits an endpoint provider (a URL function, service discovery) within one attempt's connect
 * budget. A provider that never settles would otherwise hold the connection in `recovering`,
 * attempt 1, forever; one that throws would end it, though a failed lookup is as transient as a
 * refused connect. So: past `timeoutMs`, or on a throw, the attempt fails with a recoverable
 * {@link ConnectFailedError} (the provider's error as `cause`); an aborted `signal` rejects with
 * its reason. A {@link LifelineError} the provider throws keeps its own classification.
 *
 * Returns the value and the time it took, so a caller can give the connect what is left. Both the
 * timeout and the time taken are on `scheduler` (the transport's time seam).
 */
export function resolveWithin<T>(
  provider: () => T | Promise<T>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  what: string,
  scheduler: SchedulerLike = monotonicScheduler,
): Promise<{ value: T; elapsedMs: number }> {
  const started = scheduler.now();
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      done = true;
      timer.unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      if (done) return;
      finish();
      reject(signal!.reason);
    };
    const timer = after(
      timeoutMs,
      () => {
        if (done) return;
        finish();
        reject(
          new ConnectFailedError(`${what} did not answer within ${timeoutMs} ms`, {
            syscallCode: 'ETIMEDOUT',
          }),
        );
      },
      scheduler,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(provider());
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (value) => {
        if (done) return;
        finish();
        resolve({ value, elapsedMs: scheduler.now() - started });
      },
      (error) => {
        if (done) return;
        finish();
        reject(
          error instanceof LifelineError
            ? error
            : new ConnectFailedError(`${what} failed`, { cause: error, recoverable: true }),
        );
      },
    );
  });
}
