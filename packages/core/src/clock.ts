import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
// RxJS's own monotonic time source: `performance.now()`, except inside `TestScheduler.run()`, which
// points it at virtual time (as it does `asyncScheduler`'s timers), so marble tests keep driving
// the default scheduler. Not in RxJS's index, but exported by its package (`./internal/*`).
import { performanceTimestampProvider } from 'rxjs/internal/scheduler/performanceTimestampProvider';

/**
 * Milliseconds on a monotonic clock (`performance.now()`): it only moves forward, at the rate of
 * real time, whatever the wall clock does. Timeouts and time-to-live measured on it survive a
 * wall-clock step (NTP correction, a user setting the time, a VM resumed from a snapshot),
 * which `Date.now()` does not: a clock stepped back one hour would hold every timeout one hour.
 *
 * Read at each call, not once, so fake timers that replace `performance` (Vitest's
 * `vi.useFakeTimers()`) drive it, and so does virtual time inside RxJS's `TestScheduler.run()`.
 */
export function monotonicNow(): number {
  return performanceTimestampProvider.now();
}

/**
 * The library's default scheduler: RxJS's `asyncScheduler` (timers through `setTimeout`), with
 * `now()` read from {@link monotonicNow} instead of `Date.now()`. `asyncScheduler.now()` is the
 * wall clock, so code that measures elapsed time with `scheduler.now()` (the heartbeat's silence)
 * would stop timing out when the clock is set back. A scheduler passed in options (a
 * `TestScheduler` in marble tests) replaces both the timers and the clock: it is the one time seam.
 */
export const monotonicScheduler: SchedulerLike = {
  now: monotonicNow,
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
    return asyncScheduler.schedule(work, delay, state);
  },
};
