import {
  type MonoTypeOperatorFunction,
  Observable,
  type SchedulerAction,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { monotonicScheduler } from '../engine/clock.js';
import { HeartbeatTimeoutError } from '../engine/errors.js';

/** When a heartbeat pings and when it gives up: the part of {@link HeartbeatOptions} `attach` takes. */
export interface HeartbeatTimingOptions {
  /**
   * After this much silence from the peer, `ping` is called (again every interval while silent);
   * in ms, from 1 to 2^31 - 1.
   * @default 10_000
   */
  intervalMs?: number;
  /**
   * After this much silence, the stream errors with a {@link HeartbeatTimeoutError} (recoverable):
   * the link is presumed half-open. In ms, from 1 to 2^31 - 1.
   * @default 30_000
   */
  timeoutMs?: number;
}

/** Options of {@link heartbeat}. */
export interface HeartbeatOptions extends HeartbeatTimingOptions {
  /** Asks the peer for a sign of life (a WebSocket ping, an application ping message). */
  ping?: () => void;
  /** Signs of life that are not messages (pong frames). */
  pongs$?: Observable<unknown>;
  /**
   * Drives the check timer, and its `now()` measures the silence: it must be monotonic, or a
   * wall clock set back would hold off the timeout by as much.
   * @default monotonicScheduler (asyncScheduler's timers, {@link monotonicNow} as the clock)
   */
  scheduler?: SchedulerLike;
}

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 30_000;

/**
 * Turns silence into a recoverable error. Every value (and every pong) counts as a sign of life;
 * after `intervalMs` of silence it pings, after `timeoutMs` it errors with {@link HeartbeatTimeoutError}.
 *
 * @example
 * ```ts
 * link.messages$.pipe(heartbeat({ intervalMs: 5_000, timeoutMs: 15_000, ping: () => link.ping?.() }))
 * ```
 */
export function heartbeat<T>(options: HeartbeatOptions = {}): MonoTypeOperatorFunction<T> {
  return (source) =>
    new Observable<T>((subscriber) => {
      const beat = new HeartbeatTimer(options, options.scheduler, {
        beatPing_: () => options.ping?.(),
        linkFailed_: (error) => subscriber.error(error),
      });
      const pongs = options.pongs$?.subscribe(() => beat.seen_());
      const inner = source.subscribe({
        next: (value) => {
          beat.seen_();
          subscriber.next(value);
        },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
      return () => {
        beat.stop_();
        pongs?.unsubscribe();
        inner.unsubscribe();
      };
    });
}

/**
 * What a {@link HeartbeatTimer} calls: to ping, and once, when the silence lasted `timeoutMs`
 * (named as `attach`'s reader method for a failed link, which it is). @internal
 */
export interface HeartbeatOwner {
  beatPing_(): void;
  linkFailed_(error: HeartbeatTimeoutError): void;
}

/**
 * The heartbeat's clock, for {@link heartbeat} and for `attach`, which feeds it from the link
 * directly (no operator and subscriptions per link): {@link HeartbeatTimer.seen_} on every sign
 * of life, a check of the silence when it is due. A class rather than a closure per link, and
 * its checks run by one timer for every heartbeat on the same scheduler (a {@link HeartbeatWheel})
 * rather than a timer each: an idle connection keeps it for as long as it lives.
 * @internal
 */
export class HeartbeatTimer {
  private readonly intervalMs_: number;
  private readonly timeoutMs_: number;
  private readonly tick_: number;
  /** A timestamp per message, checked when due, instead of a timer reset per message. */
  private lastSeen_: number;
  private lastPing_: number;
  /** When the next check is due, on the scheduler's clock: the wheel's order. @internal */
  dueAt_: number;
  /** Where this heartbeat sits in its wheel's heap; -1 when not in it. @internal */
  slot_ = -1;
  /** While silence is being confirmed: when the confirmation ends. */
  private graceUntil_: number | undefined;
  private readonly wheel_: HeartbeatWheel;

  private readonly owner_: HeartbeatOwner;

  constructor(options: HeartbeatTimingOptions, scheduler: SchedulerLike | undefined, owner: HeartbeatOwner) {
    this.owner_ = owner;
    const wheel = wheelOf(scheduler ?? monotonicScheduler);
    this.wheel_ = wheel;
    const intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const timeoutMs = options.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.intervalMs_ = intervalMs;
    this.timeoutMs_ = timeoutMs;
    const tick = Math.max(1, Math.min(intervalMs, timeoutMs));
    this.tick_ = tick;
    this.lastSeen_ = this.lastPing_ = wheel.scheduler_.now();
    this.dueAt_ = this.lastSeen_ + tick;
    wheel.add_(this);
  }

  /** A sign of life from the peer: a message, a pong. */
  seen_(): void {
    this.lastSeen_ = this.wheel_.scheduler_.now();
  }

  stop_(): void {
    this.wheel_.remove_(this);
  }

  /** The timer's work; returns the delay to the next check, or -1 when the silence lasted too long. */
  checkSilence_(): number {
    const now = this.wheel_.scheduler_.now();
    const silence = now - this.lastSeen_;
    const timeoutMs = this.timeoutMs_;
    const intervalMs = this.intervalMs_;
    const tick = this.tick_;
    let delay: number;
    if (silence >= timeoutMs) {
      // Silence is judged only after input that arrived meanwhile was read. When the event
      // loop was blocked past the timeout, this timer runs before the socket reads queued
      // behind it, and would declare a healthy link dead and discard what it carried: so
      // confirm one turn of the loop later (I/O is read before the next timer), and if this
      // timer ran late (the loop was blocked, so the peer could not be heard), ping and give
      // the peer one more interval to answer now that we can hear it.
      const graceUntil = this.graceUntil_;
      if (graceUntil === undefined) {
        const late = now - this.dueAt_ > tick / 2;
        if (late) {
          this.lastPing_ = now;
          this.owner_.beatPing_();
        }
        delay = late ? tick : 1;
        this.graceUntil_ = now + delay;
      } else if (now >= graceUntil) {
        this.owner_.linkFailed_(new HeartbeatTimeoutError(timeoutMs));
        return -1;
      } else delay = graceUntil - now;
    } else {
      this.graceUntil_ = undefined;
      if (silence >= intervalMs && now - this.lastPing_ >= intervalMs) {
        this.lastPing_ = now;
        this.owner_.beatPing_();
      }
      // Wake at the next moment something is due, not a fixed tick later: traffic just before a
      // check must not push the ping past the timeout (interval 10 s, timeout 15 s, traffic at
      // 1 s would otherwise time out at 16 s without ever having pinged).
      const pingDue = silence < intervalMs ? this.lastSeen_ + intervalMs : this.lastPing_ + intervalMs;
      delay = Math.max(1, Math.min(pingDue, this.lastSeen_ + timeoutMs) - now);
    }
    this.dueAt_ = now + delay;
    return delay;
  }
}

/**
 * Every {@link HeartbeatTimer} on one scheduler, checked by one timer on that scheduler: a
 * binary min-heap by due time, the timer set for the earliest. A heartbeat's check runs when it
 * is due, as on a timer of its own (the timing the tests pin down is unchanged), but 1,000 idle
 * connections keep one timer instead of 1,000 (an rxjs action, a Node `Timeout` and their
 * functions, about 350 B each). Through the scheduler, so an injected one (a `TestScheduler`) or
 * fake timers drive it; empty, it holds no timer, so a closed connection lets the process exit.
 * @internal
 */
export class HeartbeatWheel {
  private readonly heap_: HeartbeatTimer[] = [];
  private timer_: Subscription | undefined;
  /** When the timer is set to run; Infinity when none is set. */
  private wakeAt_ = Number.POSITIVE_INFINITY;
  /** @internal */
  readonly scheduler_: SchedulerLike;

  constructor(scheduler: SchedulerLike) {
    this.scheduler_ = scheduler;
  }

  /** How many heartbeats it checks. */
  get size(): number {
    return this.heap_.length;
  }

  add_(beat: HeartbeatTimer): void {
    const heap = this.heap_;
    beat.slot_ = heap.length;
    heap.push(beat);
    this.up_(beat.slot_);
    this.arm_();
  }

  remove_(beat: HeartbeatTimer): void {
    const slot = beat.slot_;
    if (slot < 0) return;
    beat.slot_ = -1;
    const heap = this.heap_;
    const last = heap.pop()!;
    if (last !== beat) {
      heap[slot] = last;
      last.slot_ = slot;
      this.down_(slot);
      this.up_(last.slot_);
    }
    if (heap.length === 0) this.disarm_();
  }

  /** The timer's work: every check due, then the timer set for the next one. @internal */
  run_(): void {
    this.timer_ = undefined;
    this.wakeAt_ = Number.POSITIVE_INFINITY;
    const heap = this.heap_;
    const now = this.scheduler_.now();
    // Bounded: a check reschedules its heartbeat at least 1 ms later, past `now`.
    while (heap.length > 0 && heap[0]!.dueAt_ <= now) {
      const beat = heap[0]!;
      this.remove_(beat);
      // A check may fail its link (the owner stops the heartbeat: already out of the heap), or
      // ping it; either may open or close other connections, whose heartbeats join or leave.
      if (beat.checkSilence_() >= 0 && beat.slot_ < 0) this.add_(beat);
    }
    this.arm_();
  }

  /** Sets the timer for the earliest check, unless it is set for then already. */
  private arm_(): void {
    const first = this.heap_[0];
    if (first === undefined) {
      this.disarm_();
      return;
    }
    const now = this.scheduler_.now();
    // A timer set for a time already past has not run (a stopped virtual clock, a blocked
    // loop): set again rather than trusted, so no heartbeat waits on a timer that never runs.
    if (this.timer_ !== undefined && this.wakeAt_ <= first.dueAt_ && this.wakeAt_ >= now) return;
    this.timer_?.unsubscribe();
    this.wakeAt_ = first.dueAt_;
    this.timer_ = this.scheduler_.schedule(runWheel, Math.max(0, first.dueAt_ - now), this);
  }

  private disarm_(): void {
    this.timer_?.unsubscribe();
    this.timer_ = undefined;
    this.wakeAt_ = Number.POSITIVE_INFINITY;
  }

  private up_(slot: number): void {
    const heap = this.heap_;
    const beat = heap[slot]!;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot]!;
      if (parent.dueAt_ <= beat.dueAt_) break;
      heap[slot] = parent;
      parent.slot_ = slot;
      slot = parentSlot;
    }
    heap[slot] = beat;
    beat.slot_ = slot;
  }

  private down_(slot: number): void {
    const heap = this.heap_;
    const length = heap.length;
    const beat = heap[slot]!;
    for (;;) {
      let child = 2 * slot + 1;
      if (child >= length) break;
      if (child + 1 < length && heap[child + 1]!.dueAt_ < heap[child]!.dueAt_) child++;
      const next = heap[child]!;
      if (next.dueAt_ >= beat.dueAt_) break;
      heap[slot] = next;
      next.slot_ = slot;
      slot = child;
    }
    heap[slot] = beat;
    beat.slot_ = slot;
  }
}

const wheels = new WeakMap<SchedulerLike, HeartbeatWheel>();

/** The one wheel of `scheduler`. @internal */
export function wheelOf(scheduler: SchedulerLike): HeartbeatWheel {
  let wheel = wheels.get(scheduler);
  if (wheel === undefined) {
    wheel = new HeartbeatWheel(scheduler);
    wheels.set(scheduler, wheel);
  }
  return wheel;
}

/** The timer of every wheel (its state is the wheel): no closure per wheel. */
function runWheel(this: SchedulerAction<HeartbeatWheel>, wheel?: HeartbeatWheel): void {
  wheel!.run_();
}
