import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
import { reportException } from '../engine/report-exception.js';
import { type HeartbeatChecks, type HeartbeatTimer, setHeartbeatChecks } from './heartbeat.js';

/**
 * Every {@link HeartbeatTimer} on one scheduler, checked by one timer on that scheduler, set for
 * the earliest check due. A heartbeat's check runs when it is due, as on a timer of its own (the
 * timing the tests pin down is unchanged), but 1,000 idle connections keep one timer instead of
 * 1,000 (an rxjs action, a Node `Timeout` and their functions: about 350 B each). Through the
 * scheduler, so an injected one (a `TestScheduler`) or fake timers drive it; empty, it holds no
 * timer, so a closed connection lets the process exit.
 * @internal
 */
export class HeartbeatWheel implements HeartbeatChecks {
  /**
   * By due time, the latest first: the next check is popped off the end. A sorted array rather
   * than a heap: each check moves it by one binary search and one splice, cheap at the thousands
   * of connections a client holds, and the code stays small in a browser's bundle.
   */
  private readonly due_: HeartbeatTimer[] = [];
  private timer_: Subscription | undefined;
  /** The heartbeat being checked, until it stops (its owner closed) during its check. */
  private checking_: HeartbeatTimer | undefined;
  /** When the timer is set to run; Infinity when none is set. */
  private wakeAt_ = Number.POSITIVE_INFINITY;
  /** @internal */
  readonly scheduler_: SchedulerLike;

  constructor(scheduler: SchedulerLike) {
    this.scheduler_ = scheduler;
  }

  add_(beat: HeartbeatTimer): void {
    const due = this.due_;
    let low = 0;
    let high = due.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (due[middle]!.dueAt_ > beat.dueAt_) low = middle + 1;
      else high = middle;
    }
    due.splice(low, 0, beat);
    this.arm_();
  }

  remove_(beat: HeartbeatTimer): void {
    if (beat === this.checking_) this.checking_ = undefined;
    const due = this.due_;
    const index = due.lastIndexOf(beat);
    if (index < 0) return;
    due.splice(index, 1);
    if (due.length === 0) this.arm_();
  }

  /** The timer's work: every check due, then the timer set for the next one. @internal */
  run_(): void {
    this.timer_ = undefined;
    const due = this.due_;
    const now = this.scheduler_.now();
    // Bounded: a check sets its next one at least 1 ms later, past `now`.
    for (let beat = due.at(-1); beat !== undefined && beat.dueAt_ <= now; beat = due.at(-1)) {
      due.pop();
      // A check may fail its link or ping it, and either may stop this heartbeat (its owner
      // closed) and open or close other connections, whose heartbeats join or leave.
      this.checking_ = beat;
      try {
        if (beat.checkSilence_() >= 0 && this.checking_ === beat) this.add_(beat);
      } catch (error) {
        // The owner's ping threw (an application's `ping`, a custom link's): reported, and the
        // checks go on, of the others and of this one if it did not stop, checked again 1 ms
        // later (its last ping is recorded, so it is not pinged again before its interval), as
        // its own timer would have run again; a throw must not leave every connection unchecked.
        reportException(error);
        if (this.checking_ === beat) {
          beat.dueAt_ = now + 1;
          this.add_(beat);
        }
      }
      this.checking_ = undefined;
    }
    this.arm_();
  }

  /**
   * Sets the timer for the earliest check, unless it is set for then already. A timer set for a
   * time already past has not run (a virtual clock that stopped, a blocked loop): it is set
   * again rather than trusted, so that no heartbeat waits on a timer that never comes.
   */
  private arm_(): void {
    const first = this.due_.at(-1);
    const now = this.scheduler_.now();
    if (first && this.timer_ && this.wakeAt_ <= first.dueAt_ && this.wakeAt_ >= now) return;
    this.timer_?.unsubscribe();
    this.timer_ = undefined;
    this.wakeAt_ = first ? first.dueAt_ : Number.POSITIVE_INFINITY;
    if (first) this.timer_ = this.scheduler_.schedule(runWheel, Math.max(0, first.dueAt_ - now), this);
  }
}

const wheels = new WeakMap<SchedulerLike, WeakMap<object, HeartbeatWheel>>();

/**
 * The wheel of `scheduler` under the timer functions in place now. The default scheduler reads
 * the global `setInterval` (and `performance.now`) at each call, which fake timers replace
 * (`vi.useFakeTimers()`): heartbeats started under them get a wheel of their own, so that those
 * started before keep their real timer and clock once the fakes are gone, as each heartbeat's
 * own timer did (one wheel for both would be left on a fake timer that never runs again).
 * @internal
 */
export function wheelOf(scheduler: SchedulerLike): HeartbeatWheel {
  let byTimers = wheels.get(scheduler);
  if (byTimers === undefined) {
    byTimers = new WeakMap();
    wheels.set(scheduler, byTimers);
  }
  const timers = globalThis.setInterval;
  let wheel = byTimers.get(timers);
  if (wheel === undefined) {
    wheel = new HeartbeatWheel(scheduler);
    byTimers.set(timers, wheel);
  }
  return wheel;
}

/** The timer of every wheel (its state is the wheel): no closure per wheel. */
function runWheel(this: SchedulerAction<HeartbeatWheel>, wheel?: HeartbeatWheel): void {
  wheel!.run_();
}

/**
 * From now on, every heartbeat (`attach`'s, the `heartbeat` operator's) is checked by one timer
 * per scheduler, shared by all, instead of a timer each: about 350 B less per idle connection
 * (an rxjs action, a Node `Timeout` and their functions). The checks run when due, as before.
 * Called by the Node package at its import; a browser bundle, which runs no heartbeat by default,
 * does not carry it. Idempotent.
 */
export function enableSharedHeartbeats(): void {
  setHeartbeatChecks(wheelOf);
}
