/**
 * Progress, not uptime, ends a failure: a recovered link that carries traffic from the peer resets
 * the per-failure budget and the backoff; one that opens and dies silently is one more attempt.
 * At default options, a server that crash-loops (each life shorter than minUptimeMs) is followed
 * through every life without giving up.
 */
import { attach, type ConnectionState } from '@lifeline/core';
import {
  DEFAULT_BACKOFF,
  DEFAULT_MAX_ATTEMPTS_PER_FAILURE,
  MIN_PROGRESS_UPTIME_MS,
} from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { recordStates, reset } from './support.js';

afterEach(() => {
  vi.useRealTimers();
});

function attempts(states: readonly ConnectionState[]): number[] {
  return states.flatMap((state) => (state.status === 'recovering' ? [state.attempt] : []));
}

describe('progress ends a failure', () => {
  test('a link that carries a message resets the attempt count and the backoff, before minUptimeMs', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = attach(transport, {
      maxAttemptsPerFailure: 3,
      backoff: { initialDelayMs: 10, jitter: 'none', strategy: 'exponential' },
    });
    const states = recordStates(conn);
    await vi.advanceTimersByTimeAsync(0);
    // Ten server lives of 500 ms each (under the default 2 s minUptimeMs), each carrying traffic.
    for (let life = 0; life < 10; life++) {
      transport.current!.fail(reset(`life ${life}`));
      await vi.advanceTimersByTimeAsync(10);
      expect(conn.state$.value.status).toBe('open');
      transport.current!.send(`hello from life ${life + 1}`);
      await vi.advanceTimersByTimeAsync(500);
    }
    expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: 10 });
    // Each failure took exactly one attempt, at the initial delay: nothing carried over.
    expect(attempts(states)).toEqual(Array(10).fill(1));
    expect(
      states.filter((s) => s.status === 'recovering').map((s) => (s as { delayMs: number }).delayMs),
    ).toEqual(Array(10).fill(10));
    conn.close();
  });

  test('a link that opens and dies silently is one more attempt of the same failure', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = attach(transport, {
      maxAttemptsPerFailure: 3,
      backoff: { initialDelayMs: 10, jitter: 'none', strategy: 'exponential' },
    });
    const states = recordStates(conn);
    await vi.advanceTimersByTimeAsync(0);
    const original = reset('original');
    transport.current!.fail(original);
    for (let flap = 0; flap < 3; flap++) {
      await vi.advanceTimersByTimeAsync(10 * 2 ** flap);
      expect(conn.state$.value.status).toBe('open');
      // Accepts and drops at once: no message, no pong.
      transport.current!.fail(reset(`flap ${flap}`));
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'attempts-exhausted', error: original });
    expect(attempts(states)).toEqual([1, 2, 3]);
  });

  test('sends written on a link are not progress: a server that accepts and drops keeps spending the budget', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = attach(transport, {
      maxAttemptsPerFailure: 3,
      backoff: { initialDelayMs: 10, jitter: 'none' },
    });
    await vi.advanceTimersByTimeAsync(0);
    transport.current!.fail(reset('original'));
    const sends: Promise<void>[] = [];
    for (let flap = 0; flap < 3; flap++) {
      await vi.advanceTimersByTimeAsync(100);
      sends.push(conn.send(`m${flap}`).catch(() => {}));
      await vi.advanceTimersByTimeAsync(0);
      transport.current?.fail(reset(`flap ${flap}`));
    }
    await vi.advanceTimersByTimeAsync(1_000);
    expect(conn.state$.value).toMatchObject({ status: 'closed', reason: 'attempts-exhausted' });
    await Promise.all(sends);
  });
});

describe('defaults: a crash loop is followed through every server life', () => {
  test('30 server lives of 1 s with 0.5 s outages: never gives up, one attempt budget per failure', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = attach(transport);
    const states = recordStates(conn);
    await vi.advanceTimersByTimeAsync(0);
    let lives = 0;
    for (let life = 0; life < 30; life++) {
      transport.refuseOpens();
      transport.current!.fail(reset(`kill ${life}`));
      await vi.advanceTimersByTimeAsync(500);
      transport.acceptOpens();
      // The server is back: the client must be open again within a bound relative to the outage.
      for (let waited = 0; conn.state$.value.status !== 'open' && waited < 1_000; waited += 10) {
        await vi.advanceTimersByTimeAsync(10);
      }
      expect(conn.state$.value.status, `life ${life}`).toBe('open');
      lives++;
      transport.current!.send(`event ${life}`);
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(lives).toBe(30);
    expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: 30 });
    // Attempts made during one 0.5 s outage stay well inside the per-failure budget.
    expect(Math.max(...attempts(states))).toBeLessThan(DEFAULT_MAX_ATTEMPTS_PER_FAILURE / 4);
    conn.close();
  });

  test('a 2-minute outage is ridden out at default options', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = attach(transport);
    const states = recordStates(conn);
    await vi.advanceTimersByTimeAsync(0);
    transport.refuseOpens();
    transport.current!.fail(reset('outage'));
    await vi.advanceTimersByTimeAsync(120_000);
    expect(conn.state$.value.status).toBe('recovering');
    transport.acceptOpens();
    // The wait in progress is at most a fifth of the outage (24 s) plus the attempt.
    await vi.advanceTimersByTimeAsync(DEFAULT_BACKOFF.ratio * 120_000 + 1);
    expect(conn.state$.value).toMatchObject({ status: 'open' });
    const made = Math.max(...attempts(states));
    expect(made).toBeGreaterThan(10);
    expect(made).toBeLessThan(DEFAULT_MAX_ATTEMPTS_PER_FAILURE);
    conn.close();
  });
});

describe('traffic from a link that dies at once is not progress', () => {
  test('a server that greets and dies within MIN_PROGRESS_UPTIME_MS keeps spending one failure budget', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = attach(transport, { maxAttemptsPerFailure: 5 });
    const states = recordStates(conn);
    await vi.advanceTimersByTimeAsync(0);
    const original = reset('original');
    transport.current!.fail(original);
    // Every reopened link says hello, then dies 10 ms later (overload shedding, a poison message).
    const greeter = transport.connections$.subscribe((peer) => {
      if (peer.id === 1) return;
      peer.send('hello');
      setTimeout(() => peer.fail(reset(`greet-and-die ${peer.id}`)), 10);
    });
    await vi.advanceTimersByTimeAsync(120_000);
    greeter.unsubscribe();
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'attempts-exhausted', error: original });
    expect(attempts(states)).toEqual([1, 2, 3, 4, 5]);
    expect(transport.openAttempts).toBe(1 + 5);
  });

  test('one that lives past MIN_PROGRESS_UPTIME_MS after greeting ends the failure then', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = attach(transport, { maxAttemptsPerFailure: 5 });
    await vi.advanceTimersByTimeAsync(0);
    transport.current!.fail(reset('original'));
    for (let waited = 0; conn.state$.value.status !== 'open' && waited < 1_000; waited += 10) {
      await vi.advanceTimersByTimeAsync(10);
    }
    transport.current!.send('hello');
    await vi.advanceTimersByTimeAsync(MIN_PROGRESS_UPTIME_MS - 100);
    expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: 0 });
    await vi.advanceTimersByTimeAsync(100);
    expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: 1 });
    conn.close();
  });
});
