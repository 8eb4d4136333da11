import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';

/**
 * Milliseconds on a monotonic clock (`performance.now()`): it only moves forward, at the rate of
 * real time, whatever the wall clock does. Timeouts and time-to-live measured on it survive a
 * wall-clock step (NTP correction, a user setting the time, a VM resumed from a snapshot),
 * which `Date.now()` does not: a clock stepped back one hour would hold every timeout one hour.
 *
 * Read `performance` at each call, not once, so fake timers that replace it (Vitest's
 * `vi.useFakeTimers()`) drive it.
 */
export function monotonicNow(): number {
  return performance.now();
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
