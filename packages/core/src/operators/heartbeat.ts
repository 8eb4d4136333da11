import { type MonoTypeOperatorFunction, Observable, type SchedulerLike } from 'rxjs';
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
  const intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
  const scheduler = options.scheduler ?? monotonicScheduler;
  const tick = Math.max(1, Math.min(intervalMs, timeoutMs));
  return (source) =>
    new Observable<T>((subscriber) => {
      // A timestamp per message, checked by one periodic timer, instead of a timer reset per
      // message: the hot path stays one assignment.
      let lastSeen = scheduler.now();
      let lastPing = lastSeen;
      let dueAt = lastSeen + tick;
      /** While silence is being confirmed: when the confirmation ends. */
      let graceUntil: number | undefined;
      const check = scheduler.schedule(function (this: { schedule(state?: unknown, delay?: number): void }) {
        const now = scheduler.now();
        const silence = now - lastSeen;
        const wake = (delay: number) => {
          dueAt = now + delay;
          this.schedule(undefined, delay);
        };
        if (silence >= timeoutMs) {
          // Silence is judged only after input that arrived meanwhile was read. When the event
          // loop was blocked past the timeout, this timer runs before the socket reads queued
          // behind it, and would declare a healthy link dead and discard what it carried: so
          // confirm one turn of the loop later (I/O is read before the next timer), and if this
          // timer ran late (the loop was blocked, so the peer could not be heard), ping and give
          // the peer one more interval to answer now that we can hear it.
          if (graceUntil === undefined) {
            const late = now - dueAt > tick / 2;
            if (late) {
              lastPing = now;
              options.ping?.();
            }
            const grace = late ? tick : 1;
            graceUntil = now + grace;
            wake(grace);
            return;
          }
          if (now >= graceUntil) {
            subscriber.error(new HeartbeatTimeoutError(timeoutMs));
            return;
          }
          wake(graceUntil - now);
          return;
        }
        graceUntil = undefined;
        if (silence >= intervalMs && now - lastPing >= intervalMs) {
          lastPing = now;
          options.ping?.();
        }
        // Wake at the next moment something is due, not a fixed tick later: traffic just before a
        // check must not push the ping past the timeout (interval 10 s, timeout 15 s, traffic at
        // 1 s would otherwise time out at 16 s without ever having pinged).
        const pingDue = silence < intervalMs ? lastSeen + intervalMs : lastPing + intervalMs;
        wake(Math.max(1, Math.min(pingDue, lastSeen + timeoutMs) - now));
      }, tick);
      const pongs = options.pongs$?.subscribe(() => {
        lastSeen = scheduler.now();
      });
      const inner = source.subscribe({
        next: (value) => {
          lastSeen = scheduler.now();
          subscriber.next(value);
        },
        error: (error) => subscriber.error(error),
        complete: () => subscriber.complete(),
      });
      return () => {
        check.unsubscribe();
        pongs?.unsubscribe();
        inner.unsubscribe();
      };
    });
}
