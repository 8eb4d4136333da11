/**
 * Nothing outlives a connection: after close, give-up or detach there is no timer left and no
 * subscription left on any link (counted through an observable whose teardown we count).
 */
import { backoff, type HAConnection, HttpStatusError, heartbeat, recoverWith } from '@lifeline/core';
import { concat, defer, NEVER, of, Subject, throwError } from 'rxjs';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { connect, countingTransport, reset } from './support.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A connection with every timer the engine has: heartbeat, minUptime window, backoff. */
async function busyConnection() {
  const counting = countingTransport<string>();
  const conn = connect(counting.transport, {
    heartbeat: { intervalMs: 1_000, timeoutMs: 3_000 },
    minUptimeMs: 10_000,
    backoff: { initialDelayMs: 500, jitter: 'none' },
  });
  const ended = { messages: false, events: false, state: false };
  conn.messages$.subscribe({ complete: () => (ended.messages = true) });
  conn.events$.subscribe({ complete: () => (ended.events = true) });
  conn.state$.subscribe({ complete: () => (ended.state = true) });
  await vi.advanceTimersByTimeAsync(0);
  expect(conn.state$.value.status).toBe('open');
  return { conn, counting, ended };
}

function expectNothingLeft(
  conn: HAConnection<string, string>,
  counting: ReturnType<typeof countingTransport<string>>,
  ended: Record<string, boolean>,
) {
  expect(conn.state$.value.status).toBe('closed');
  expect(vi.getTimerCount()).toBe(0);
  expect(counting.active).toBe(0);
  expect(counting.counts.subscribed).toBeGreaterThan(0);
  expect(ended).toEqual({ messages: true, events: true, state: true });
}

describe('after close()', () => {
  test('while open, with the heartbeat running', async () => {
    const { conn, counting, ended } = await busyConnection();
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    conn.close();
    expectNothingLeft(conn, counting, ended);
    expect(counting.memory.current!.open).toBe(false);
  });

  test('inside the minUptime window of a recovered link', async () => {
    const { conn, counting, ended } = await busyConnection();
    counting.memory.current!.fail();
    await vi.advanceTimersByTimeAsync(500);
    expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: 0 });
    conn.close();
    expectNothingLeft(conn, counting, ended);
  });

  test('during the backoff wait', async () => {
    const { conn, counting, ended } = await busyConnection();
    counting.memory.current!.fail();
    expect(conn.state$.value.status).toBe('recovering');
    conn.close();
    expectNothingLeft(conn, counting, ended);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(counting.memory.openAttempts).toBe(1);
  });

  test('during an open under way', async () => {
    const { conn, counting, ended } = await busyConnection();
    counting.memory.delayOpens(1_000);
    counting.memory.current!.fail();
    await vi.advanceTimersByTimeAsync(600);
    expect(counting.memory.openAttempts).toBe(2);
    conn.close();
    // The abort reaches the transport's open, whose delay ends at once: no timer, no link.
    expectNothingLeft(conn, counting, ended);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(counting.memory.peers).toHaveLength(1);
  });
});

describe('after give-up', () => {
  test('an irrecoverable failure', async () => {
    const { conn, counting, ended } = await busyConnection();
    counting.memory.current!.fail(new HttpStatusError(403));
    await vi.advanceTimersByTimeAsync(0);
    expectNothingLeft(conn, counting, ended);
  });

  test('attempts exhausted', async () => {
    const counting = countingTransport<string>();
    const conn = connect(counting.transport, {
      heartbeat: { intervalMs: 1_000, timeoutMs: 3_000 },
      maxAttemptsPerFailure: 3,
      backoff: { initialDelayMs: 100, jitter: 'none' },
    });
    const ended = { messages: false, events: false, state: false };
    conn.messages$.subscribe({ complete: () => (ended.messages = true) });
    conn.events$.subscribe({ complete: () => (ended.events = true) });
    conn.state$.subscribe({ complete: () => (ended.state = true) });
    await vi.advanceTimersByTimeAsync(0);
    counting.memory.refuseOpens();
    counting.memory.current!.fail(reset('x'));
    await vi.advanceTimersByTimeAsync(100 + 200 + 400);
    expect(conn.state$.value).toMatchObject({ status: 'closed', reason: 'attempts-exhausted' });
    expectNothingLeft(conn, counting, ended);
  });

  test('a heartbeat timeout while suspended', async () => {
    const { conn, counting, ended } = await busyConnection();
    conn.suspend();
    counting.memory.current!.halfOpen();
    await vi.advanceTimersByTimeAsync(3_001);
    expect(conn.state$.value).toMatchObject({ status: 'closed', reason: 'suspended' });
    expectNothingLeft(conn, counting, ended);
  });
});

describe('after detach()', () => {
  test('the engine lets go of the link (no subscription, no timer) but the link stays open', async () => {
    const { conn, counting, ended } = await busyConnection();
    const link = conn.detach();
    expectNothingLeft(conn, counting, ended);
    expect(link).toBe(counting.links[0]);
    expect(counting.memory.current!.open).toBe(true);
    link!.close();
  });

  test('inside the minUptime window', async () => {
    const { conn, counting, ended } = await busyConnection();
    counting.memory.current!.fail();
    await vi.advanceTimersByTimeAsync(500);
    const link = conn.detach();
    expectNothingLeft(conn, counting, ended);
    link!.close();
  });
});

describe('operators', () => {
  test('recoverWith unsubscribed inside the minUptime window leaves no timer', async () => {
    let subscriptions = 0;
    const source = defer(() =>
      ++subscriptions === 1
        ? concat(
            of(1),
            throwError(() => reset('once')),
          )
        : concat(of(2), NEVER),
    );
    const events: string[] = [];
    const values: number[] = [];
    const subscription = source
      .pipe(
        recoverWith({
          minUptimeMs: 5_000,
          backoff: { initialDelayMs: 10, jitter: 'none' },
          onEvent: (event) => events.push(event.type),
        }),
      )
      .subscribe((value) => values.push(value));
    await vi.advanceTimersByTimeAsync(10);
    expect(values).toEqual([1, 2]);
    // The recovered source is inside its minUptime window: the window's timer is the only one.
    expect(vi.getTimerCount()).toBe(1);
    subscription.unsubscribe();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(events).not.toContain('recovered');
  });

  test('heartbeat and backoff leave no timer once unsubscribed or errored', async () => {
    const silent = new Subject<string>();
    const subscription = silent.pipe(heartbeat({ intervalMs: 100, timeoutMs: 300 })).subscribe();
    expect(vi.getTimerCount()).toBe(1);
    subscription.unsubscribe();
    expect(vi.getTimerCount()).toBe(0);

    const errors: unknown[] = [];
    silent.pipe(heartbeat({ intervalMs: 100, timeoutMs: 300 })).subscribe({ error: (e) => errors.push(e) });
    await vi.advanceTimersByTimeAsync(301);
    expect(errors).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);

    const failing = throwError(() => reset('always'));
    failing
      .pipe(backoff({ initialDelayMs: 10, jitter: 'none', maxAttempts: 2 }))
      .subscribe({ error: (e) => errors.push(e) });
    await vi.advanceTimersByTimeAsync(10 + 20);
    expect(errors).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });
});
