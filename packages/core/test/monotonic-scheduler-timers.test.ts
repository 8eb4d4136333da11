/**
 * The default scheduler's timers (`monotonicScheduler`, engine/clock.ts) set without
 * `asyncScheduler`'s classes (issue 13, bundle bytes): they must behave as `asyncScheduler`'s
 * actions do, which every timer of the library relied on. Each case runs the same steps on both
 * schedulers and compares, under fake timers (which replace the globals RxJS's timer seam reads)
 * and inside `TestScheduler.run()` (which points that seam at virtual time).
 */
import { every, monotonicScheduler, unrefTimer } from '@lifeline/core/internal';
import { asyncScheduler, type SchedulerAction, type SchedulerLike, Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, describe, expect, test, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});

const SCHEDULERS: [string, SchedulerLike][] = [
  ['monotonicScheduler', monotonicScheduler],
  ['asyncScheduler', asyncScheduler],
];

describe.each(SCHEDULERS)('%s under fake timers', (_name, scheduler) => {
  test('a one-shot runs once at its delay, with its state and the action as `this`, then holds no timer', () => {
    vi.useFakeTimers();
    const runs: [number, unknown][] = [];
    let self: unknown;
    const start = performance.now();
    const action = scheduler.schedule(
      function (this: SchedulerAction<string>, state) {
        self = this;
        runs.push([performance.now() - start, state]);
      },
      100,
      'state',
    );
    expect(action).toBeInstanceOf(Subscription);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99);
    expect(runs).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(runs).toEqual([[100, 'state']]);
    expect(self).toBe(action);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(runs).toHaveLength(1);
    expect(action.closed).toBe(false);
  });

  test('rescheduling itself with the same delay keeps one interval; unsubscribe clears it', () => {
    vi.useFakeTimers();
    const setInterval = vi.spyOn(globalThis, 'setInterval');
    let count = 0;
    const timer = every(50, () => count++, scheduler);
    vi.advanceTimersByTime(500);
    expect(count).toBe(10);
    expect(setInterval).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(1);
    timer.unsubscribe();
    expect(timer.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(500);
    expect(count).toBe(10);
  });

  test('rescheduling with another delay, or from outside its work, moves the timer', () => {
    vi.useFakeTimers();
    const runs: number[] = [];
    const start = performance.now();
    scheduler.schedule<number>(function (this: SchedulerAction<number>, delay = 10) {
      runs.push(performance.now() - start);
      if (delay < 40) this.schedule(delay * 2, delay * 2);
    });
    vi.advanceTimersByTime(200);
    expect(runs).toEqual([0, 20, 60]);
    expect(vi.getTimerCount()).toBe(0);
    // From outside: the pending timer is replaced, not added to.
    const outside = scheduler.schedule(() => runs.push(-1), 100);
    (outside as unknown as SchedulerAction<unknown>).schedule(undefined, 30);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(30);
    expect(runs.at(-1)).toBe(-1);
    expect(vi.getTimerCount()).toBe(0);
  });

  test('a throwing action is cancelled and its error reaches the host', () => {
    vi.useFakeTimers();
    let calls = 0;
    const action = scheduler.schedule(function (this: SchedulerAction<unknown>) {
      calls++;
      this.schedule(undefined, 10);
      throw new Error('boom');
    }, 10);
    expect(() => vi.advanceTimersByTime(10)).toThrow('boom');
    expect(action.closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(100);
    expect(calls).toBe(1);
  });
});

test('TestScheduler.run() drives the default scheduler in virtual time, as it does asyncScheduler', () => {
  const testScheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
  testScheduler.run(({ flush }) => {
    const seen: [string, number][] = [];
    const repeating: Subscription[] = [];
    for (const [name, scheduler] of SCHEDULERS) {
      scheduler.schedule(() => seen.push([name, testScheduler.now()]), 5);
      repeating.push(every(3, () => seen.push([`${name} every`, testScheduler.now()]), scheduler));
    }
    // The repeating timers would run forever: stopped at 7 ms of virtual time.
    monotonicScheduler.schedule(() => {
      for (const timer of repeating) timer.unsubscribe();
    }, 7);
    flush();
    expect(seen).toEqual([
      ['monotonicScheduler every', 3],
      ['asyncScheduler every', 3],
      ['monotonicScheduler', 5],
      ['asyncScheduler', 5],
      ['monotonicScheduler every', 6],
      ['asyncScheduler every', 6],
    ]);
  });
});

test('unrefTimer reaches the platform timer of a default-scheduler action (Node)', () => {
  const timer = unrefTimer(monotonicScheduler.schedule(() => {}, 60_000)) as Subscription & {
    id?: { hasRef?: () => boolean };
  };
  expect(timer.id?.hasRef?.()).toBe(false);
  timer.unsubscribe();
});
