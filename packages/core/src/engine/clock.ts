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

/**
 * Epoch milliseconds that never step: the wall clock read once, when the process (or page)
 * started (`performance.timeOrigin`), advanced by the monotonic clock. Within one process it is
 * as steady as {@link monotonicNow}, so deadlines compared against it hold whatever the wall clock
 * does; across processes it still means "epoch ms", so times stored with it (a session's
 * `expiresAt`) can be read after a restart or by another replica. What it cannot see is a step
 * made while the process ran: its error is the wall-clock steps since this process started, plus
 * the difference between hosts' clocks (docs/durable-sessions.md, "Clocks").
 */
export function steadyEpochNow(): number {
  // Whole milliseconds, as Date.now(): stores keep integers (SQLite INTEGER, Redis PEXPIREAT).
  return Math.floor(performance.timeOrigin + monotonicNow());
}
