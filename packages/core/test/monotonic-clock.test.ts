/**
 * Issue 10 item 9, client side: timeouts run on the monotonic clock, so a wall clock stepped
 * (NTP, a user, a resumed VM) neither holds off nor hastens them. `vi.setSystemTime` steps
 * `Date` only; `performance.now()` keeps running at the rate of the fake timers, as a real
 * monotonic clock does when the wall clock is set.
 */
import { HeartbeatTimeoutError, heartbeat } from '@lifeline/core';
import { monotonicScheduler } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { NEVER } from 'rxjs';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { connect, FAST } from './support.js';

const HOUR_MS = 3_600_000;

afterEach(() => {
  vi.useRealTimers();
});

describe('a stepped wall clock does not move the heartbeat', () => {
  test('the monotonic clock is the one fake timers drive, and Date steps do not reach it', () => {
    vi.useFakeTimers();
    const before = monotonicScheduler.now();
    vi.setSystemTime(Date.now() - HOUR_MS);
    expect(monotonicScheduler.now() - before).toBe(0);
    vi.advanceTimersByTime(250);
    expect(monotonicScheduler.now() - before).toBe(250);
  });

  for (const step of [-HOUR_MS, HOUR_MS]) {
    test(`clock stepped ${step < 0 ? 'back' : 'forward'} 1 h: silence still times out at timeoutMs, not before and not later`, () => {
      vi.useFakeTimers();
      const errors: unknown[] = [];
      const pings: number[] = [];
      const started = performance.now();
      const subscription = NEVER.pipe(
        heartbeat({ intervalMs: 100, timeoutMs: 500, ping: () => pings.push(performance.now() - started) }),
      ).subscribe({ error: (error) => errors.push(error) });
      vi.advanceTimersByTime(50);
      vi.setSystemTime(Date.now() + step);
      vi.advanceTimersByTime(449);
      expect(errors).toEqual([]);
      vi.advanceTimersByTime(2); // confirmed one tick after the timeout
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(HeartbeatTimeoutError);
      expect(pings).toEqual([100, 200, 300, 400]);
      subscription.unsubscribe();
    });
  }

  test('attach(): a half-open link is detected within timeoutMs after the client clock is set back 1 h', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, heartbeat: { intervalMs: 100, timeoutMs: 500 } });
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.state$.value.status).toBe('open');
    const downs: unknown[] = [];
    conn.events$.subscribe((event) => {
      if (event.type === 'link-down') downs.push(event.error);
    });
    vi.setSystemTime(Date.now() - HOUR_MS);
    // The peer never answers: the link is half-open.
    await vi.advanceTimersByTimeAsync(499);
    expect(downs).toEqual([]);
    await vi.advanceTimersByTimeAsync(2);
    expect(downs).toHaveLength(1);
    expect(downs[0]).toBeInstanceOf(HeartbeatTimeoutError);
  });
});
