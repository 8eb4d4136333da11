import type { SchedulerAction, SchedulerLike } from 'rxjs';
// From their modules, not from 'rxjs': Node resolves the package root to its CommonJS index, which
// loads all of rxjs (~0.5 s of a resume server's start); a server imports only what it uses.
import { Subscription } from 'rxjs/internal/Subscription';
// RxJS's own timer seam, the one `asyncScheduler` sets its timers through: inside
// `TestScheduler.run()` it points at virtual time, and it reads the global `setInterval` at each
// call, so fake timers (`vi.useFakeTimers()`) drive it too.
import { intervalProvider } from 'rxjs/internal/scheduler/intervalProvider';
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
 * One timer of {@link monotonicScheduler}: what RxJS's `AsyncAction` does for `asyncScheduler`
 * (an interval from `intervalProvider`, kept when the work reschedules itself with the same
 * delay, cleared when it does not), without its scheduler's action queue. Its own class rather
 * than `asyncScheduler`'s: the browser bundle then carries neither `AsyncAction`, `Action`,
 * `AsyncScheduler` nor `Scheduler` (issue 13). A `Subscription`, as `schedule` promises.
 */
class TimerAction<T> extends Subscription implements SchedulerAction<T> {
  /** The platform timer (Node's `Timeout`, a browser's number), public as `AsyncAction` keeps it (see {@link unrefTimer}). */
  id: ReturnType<typeof intervalProvider.setInterval> | undefined;
  private state_: T | undefined;
  private delay_ = 0;
  /** Set by `schedule`, cleared as the work runs: whether the work asked to run again. */
  private pending_ = false;
  /** Dropped when unsubscribed, as `AsyncAction` drops it: a held timer keeps no closure alive. */
  private work_: ((this: SchedulerAction<T>, state?: T) => void) | undefined;

  constructor(work: (this: SchedulerAction<T>, state?: T) => void) {
    super();
    this.work_ = work;
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.state_ = state;
    const id = this.id;
    // Rescheduled from its own work with the same delay: the running interval serves it.
    if (id === undefined || this.pending_ || delay !== this.delay_) {
      if (id !== undefined) intervalProvider.clearInterval(id);
      this.id = intervalProvider.setInterval(() => this.run_(), delay);
    }
    this.pending_ = true;
    this.delay_ = delay;
    return this;
  }

  private run_(): void {
    if (this.closed) return;
    this.pending_ = false;
    try {
      this.work_!(this.state_);
    } catch (error) {
      // As `asyncScheduler`: a throwing action is cancelled, and the error reaches the host.
      this.unsubscribe();
      throw error;
    }
    if (!this.pending_ && this.id !== undefined) {
      intervalProvider.clearInterval(this.id);
      this.id = undefined;
    }
  }

  override unsubscribe(): void {
    if (this.closed) return;
    if (this.id !== undefined) intervalProvider.clearInterval(this.id);
    this.id = undefined;
    this.work_ = this.state_ = undefined;
    super.unsubscribe();
  }
}

/**
 * The library's default scheduler: timers as RxJS's `asyncScheduler` sets them (one interval per
 * action, through RxJS's timer seam, so `TestScheduler.run()` and fake timers drive them), with
 * `now()` read from {@link monotonicNow} (in whole ms) instead of `Date.now()`. `asyncScheduler.now()` is the
 * wall clock, so code that measures elapsed time with `scheduler.now()` (the heartbeat's silence)
 * would stop timing out when the clock is set back. A scheduler passed in options (a
 * `TestScheduler` in marble tests) replaces both the timers and the clock: it is the one time seam.
 */
export const monotonicScheduler: SchedulerLike = {
  // Whole milliseconds, as `asyncScheduler.now()` (`Date.now()`) gives: a timestamp a connection
  // keeps (a heartbeat's last sign of life, a link's opening) is then a small integer, which V8
  // keeps in the object, where a fraction took a 16 B number box per field.
  now: () => Math.floor(monotonicNow()),
  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T): Subscription {
    return new TimerAction(work).schedule(state, delay);
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

/**
 * Epoch milliseconds on `scheduler`'s clock: {@link steadyEpochNow} when it is read, advanced by
 * `scheduler.now()` since. So a component given a scheduler (a `TestScheduler`) sees its
 * deadlines in epoch ms (what stores keep) move with that scheduler's time, not the real clock's.
 */
export function epochClock(scheduler: SchedulerLike | undefined): () => number {
  if (scheduler === undefined || scheduler === monotonicScheduler) return steadyEpochNow;
  const offset = steadyEpochNow() - scheduler.now();
  return () => Math.floor(offset + scheduler.now());
}

/**
 * Runs `work` once, `ms` milliseconds from now, on `scheduler`: the one place the library starts
 * a one-shot timer, so an injected scheduler (a `TestScheduler`) or fake timers
 * (`vi.useFakeTimers()`, which replace the globals RxJS's timer seam reads at each call) drive it.
 * Returns the timer; `unsubscribe()` cancels it (and is harmless once it ran).
 *
 * @example
 * ```ts
 * const timer = after(5_000, () => socket.close(), options.scheduler);
 * timer.unsubscribe();
 * ```
 */
export function after(
  ms: number,
  work: () => void,
  scheduler: SchedulerLike = monotonicScheduler,
): Subscription {
  return scheduler.schedule(() => work(), ms);
}

/**
 * Runs `work` every `ms` milliseconds on `scheduler` until the returned timer is unsubscribed.
 * The action reschedules itself with the same delay, which {@link monotonicScheduler} (as
 * `asyncScheduler`) serves with one `setInterval`, as a hand-written interval would.
 */
export function every(
  ms: number,
  work: () => void,
  scheduler: SchedulerLike = monotonicScheduler,
): Subscription {
  return scheduler.schedule(function (this: SchedulerAction<unknown>) {
    work();
    this.schedule(undefined, ms);
  }, ms);
}

/**
 * Lets a timer from {@link after} or {@link every} not keep the process alive (Node's
 * `Timeout.unref()`), for housekeeping timers such as a server's sweep. {@link monotonicScheduler}'s
 * (and `asyncScheduler`'s) actions keep their platform timer in the public `id` field; a timer without `unref` there
 * (a browser's number, a virtual action) is left as it is, which is right: nothing to keep alive.
 */
export function unrefTimer(timer: Subscription): Subscription {
  const id = (timer as { id?: unknown }).id;
  if (typeof id === 'object' && id !== null) (id as { unref?: () => void }).unref?.();
  return timer;
}
