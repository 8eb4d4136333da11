/**
 * User code runs inside the engine's notifications (state$, events$): closing, suspending or
 * sending from there must leave the engine as consistent as doing it from outside.
 */
import { ClosedByUserError, NotOpenError } from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { connect, countingTransport, reset, waitForState } from './support.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('re-entrant calls from notifications', () => {
  test('close() from a state$ subscriber on "recovering" makes no further attempt and leaves no timer', async () => {
    vi.useFakeTimers();
    const counting = countingTransport<string>();
    const conn = connect(counting.transport, {
      backoff: { initialDelayMs: 100, jitter: 'none' },
      minUptimeMs: 0,
    });
    conn.state$.subscribe((state) => {
      if (state.status === 'recovering') conn.close();
    });
    await vi.advanceTimersByTimeAsync(0);
    counting.memory.current!.fail(reset('x'));
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'user' });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(counting.memory.openAttempts).toBe(1);
    expect(counting.active).toBe(0);
  });

  test('suspend() from an events$ subscriber on "recovering" gives up with the original error', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { backoff: { initialDelayMs: 100, jitter: 'none' }, minUptimeMs: 0 });
    conn.events$.subscribe((event) => {
      if (event.type === 'recovering') conn.suspend();
    });
    await vi.advanceTimersByTimeAsync(0);
    const original = reset('original');
    transport.current!.fail(original);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'suspended', error: original });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(transport.openAttempts).toBe(1);
  });

  test('close() from a "link-open" handler of a recovered link leaves no minUptime timer and no subscription', async () => {
    vi.useFakeTimers();
    const counting = countingTransport<string>();
    const conn = connect(counting.transport, {
      backoff: { initialDelayMs: 10, jitter: 'none' },
      minUptimeMs: 5_000,
      heartbeat: { intervalMs: 1_000, timeoutMs: 3_000 },
    });
    conn.events$.subscribe((event) => {
      if (event.type === 'link-open' && event.recovered) conn.close();
    });
    await vi.advanceTimersByTimeAsync(0);
    counting.memory.current!.fail();
    await vi.advanceTimersByTimeAsync(10);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'user' });
    expect(counting.memory.openAttempts).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
    expect(counting.active).toBe(0);
  });

  test('close() from a "dropped" handler: the send that made room settles too', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, {
      backoff: { initialDelayMs: 0, jitter: 'none' },
      minUptimeMs: 0,
      queue: { maxMessages: 1, overflow: 'drop-oldest' },
      recover: () => new Promise(() => undefined),
    });
    conn.events$.subscribe((event) => {
      if (event.type === 'dropped') conn.close();
    });
    await waitForState(conn, 'open');
    transport.current!.fail();
    const first = conn.send('first');
    const second = conn.send('second');
    await expect(first).rejects.toMatchObject({ code: 'ERR_QUEUE_OVERFLOW' });
    await expect(second).rejects.toBeInstanceOf(ClosedByUserError);
    expect(conn.pending).toEqual({ messages: 0, bytes: 0 });
  });

  test('a send pending when the link ends by itself rejects with a typed error', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { minUptimeMs: 0 });
    await waitForState(conn, 'open');
    const pending = conn.send('m');
    conn.link!.close();
    await expect(pending).rejects.toBeInstanceOf(NotOpenError);
    await expect(conn.send('after')).rejects.toBeInstanceOf(NotOpenError);
    expect(await conn.closed).toEqual({ status: 'closed', reason: 'peer' });
  });
});
