// Shared heartbeat checks (issue 13, idle memory): with `enableSharedHeartbeats()` (what
// @lifeline/node installs at its import) every heartbeat on one scheduler is checked by one timer
// instead of one each, at the same times as before.
import { HeartbeatTimeoutError, heartbeat } from '@lifeline/core';
import { enableSharedHeartbeats } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import {
  NEVER,
  type SchedulerAction,
  type SchedulerLike,
  type Subscription,
  VirtualAction,
  VirtualTimeScheduler,
} from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { afterEach, beforeAll, describe, expect, onTestFinished, test, vi } from 'vitest';

beforeAll(() => {
  // Installed for this file only (each test file has its own module graph).
  enableSharedHeartbeats();
});

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const timeout = (ms: number) => new HeartbeatTimeoutError(ms);

/** Waits for a heartbeat on real timers to ping three more times: its timer still runs. */
async function pingsAgain(pings: number[]): Promise<void> {
  const before = pings.length;
  await waitFor(() => pings.length >= before + 3, {
    timeoutMs: 10_000,
    what: 'the real-timer heartbeat to ping again',
    state: () => ({ before, now: pings.length }),
  });
}

describe('heartbeats checked by one shared timer keep their timing', () => {
  test('three heartbeats of different timings on one scheduler ping and time out as each alone would', () => {
    const ts = scheduler();
    const pings: Record<string, number[]> = { a: [], b: [], c: [] };
    ts.run(({ cold, hot, expectObservable }) => {
      // The same cases as operators.test.ts, at once: silence; traffic at 5 ms; pongs at 8 ms.
      const silent = cold('-').pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 30, ping: () => pings.a!.push(ts.now()) }),
      );
      const talking = cold('5ms a').pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 30, ping: () => pings.b!.push(ts.now()) }),
      );
      const pongs$ = hot('8ms p');
      const ponging = cold('-').pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 30, pongs$, ping: () => pings.c!.push(ts.now()) }),
      );
      expectObservable(silent).toBe('31ms #', undefined, timeout(30));
      expectObservable(talking).toBe('5ms a 30ms #', undefined, timeout(30));
      expectObservable(ponging).toBe('39ms #', undefined, timeout(30));
    });
    expect(pings).toEqual({ a: [10, 20], b: [15, 25], c: [18, 28] });
  });

  test('traffic just before a check does not push the ping past the timeout', () => {
    const ts = scheduler();
    const pings: number[] = [];
    ts.run(({ cold, expectObservable }) => {
      const result = cold('-a').pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 15, ping: () => pings.push(ts.now()) }),
      );
      const other = cold('-').pipe(heartbeat({ intervalMs: 7, timeoutMs: 100 }));
      expectObservable(result).toBe('-a 15ms #', undefined, timeout(15));
      expectObservable(other, '^ 50ms !').toBe('-');
    });
    expect(pings).toEqual([11]);
  });
});

describe('one timer for many heartbeats', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('200 heartbeats on the default scheduler hold 1 timer, and none once they stop', async () => {
    vi.useFakeTimers();
    const subscriptions: Subscription[] = [];
    const started: number[] = [];
    const firstPing = new Map<number, number>();
    try {
      for (let i = 0; i < 200; i++) {
        started.push(performance.now());
        const ping = () => {
          if (!firstPing.has(i)) firstPing.set(i, performance.now());
        };
        subscriptions.push(
          NEVER.pipe(heartbeat({ intervalMs: 1_000 + i, timeoutMs: 60_000, ping })).subscribe(),
        );
        // Started at different times, with different intervals: 200 different due times.
        await vi.advanceTimersByTimeAsync(3);
      }
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(2_000);
      // Every check ran when it was due: each first ping one interval after its start.
      expect(firstPing.size).toBe(200);
      for (let i = 0; i < 200; i++) expect(firstPing.get(i)! - started[i]!).toBe(1_000 + i);
      expect(vi.getTimerCount()).toBe(1);
    } finally {
      for (const subscription of subscriptions) subscription.unsubscribe();
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  test('a heartbeat stopped from its own ping is not checked again, and leaves no timer', async () => {
    vi.useFakeTimers();
    const pings: number[] = [];
    let subscription: Subscription | undefined;
    subscription = NEVER.pipe(
      heartbeat({
        intervalMs: 100,
        timeoutMs: 1_000,
        ping: () => {
          pings.push(performance.now());
          subscription?.unsubscribe();
        },
      }),
    ).subscribe();
    const other = NEVER.pipe(heartbeat({ intervalMs: 5_000, timeoutMs: 60_000 })).subscribe();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pings).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(1);
    other.unsubscribe();
    expect(vi.getTimerCount()).toBe(0);
    subscription = undefined;
  });
});

describe('a check that throws', () => {
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  test("a heartbeat's ping that throws is reported, and every heartbeat on the shared timer still pings and times out", async () => {
    vi.useFakeTimers();
    const reported: unknown[] = [];
    vi.stubGlobal('reportError', (error: unknown) => reported.push(error));
    const failed: Record<string, number> = {};
    const pingsB: number[] = [];
    const start = performance.now();
    const a = NEVER.pipe(
      heartbeat({
        intervalMs: 100,
        timeoutMs: 1_000,
        ping: () => {
          throw new Error('ping bug');
        },
      }),
    ).subscribe({ error: () => (failed.a = performance.now() - start) });
    const b = NEVER.pipe(
      heartbeat({ intervalMs: 150, timeoutMs: 500, ping: () => pingsB.push(performance.now() - start) }),
    ).subscribe({ error: () => (failed.b = performance.now() - start) });
    let thrown = 0;
    for (let step = 0; step < 30 && Object.keys(failed).length < 2; step++) {
      try {
        await vi.advanceTimersByTimeAsync(100);
      } catch {
        thrown++;
      }
    }
    a.unsubscribe();
    b.unsubscribe();
    expect({ pingsB, b: failed.b }).toEqual({ pingsB: [150, 300, 450], b: 501 });
    expect(thrown).toBe(0);
    expect(failed.a).toBeGreaterThanOrEqual(1_000);
    expect(failed.a).toBeLessThanOrEqual(1_002);
    expect(reported.length).toBeGreaterThanOrEqual(9);
    expect(reported.every((error) => (error as Error).message === 'ping bug')).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('fake timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('a heartbeat started under real timers still pings once another ran under fake timers and they are gone', async () => {
    const pingsA: number[] = [];
    const a = NEVER.pipe(
      heartbeat({ intervalMs: 50, timeoutMs: 60_000, ping: () => pingsA.push(performance.now()) }),
    ).subscribe();
    onTestFinished(() => a.unsubscribe());
    await waitFor(() => pingsA.length >= 1, { timeoutMs: 10_000, what: 'a first ping' });
    vi.useFakeTimers();
    const pingsB: number[] = [];
    const b = NEVER.pipe(
      heartbeat({ intervalMs: 10, timeoutMs: 60_000, ping: () => pingsB.push(performance.now()) }),
    ).subscribe();
    await vi.advanceTimersByTimeAsync(35);
    b.unsubscribe();
    vi.useRealTimers();
    expect(pingsB).toHaveLength(3);
    await pingsAgain(pingsA);
  });
});

describe('TestScheduler.run()', () => {
  test('a heartbeat started under real timers still pings once another ran on the default scheduler inside TestScheduler.run()', async () => {
    // run() points RxJS's timer seam (and the default scheduler's clock) at virtual time without
    // touching the global setInterval: the wheel must not re-set a live heartbeat's timer there.
    const pingsA: number[] = [];
    const a = NEVER.pipe(
      heartbeat({ intervalMs: 50, timeoutMs: 60_000, ping: () => pingsA.push(performance.now()) }),
    ).subscribe();
    onTestFinished(() => a.unsubscribe());
    await waitFor(() => pingsA.length >= 1, { timeoutMs: 10_000, what: 'a first ping' });
    const pingsB: number[] = [];
    const errorsB: unknown[] = [];
    new TestScheduler((actual, expected) => expect(actual).toEqual(expected)).run(({ flush }) => {
      NEVER.pipe(heartbeat({ intervalMs: 10, timeoutMs: 1_000, ping: () => pingsB.push(1) })).subscribe({
        error: (error) => errorsB.push(error),
      });
      flush();
    });
    // The virtual heartbeat ran in virtual time: pinged every 10 ms, timed out at 1 s.
    expect(pingsB.length).toBeGreaterThanOrEqual(99);
    expect(errorsB).toHaveLength(1);
    await pingsAgain(pingsA);
  });
});

describe('cost at scale', () => {
  test('50,000 heartbeats with spread due times: every check runs when due, and one interval of checks is not O(n) each', () => {
    // The checks of one wheel used to be a sorted array that each check moved entirely (the
    // heartbeat just checked is due last): 50,000 heartbeats made 150,000 checks of 50,000 moves
    // each (tens of seconds; 100,000 on real timers blocked the event loop for 45 s).
    const scheduler = new VirtualTimeScheduler(VirtualAction, 3_999);
    const count = 50_000;
    const pings = new Map<number, number[]>();
    const subscriptions: Subscription[] = [];
    for (let i = 0; i < count; i++) {
      scheduler.frame = i % 1_000;
      subscriptions.push(
        NEVER.pipe(
          heartbeat({
            intervalMs: 1_000,
            timeoutMs: 3_600_000,
            scheduler,
            ping: () => {
              const at = pings.get(i);
              if (at) at.push(scheduler.now());
              else pings.set(i, [scheduler.now()]);
            },
          }),
        ).subscribe(),
      );
    }
    scheduler.frame = 0;
    const started = performance.now();
    scheduler.flush();
    const elapsedMs = performance.now() - started;
    for (const subscription of subscriptions) subscription.unsubscribe();
    expect(pings.size).toBe(count);
    let late = 0;
    for (const [i, at] of pings) {
      const offset = i % 1_000;
      if (at.join() !== [offset + 1_000, offset + 2_000, offset + 3_000].join()) late++;
    }
    expect(late).toBe(0);
    // About 0.1 s here; the sorted array took over 10 s. Generous for a loaded machine.
    expect(elapsedMs).toBeLessThan(5_000);
  });
});

describe('timers set per run', () => {
  test('1,000 heartbeats due at the same time: their checks set the wheel timer once per run, not once per heartbeat', () => {
    // Connections opened together (a fleet reconnecting after a deploy) have their checks due in
    // the same millisecond. When the timer fires late (a busy event loop: here every timer runs
    // 5 ms late), each re-added heartbeat used to re-set it (a clearInterval and a setInterval per
    // heartbeat checked).
    const virtual = new VirtualTimeScheduler(VirtualAction, 10_000);
    let timersSet = 0;
    const counting: SchedulerLike = {
      now: () => virtual.now(),
      schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay?: number, state?: T) {
        timersSet++;
        return virtual.schedule(work, (delay ?? 0) + 5, state);
      },
    };
    const count = 1_000;
    let pings = 0;
    const subscriptions: Subscription[] = [];
    for (let i = 0; i < count; i++) {
      subscriptions.push(
        NEVER.pipe(
          heartbeat({ intervalMs: 1_000, timeoutMs: 3_600_000, scheduler: counting, ping: () => pings++ }),
        ).subscribe(),
      );
    }
    onTestFinished(() => {
      for (const subscription of subscriptions) subscription.unsubscribe();
    });
    const before = timersSet;
    virtual.flush();
    // 10 s of virtual time: about 10 intervals, each pinging every heartbeat once, and one timer
    // set per interval's run.
    expect(pings).toBeGreaterThanOrEqual(9 * count);
    expect(timersSet - before).toBeLessThanOrEqual(2 * 11);
  });
});
