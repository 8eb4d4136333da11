/**
 * User code runs inside the engine's notifications (state$, events$): closing, suspending or
 * sending from there must leave the engine as consistent as doing it from outside.
 */
import { ClosedByUserError, type HAConnection, NotOpenError, type Transport } from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { Observable } from 'rxjs';
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

describe('send order across a link that fails inside a write', () => {
  test('a transport that holds sends while no link is up gets them in send order: one sent from inside the write, then one from a link-down listener', async () => {
    // The wire and the transport's hold (a resumable session numbering sends while no link is up)
    // in one sequence. The link's send first sends another message (from inside the write), then
    // writes, then fails; a 'link-down' listener sends one more. Sent in the order outer, inner,
    // listener: they must reach the wire or the hold in that order.
    const sequence: string[] = [];
    let fail!: (error: unknown) => void;
    let conn!: HAConnection<string, string>;
    const transport: Transport<string, string> = {
      async open() {
        return {
          replaysSends: true,
          messages$: new Observable<string>((subscriber) => {
            fail = (error) => subscriber.error(error);
          }),
          send(data) {
            if (data === 'outer') conn.send('inner').catch(() => {});
            sequence.push(`wire ${data}`);
            if (data === 'outer') fail(reset('down inside the write'));
            return new Promise<void>(() => {});
          },
          close() {},
        };
      },
      hold(data) {
        sequence.push(`held ${data}`);
        return new Promise<void>(() => {});
      },
    };
    conn = connect(transport, { backoff: { initialDelayMs: 60_000, jitter: 'none' } });
    conn.events$.subscribe((event) => {
      if (event.type === 'link-down') conn.send('listener').catch(() => {});
    });
    await waitForState(conn, 'open');
    conn.send('outer').catch(() => {});
    expect(sequence).toEqual(['wire outer', 'held inner', 'held listener']);
    conn.close();
  });
});
