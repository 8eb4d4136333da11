import { waitFor } from '@lifeline/core/testing';
import { NEVER, of, Subject } from 'rxjs';
import { afterEach, describe, expect, test, vi } from 'vitest';

afterEach(() => {
  vi.useRealTimers();
});

describe('waitFor', () => {
  test('a condition: resolves once it holds, re-checked on each wake before the interval', async () => {
    const wake = new Subject<void>();
    let value = 0;
    let checks = 0;
    const waiting = waitFor(
      () => {
        checks++;
        return value === 3;
      },
      { wake, intervalMs: 60_000 },
    );
    value = 1;
    wake.next();
    value = 3;
    wake.next(); // the interval is a minute: only the wake can find it
    await expect(waiting).resolves.toBeUndefined();
    expect(checks).toBeGreaterThanOrEqual(2);
    expect(wake.observed).toBe(false); // released on settle
  });

  test('a condition that never holds: rejects at timeoutMs naming what and the state, no timer left', async () => {
    vi.useFakeTimers();
    const waiting = waitFor(() => false, {
      timeoutMs: 1_000,
      what: '3 messages',
      state: () => ({ received: 2 }),
    });
    const outcome = waiting.catch((error: Error) => error);
    await vi.advanceTimersByTimeAsync(999);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(String(await outcome)).toBe(
      'Error: timed out after 1000 ms waiting for 3 messages; {"received":2}',
    );
    expect(vi.getTimerCount()).toBe(0);
  });

  test('an async condition and one that throws', async () => {
    let n = 0;
    await expect(waitFor(async () => ++n === 3)).resolves.toBeUndefined();
    await expect(
      waitFor(() => {
        throw new Error('broken check');
      }),
    ).rejects.toThrow('broken check');
  });

  test('an observable: the first value; completion without one, or an error, rejects', async () => {
    await expect(waitFor(of(7, 8))).resolves.toBe(7);
    await expect(waitFor(new Subject<number>().pipe(), { timeoutMs: 20, what: 'a value' })).rejects.toThrow(
      'timed out after 20 ms waiting for a value',
    );
    const ended = new Subject<number>();
    const waiting = waitFor(ended, { what: 'the state' });
    ended.complete();
    await expect(waiting).rejects.toThrow('the state completed without a value');
  });

  test('a promise: settles as it does, or times out', async () => {
    await expect(waitFor(Promise.resolve('ok'))).resolves.toBe('ok');
    await expect(waitFor(Promise.reject(new Error('no')))).rejects.toThrow('no');
    await expect(waitFor(new Promise(() => {}), { timeoutMs: 10, what: 'never' })).rejects.toThrow(
      'timed out after 10 ms waiting for never',
    );
  });

  test('an abort stops the wait with its reason and releases the subscription', async () => {
    const controller = new AbortController();
    const source = new Subject<number>();
    const waiting = waitFor(source, { signal: controller.signal });
    controller.abort(new Error('test over'));
    await expect(waiting).rejects.toThrow('test over');
    expect(source.observed).toBe(false);
    await expect(waitFor(NEVER, { signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow(
      'already',
    );
  });
});
