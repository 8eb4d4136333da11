/**
 * Marble tests of the recovery operators: when they resubscribe, when they give up, when they
 * ping. Delays are exact (`jitter: 'none'` or an injected `random`), so every frame is asserted.
 */
import {
  backoff,
  failover,
  HeartbeatTimeoutError,
  HttpStatusError,
  heartbeat,
  LinkFailedError,
  recoverWith,
} from '@lifeline/core';
import type { RecoveryEvent } from '@lifeline/core/internal';
import { defer, retry, take } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, test } from 'vitest';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const failure = new LinkFailedError('reset', { syscallCode: 'ECONNRESET' });

describe('recoverWith', () => {
  test('resubscribes after each backoff wait and, when the attempts run out, errors with the original error', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('--#', undefined, failure);
      const result = source.pipe(
        recoverWith({
          maxAttemptsPerFailure: 3,
          backoff: { strategy: 'exponential', initialDelayMs: 10, factor: 2, jitter: 'none' },
          minUptimeMs: 0,
        }),
      );
      expectObservable(result).toBe('78ms #', undefined, failure);
      expectSubscriptions(source.subscriptions).toBe(['^-!', '12ms ^-!', '34ms ^-!', '76ms ^-!']);
    });
  });

  test('the error that reaches the subscriber is the one that started the failure, not the last attempt', () => {
    scheduler().run(({ cold, expectObservable }) => {
      const errors = [failure, new LinkFailedError('second'), new LinkFailedError('third')];
      let subscription = 0;
      const result = defer(() => cold('-#', undefined, errors[subscription++])).pipe(
        recoverWith({
          maxAttemptsPerFailure: 2,
          backoff: { strategy: 'exponential', initialDelayMs: 1, jitter: 'none', factor: 1 },
        }),
      );
      expectObservable(result).toBe('-----#', undefined, failure);
    });
  });

  test('an irrecoverable error passes through at once, with a single subscription', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const unauthorized = new HttpStatusError(401);
      const source = cold('a-#', undefined, unauthorized);
      expectObservable(source.pipe(recoverWith())).toBe('a-#', undefined, unauthorized);
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });

  test('values pass through; the lifetime budget (maxRecoveries) ends a source that keeps failing after values', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-a-#', undefined, failure);
      const result = source.pipe(
        recoverWith({
          maxAttemptsPerFailure: 1,
          maxRecoveries: 2,
          backoff: { initialDelayMs: 5, jitter: 'none' },
          minUptimeMs: 0,
        }),
      );
      expectObservable(result).toBe('-a-------a-------a-#', undefined, failure);
      expectSubscriptions(source.subscriptions).toBe(['^--!', '--------^--!', '----------------^--!']);
    });
  });

  test('a source that flaps inside minUptimeMs spends one budget; one that stays up starts a new failure', () => {
    const flapEvents: RecoveryEvent[] = [];
    const stableEvents: RecoveryEvent[] = [];
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const flapping = cold('a--#', undefined, failure);
      expectObservable(
        flapping.pipe(
          recoverWith({
            maxAttemptsPerFailure: 2,
            minUptimeMs: 5,
            backoff: { strategy: 'exponential', initialDelayMs: 1, factor: 1, jitter: 'none' },
            onEvent: (event) => flapEvents.push(event),
          }),
        ),
      ).toBe('a---a---a--#', undefined, failure);
      expectSubscriptions(flapping.subscriptions).toBe(['^--!', '----^--!', '--------^--!']);

      const stable = cold('a------#', undefined, failure);
      expectObservable(
        stable.pipe(
          recoverWith({
            maxAttemptsPerFailure: 2,
            maxRecoveries: 2,
            minUptimeMs: 5,
            backoff: { strategy: 'exponential', initialDelayMs: 1, factor: 1, jitter: 'none' },
            onEvent: (event) => stableEvents.push(event),
          }),
        ),
      ).toBe('a-------a-------a------#', undefined, failure);
      expectSubscriptions(stable.subscriptions).toBe([
        '^------!',
        '--------^------!',
        '----------------^------!',
      ]);
    });
    const steps = (events: RecoveryEvent[]) =>
      events.flatMap((event) =>
        event.type === 'recovering'
          ? [`attempt ${event.attempt}`]
          : event.type === 'recovered'
            ? ['recovered']
            : event.type === 'gave-up'
              ? [event.reason]
              : [],
      );
    expect(steps(flapEvents)).toEqual(['attempt 1', 'attempt 2', 'attempts-exhausted']);
    expect(steps(stableEvents)).toEqual([
      'attempt 1',
      'recovered',
      'attempt 1',
      'recovered',
      'recoveries-exhausted',
    ]);
  });

  test('a trigger emission cuts the backoff wait short', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = cold('--#', undefined, failure);
      const trigger = hot('----x');
      const result = source.pipe(
        recoverWith({ maxAttemptsPerFailure: 1, backoff: { initialDelayMs: 100, jitter: 'none' }, trigger }),
      );
      expectObservable(result).toBe('------#', undefined, failure);
      expectSubscriptions(source.subscriptions).toBe(['^-!', '----^-!']);
    });
  });

  test('while offline no attempt is made; it starts when online turns true', () => {
    scheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
      const source = cold('--#', undefined, failure);
      const online = hot('-f-------t', { f: false, t: true });
      const result = source.pipe(
        recoverWith({ maxAttemptsPerFailure: 1, backoff: { initialDelayMs: 1, jitter: 'none' }, online }),
      );
      expectObservable(result).toBe('-----------#', undefined, failure);
      expectSubscriptions(source.subscriptions).toBe(['^-!', '---------^-!']);
    });
  });

  test('unsubscribing tears the source down; nothing is resubscribed afterwards', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('--#', undefined, failure);
      const result = source.pipe(recoverWith({ backoff: { initialDelayMs: 10, jitter: 'none' } }));
      expectObservable(result, '^--------!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^-!');
    });
  });
});

describe('backoff', () => {
  test('jitter none: waits initialDelayMs, growing by factor, capped at maxDelayMs, for maxAttempts', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-#', undefined, failure);
      const result = source.pipe(
        backoff({
          strategy: 'exponential',
          initialDelayMs: 10,
          factor: 2,
          maxDelayMs: 30,
          jitter: 'none',
          maxAttempts: 4,
        }),
      );
      // Waits: 10, 20, 30 (capped), 30.
      expectObservable(result).toBe('95ms #', undefined, failure);
      expectSubscriptions(source.subscriptions).toBe(['^!', '11ms ^!', '32ms ^!', '63ms ^!', '94ms ^!']);
    });
  });

  test('full jitter with an injected random: the wait is floor(random x bound)', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-#', undefined, failure);
      const result = source.pipe(
        backoff({
          strategy: 'exponential',
          initialDelayMs: 10,
          factor: 2,
          maxAttempts: 3,
          random: () => 0.5,
        }),
      );
      // Bounds 10, 20, 40: waits 5, 10, 20.
      expectObservable(result).toBe('39ms #', undefined, failure);
      expectSubscriptions(source.subscriptions).toBe(['^!', '6ms ^!', '17ms ^!', '38ms ^!']);
    });
  });

  test('a value resets the attempts: a source that fails after each value is retried indefinitely', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a#', undefined, failure);
      const result = source.pipe(backoff({ initialDelayMs: 10, jitter: 'none', maxAttempts: 1 }), take(3));
      expectObservable(result).toBe('a----------a----------(a|)');
      expectSubscriptions(source.subscriptions).toBe(['^!', '11ms ^!', '22ms (^!)']);
    });
  });

  test('an irrecoverable error is not retried; isRecoverable can say otherwise', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const forbidden = new HttpStatusError(403);
      const plain = cold('-#', undefined, forbidden);
      expectObservable(plain.pipe(backoff({ initialDelayMs: 1, jitter: 'none' }))).toBe(
        '-#',
        undefined,
        forbidden,
      );
      expectSubscriptions(plain.subscriptions).toBe('^!');

      const overridden = cold('-#', undefined, forbidden);
      const result = overridden.pipe(
        backoff({
          strategy: 'exponential',
          initialDelayMs: 1,
          jitter: 'none',
          factor: 1,
          maxAttempts: 2,
          isRecoverable: () => true,
        }),
      );
      expectObservable(result).toBe('-----#', undefined, forbidden);
      expectSubscriptions(overridden.subscriptions).toBe(['^!', '--^!', '----^!']);
    });
  });
});

describe('heartbeat', () => {
  const timeout = (ms: number) => new HeartbeatTimeoutError(ms);

  test('pings after intervalMs of silence, again every interval, and errors after timeoutMs', () => {
    const ts = scheduler();
    const pings: number[] = [];
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('-');
      const result = source.pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 30, ping: () => pings.push(ts.now()) }),
      );
      // The error comes one tick after the timeout: input read meanwhile would have cancelled it.
      expectObservable(result).toBe('31ms #', undefined, timeout(30));
      expectSubscriptions(source.subscriptions).toBe('^ 30ms !');
    });
    expect(pings).toEqual([10, 20]);
  });

  test('activity resets the silence: the ping and the timeout count from the last message', () => {
    const ts = scheduler();
    const pings: number[] = [];
    ts.run(({ cold, expectObservable }) => {
      const source = cold('5ms a');
      const result = source.pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 30, ping: () => pings.push(ts.now()) }),
      );
      expectObservable(result).toBe('5ms a 30ms #', undefined, timeout(30));
    });
    expect(pings).toEqual([15, 25]);
  });

  test('traffic just before a check does not push the ping past the timeout', () => {
    const ts = scheduler();
    const pings: number[] = [];
    ts.run(({ cold, expectObservable }) => {
      const result = cold('-a').pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 15, ping: () => pings.push(ts.now()) }),
      );
      expectObservable(result).toBe('-a 15ms #', undefined, timeout(15));
    });
    expect(pings).toEqual([11]);
  });

  test('steady traffic never pings nor times out; values and completion pass through', () => {
    const ts = scheduler();
    const pings: number[] = [];
    ts.run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a 8ms b 8ms c 8ms d 8ms |');
      const result = source.pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 30, ping: () => pings.push(ts.now()) }),
      );
      expectObservable(result).toBe('a 8ms b 8ms c 8ms d 8ms |');
      expectSubscriptions(source.subscriptions).toBe('^ 35ms !');
    });
    expect(pings).toEqual([]);
  });

  test('pongs count as signs of life', () => {
    const ts = scheduler();
    const pings: number[] = [];
    ts.run(({ cold, hot, expectObservable }) => {
      const pongs$ = hot('8ms p');
      const result = cold('-').pipe(
        heartbeat({ intervalMs: 10, timeoutMs: 30, pongs$, ping: () => pings.push(ts.now()) }),
      );
      expectObservable(result).toBe('39ms #', undefined, timeout(30));
    });
    expect(pings).toEqual([18, 28]);
  });

  test('an error of the source passes through unchanged and stops the clock', () => {
    const ts = scheduler();
    const pings: number[] = [];
    ts.run(({ cold, expectObservable }) => {
      const result = cold('---#', undefined, failure).pipe(
        heartbeat({ intervalMs: 2, timeoutMs: 30, ping: () => pings.push(ts.now()) }),
      );
      expectObservable(result).toBe('---#', undefined, failure);
    });
    expect(pings).toEqual([2]);
  });
});

describe('failover', () => {
  test('tries the next endpoint on each resubscription, and prefers the last one that worked', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const sources = {
        a: cold('-#', undefined, failure),
        b: cold('-#', undefined, failure),
        c: cold('-x-#', undefined, failure),
      };
      const tried: string[] = [];
      const result = failover(['a', 'b', 'c'] as const, (endpoint) => {
        tried.push(endpoint);
        return sources[endpoint];
      }).pipe(retry(3));
      expectObservable(result).toBe('---x--x-#', undefined, failure);
      expectSubscriptions(sources.a.subscriptions).toBe('^!');
      expectSubscriptions(sources.b.subscriptions).toBe('-^!');
      expectSubscriptions(sources.c.subscriptions).toBe(['--^--!', '-----^--!']);
    });
  });

  test('wraps around when every endpoint fails', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const a = cold('-#', undefined, failure);
      const b = cold('-#', undefined, failure);
      const result = failover(['a', 'b'], (endpoint) => (endpoint === 'a' ? a : b)).pipe(retry(3));
      expectObservable(result).toBe('----#', undefined, failure);
      expectSubscriptions(a.subscriptions).toBe(['^!', '--^!']);
      expectSubscriptions(b.subscriptions).toBe(['-^!', '---^!']);
    });
  });

  test('composes with recoverWith: each attempt goes to the next endpoint', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const a = cold('-#', undefined, failure);
      const b = cold('-x|');
      const result = failover(['a', 'b'], (endpoint) => (endpoint === 'a' ? a : b)).pipe(
        recoverWith({ backoff: { initialDelayMs: 3, jitter: 'none' } }),
      );
      expectObservable(result).toBe('-----x|');
      expectSubscriptions(a.subscriptions).toBe('^!');
      expectSubscriptions(b.subscriptions).toBe('----^-!');
    });
  });

  test('refuses an empty endpoint list', () => {
    expect(() => failover([], () => defer(() => []))).toThrow(RangeError);
  });
});
