import type { SchedulerAction, SchedulerLike, Subscription } from 'rxjs';
// From its module, as engine/clock.ts does: not RxJS's index (its CommonJS root loads all of rxjs).
import { intervalProvider } from 'rxjs/internal/scheduler/intervalProvider';
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
   * A binary min-heap by due time (each heartbeat knows its place, `wheelIndex_`): a check, an
   * add and a removal cost O(log n). A sorted array moved every entry on each check (the heartbeat
   * checked goes last), O(n) per check and so O(n^2) per interval: 20,000 heartbeats took 40% of
   * a core and fell behind, 100,000 blocked the event loop for tens of seconds.
   */
  private readonly heap_: HeartbeatTimer[] = [];
  private timer_: Subscription | undefined;
  /** The heartbeat being checked, until it stops (its owner closed) during its check. */
  private checking_: HeartbeatTimer | undefined;
  /** True while {@link run_} checks: it sets the timer once, at its end, not at each re-add. */
  private running_ = false;
  /** When the timer is set to run; Infinity when none is set. */
  private wakeAt_ = Number.POSITIVE_INFINITY;
  /** @internal */
  readonly scheduler_: SchedulerLike;

  constructor(scheduler: SchedulerLike) {
    this.scheduler_ = scheduler;
  }

  add_(beat: HeartbeatTimer): void {
    this.heap_.push(beat);
    this.up_(this.heap_.length - 1);
    if (!this.running_) this.arm_();
  }

  remove_(beat: HeartbeatTimer): void {
    if (beat === this.checking_) this.checking_ = undefined;
    const index = beat.wheelIndex_;
    if (index === undefined || this.heap_[index] !== beat) return;
    this.take_(index);
    if (this.heap_.length === 0 && !this.running_) this.arm_();
  }

  /** Takes the heartbeat at `index` out of the heap. */
  private take_(index: number): void {
    const heap = this.heap_;
    heap[index]!.wheelIndex_ = undefined;
    const last = heap.pop()!;
    if (index === heap.length) return;
    heap[index] = last;
    if (index > 0 && heap[(index - 1) >> 1]!.dueAt_ > last.dueAt_) this.up_(index);
    else this.down_(index);
  }

  /** Moves the heartbeat at `index` towards the root while it is due before its parent. */
  private up_(index: number): void {
    const heap = this.heap_;
    const beat = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.dueAt_ <= beat.dueAt_) break;
      heap[index] = parent;
      parent.wheelIndex_ = index;
      index = parentIndex;
    }
    heap[index] = beat;
    beat.wheelIndex_ = index;
  }

  /** Moves the heartbeat at `index` towards the leaves while a child is due before it. */
  private down_(index: number): void {
    const heap = this.heap_;
    const beat = heap[index]!;
    const length = heap.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1]!.dueAt_ < heap[child]!.dueAt_) child++;
      const next = heap[child]!;
      if (next.dueAt_ >= beat.dueAt_) break;
      heap[index] = next;
      next.wheelIndex_ = index;
      index = child;
    }
    heap[index] = beat;
    beat.wheelIndex_ = index;
  }

  /** The timer's work: every check due, then the timer set for the next one. @internal */
  run_(): void {
    this.timer_ = undefined;
    const heap = this.heap_;
    const now = this.scheduler_.now();
    this.running_ = true;
    // Bounded: a check sets its next one at least 1 ms later, past `now`.
    for (let beat = heap[0]; beat !== undefined && beat.dueAt_ <= now; beat = heap[0]) {
      this.take_(0);
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
    this.running_ = false;
    this.arm_();
  }

  /**
   * Sets the timer for the earliest check, unless it is set for then already. A timer set for a
   * time already past has not run (a virtual clock that stopped, a blocked loop): it is set
   * again rather than trusted, so that no heartbeat waits on a timer that never comes.
   */
  private arm_(): void {
    const first = this.heap_[0];
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
  // Inside `TestScheduler.run()` RxJS's timer seam (which the default scheduler and
  // `asyncScheduler` set their timers through) is virtual while the global `setInterval` is not:
  // keyed by the global alone, a live heartbeat's wheel would be re-armed on a virtual timer,
  // run in virtual time (and time out) during the flush, and never run again after it.
  const timers: object = intervalProvider.delegate ?? globalThis.setInterval;
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
 * Called by the Node and Deno packages at their import; a browser bundle, which runs no heartbeat by default,
 * does not carry it. Idempotent.
 */
export function enableSharedHeartbeats(): void {
  setHeartbeatChecks(wheelOf);
}
