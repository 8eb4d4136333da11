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
 * What runs the checks of many heartbeats on one timer (`HeartbeatWheel`, heartbeat-wheel.ts):
 * each heartbeat joins when it starts, leaves when it stops, and has `checkSilence_` called when
 * its `dueAt_` comes. @internal
 */
export interface HeartbeatChecks {
  add_(beat: HeartbeatTimer): void;
  remove_(beat: HeartbeatTimer): void;
}

let sharedChecks: ((scheduler: SchedulerLike) => HeartbeatChecks) | undefined;

/**
 * Has every heartbeat started from now on checked by one timer per scheduler instead of a timer
 * each (see `enableSharedHeartbeats`). A seam rather than an import, like the diagnostics', so a
 * browser bundle, whose WebSocket cannot ping and so runs no heartbeat by default, does not carry
 * the shared timer's code. @internal
 */
export function setHeartbeatChecks(checksFor: (scheduler: SchedulerLike) => HeartbeatChecks): void {
  sharedChecks = checksFor;
}

/**
 * The heartbeat's clock, for {@link heartbeat} and for `attach`, which feeds it from the link
 * directly (no operator and subscriptions per link): {@link HeartbeatTimer.seen_} on every sign
 * of life, a check of the silence when it is due. A class rather than a closure per link; its
 * checks run on a timer of its own, or, where the platform installed them (Node), on one timer
 * shared by every heartbeat on the same scheduler: an idle connection keeps it as long as it lives.
 * @internal
 */
export class HeartbeatTimer {
  // `declare`d fields are assigned by the constructor (the build has no declarations for them),
  // or, as `timer_` and `wheelIndex_`, only where there is one: a heartbeat on the shared checks
  // keeps no timer field.
  declare private readonly intervalMs_: number;
  declare private readonly timeoutMs_: number;
  declare private readonly tick_: number;
  /** A timestamp per message, checked when due, instead of a timer reset per message. */
  declare private lastSeen_: number;
  declare private lastPing_: number;
  /** When the next check is due, on the scheduler's clock: the wheel's order. @internal */
  declare dueAt_: number;
  /** @internal Its place in its wheel's heap (heartbeat-wheel.ts); undefined when not in one. */
  declare wheelIndex_?: number | undefined;
  /** While silence is being confirmed: when the confirmation ends. */
  private graceUntil_: number | undefined;
  /** @internal */
  declare readonly scheduler_: SchedulerLike;
  /** The shared checks it joined, or its own timer. */
  declare private readonly checks_: HeartbeatChecks | undefined;
  declare private readonly timer_: Subscription | undefined;

  declare private readonly owner_: HeartbeatOwner;

  constructor(options: HeartbeatTimingOptions, scheduler: SchedulerLike | undefined, owner: HeartbeatOwner) {
    this.owner_ = owner;
    scheduler ??= monotonicScheduler;
    this.scheduler_ = scheduler;
    const intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const timeoutMs = options.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.intervalMs_ = intervalMs;
    this.timeoutMs_ = timeoutMs;
    const tick = Math.max(1, Math.min(intervalMs, timeoutMs));
    this.tick_ = tick;
    this.lastSeen_ = this.lastPing_ = scheduler.now();
    this.dueAt_ = this.lastSeen_ + tick;
    const checks = sharedChecks?.(scheduler);
    this.checks_ = checks;
    if (checks) checks.add_(this);
    else this.timer_ = scheduler.schedule(checkSilence, tick, this);
  }

  /** A sign of life from the peer: a message, a pong. */
  seen_(): void {
    this.lastSeen_ = this.scheduler_.now();
  }

  stop_(): void {
    this.timer_?.unsubscribe();
    this.checks_?.remove_(this);
  }

  /** The timer's work; returns the delay to the next check, or -1 when the silence lasted too long. */
  checkSilence_(): number {
    const now = this.scheduler_.now();
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

/** The check timer of a {@link HeartbeatTimer} on its own (its state is the timer): no closure per link. */
function checkSilence(this: SchedulerAction<HeartbeatTimer>, beat?: HeartbeatTimer): void {
  const delay = beat!.checkSilence_();
  if (delay >= 0) this.schedule(beat, delay);
}
