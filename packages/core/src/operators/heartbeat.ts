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
 * of life, one timer checking the silence. A class, with a shared timer function, rather than a
 * closure per link: an idle connection keeps it for as long as it lives.
 * @internal
 */
export class HeartbeatTimer {
  private readonly intervalMs_: number;
  private readonly timeoutMs_: number;
  private readonly tick_: number;
  /** A timestamp per message, checked by one timer, instead of a timer reset per message. */
  private lastSeen_: number;
  private lastPing_: number;
  private dueAt_: number;
  /** While silence is being confirmed: when the confirmation ends. */
  private graceUntil_: number | undefined;
  private readonly timer_: Subscription;
  private readonly scheduler_: SchedulerLike;

  private readonly owner_: HeartbeatOwner;

  constructor(options: HeartbeatTimingOptions, scheduler: SchedulerLike | undefined, owner: HeartbeatOwner) {
    this.owner_ = owner;
    this.scheduler_ = scheduler ?? monotonicScheduler;
    const intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    const timeoutMs = options.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.intervalMs_ = intervalMs;
    this.timeoutMs_ = timeoutMs;
    const tick = Math.max(1, Math.min(intervalMs, timeoutMs));
    this.tick_ = tick;
    this.lastSeen_ = this.lastPing_ = this.scheduler_.now();
    this.dueAt_ = this.lastSeen_ + tick;
    this.timer_ = this.scheduler_.schedule(checkSilence, tick, this);
  }

  /** A sign of life from the peer: a message, a pong. */
  seen_(): void {
    this.lastSeen_ = this.scheduler_.now();
  }

  stop_(): void {
    this.timer_.unsubscribe();
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

/** The check timer of every {@link HeartbeatTimer} (its state is the timer): no closure per link. */
function checkSilence(this: SchedulerAction<HeartbeatTimer>, beat?: HeartbeatTimer): void {
  const delay = beat!.checkSilence_();
  if (delay >= 0) this.schedule(beat, delay);
}
