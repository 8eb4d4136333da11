/** The recoverable/irrecoverable classification, row by row, and what `attach` does with each verdict. */
import {
  CloseCode,
  ClosedByUserError,
  ConnectFailedError,
  DetachedError,
  HeartbeatTimeoutError,
  HttpStatusError,
  InvalidOptionError,
  isRecoverable,
  LinkClosedError,
  LinkFailedError,
  MalformedFrameError,
  NotOpenError,
  ProtocolError,
  QueueOverflowError,
} from '@lifeline/core';
import { isRecoverableByDefault, markFetchFailure } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { describe, expect, test, vi } from 'vitest';
import { connect, FAST, waitForState } from './support.js';

const syscall = (code: string) => Object.assign(new Error(`${code} from the OS`), { code });

const recoverable: [string, unknown][] = [
  ['close 1001 going away', new LinkClosedError(1001)],
  ['close 1006 abnormal', new LinkClosedError(1006)],
  ['close 1011 internal error', new LinkClosedError(1011)],
  ['close 1012 service restart', new LinkClosedError(1012)],
  ['close 1013 try again later', new LinkClosedError(1013)],
  ['a close without a code', new LinkClosedError(undefined)],
  ['HTTP 502', new HttpStatusError(502)],
  ['HTTP 503', new HttpStatusError(503)],
  ['HTTP 504', new HttpStatusError(504)],
  ['HTTP 429', new HttpStatusError(429)],
  ['ECONNRESET on a link', new LinkFailedError('reset', { syscallCode: 'ECONNRESET' })],
  ['ECONNREFUSED on a connect', new ConnectFailedError('refused', { syscallCode: 'ECONNREFUSED' })],
  ['a bare ECONNRESET from the OS', syscall('ECONNRESET')],
  ['a bare ECONNREFUSED from the OS', syscall('ECONNREFUSED')],
  ['ECONNRESET as the cause of another error', new Error('wrapped', { cause: syscall('ECONNRESET') })],
  ['heartbeat timeout', new HeartbeatTimeoutError(30_000)],
  ['a TypeError fetch raised (marked where it was caught)', markFetchFailure(new TypeError('any text'))],
  ['a send on a link that is not open', new NotOpenError()],
];

const irrecoverable: [string, unknown][] = [
  ['close 1000 normal closure', new LinkClosedError(1000)],
  ['close 1002 protocol error', new LinkClosedError(1002)],
  ['close 1008 policy violation', new LinkClosedError(1008)],
  ['close 4401 unauthorized', new LinkClosedError(4401)],
  ['close 4403 forbidden', new LinkClosedError(4403)],
  ['HTTP 401', new HttpStatusError(401)],
  ['HTTP 403', new HttpStatusError(403)],
  ['HTTP 404', new HttpStatusError(404)],
  ['closed by the user', new ClosedByUserError()],
  ['detached', new DetachedError()],
  ['queue overflow', new QueueOverflowError('messages', 'full')],
  ['an invalid option', new InvalidOptionError('bad')],
  ['a malformed frame', new MalformedFrameError('bad frame')],
  ['a protocol violation', new ProtocolError('bad sequence')],
  ['a link failure that says it is fatal', new LinkFailedError('fatal', { recoverable: false })],
  ["an error from the user's own code", new TypeError('x is not a function')],
  // The message text decides nothing: an unmarked TypeError saying "fetch failed" is not fetch's.
  ['an unmarked TypeError whose message reads like fetch', new TypeError('fetch failed')],
  ['an unknown error', new Error('boom')],
  ['a thrown string', 'boom'],
  ['undefined', undefined],
];

describe('isRecoverableByDefault', () => {
  test.each(recoverable)('%s: recoverable', (_, error) => {
    expect(isRecoverableByDefault(error)).toBe(true);
    expect(isRecoverable(error)).toBe(true);
  });

  test.each(irrecoverable)('%s: not recoverable', (_, error) => {
    expect(isRecoverableByDefault(error)).toBe(false);
    expect(isRecoverable(error)).toBe(false);
  });

  test('the close-code enum names the codes of the contract', () => {
    expect([CloseCode.GoingAway, CloseCode.Abnormal, CloseCode.InternalError]).toEqual([1001, 1006, 1011]);
    expect([CloseCode.ServiceRestart, CloseCode.TryAgainLater]).toEqual([1012, 1013]);
    expect([CloseCode.Unauthorized, CloseCode.Forbidden]).toEqual([4401, 4403]);
  });
});

describe('isRecoverable with a user override', () => {
  test('the override decides when it answers, the default when it returns undefined', () => {
    const override = (error: unknown) =>
      error instanceof LinkClosedError && error.closeCode === 1000
        ? true
        : error instanceof HttpStatusError
          ? false
          : undefined;
    expect(isRecoverable(new LinkClosedError(1000), override)).toBe(true);
    expect(isRecoverable(new HttpStatusError(503), override)).toBe(false);
    expect(isRecoverable(new LinkClosedError(1006), override)).toBe(true);
    expect(isRecoverable(new LinkClosedError(1008), override)).toBe(false);
  });
});

describe('attach retries recoverable errors and never irrecoverable ones', () => {
  const failures: [string, boolean, unknown][] = [
    ...recoverable
      .filter(([, error]) => typeof error === 'object')
      .map(([name, error]) => [name, true, error] as [string, boolean, unknown]),
    // The memory peer's fail(undefined) means "the default reset", so undefined is left out.
    ...irrecoverable
      .filter(([, error]) => error !== undefined)
      .map(([name, error]) => [name, false, error] as [string, boolean, unknown]),
  ];

  test.each(failures)('link failure %s: recovered = %s', async (_, recovers, error) => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    transport.current!.fail(error);
    if (recovers) {
      await waitForState(conn, 'open', (state) => state.recoveries === 1);
      expect(transport.openAttempts).toBe(2);
    } else {
      await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'irrecoverable', error });
      expect(transport.openAttempts).toBe(1);
    }
  });

  test.each([401, 403])('HTTP %i on the first open: closed at once, one open attempt', async (status) => {
    const transport = createMemoryTransport<string>();
    transport.refuseOpens(Number.POSITIVE_INFINITY, new HttpStatusError(status));
    const conn = connect(transport, FAST);
    await expect(conn.closed).resolves.toMatchObject({ reason: 'irrecoverable', error: { status } });
    expect(transport.openAttempts).toBe(1);
  });

  test.each([502, 503, 504, 429])('HTTP %i on the first open: retried', async (status) => {
    const transport = createMemoryTransport<string>();
    transport.refuseOpens(2, new HttpStatusError(status));
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    expect(transport.openAttempts).toBe(3);
  });

  test('a close the peer makes with a code reaches the classifier with that code', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    transport.current!.close(4401, 'token expired');
    await expect(conn.closed).resolves.toMatchObject({
      reason: 'irrecoverable',
      error: { closeCode: 4401, reason: 'token expired' },
    });
    expect(transport.openAttempts).toBe(1);
  });

  test('options.isRecoverable overrides: a 1000 close made recoverable, ECONNRESET made fatal', async () => {
    const transport = createMemoryTransport<string>();
    const seen: unknown[] = [];
    const conn = connect(transport, {
      ...FAST,
      isRecoverable: (error) => {
        seen.push(error);
        if (error instanceof LinkClosedError && error.closeCode === 1000) return true;
        if (error instanceof LinkFailedError && error.syscallCode === 'ECONNRESET') return false;
        return undefined;
      },
    });
    await waitForState(conn, 'open');
    transport.current!.close(1000);
    await waitForState(conn, 'open', (state) => state.recoveries === 1);
    expect(transport.openAttempts).toBe(2);
    const reset = new LinkFailedError('reset', { syscallCode: 'ECONNRESET' });
    transport.current!.fail(reset);
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'irrecoverable', error: reset });
    expect(transport.openAttempts).toBe(2);
    expect(seen).toHaveLength(2);
  });

  test('a heartbeat timeout on a half-open link is recovered, after pings', async () => {
    vi.useFakeTimers();
    try {
      const transport = createMemoryTransport<string>();
      const ping = vi.fn();
      const errors: unknown[] = [];
      const conn = connect(transport, {
        ...FAST,
        heartbeat: { intervalMs: 100, timeoutMs: 300, ping },
      });
      conn.events$.subscribe((event) => {
        if (event.type === 'link-down') errors.push(event.error);
      });
      await vi.advanceTimersByTimeAsync(0);
      expect(conn.state$.value.status).toBe('open');
      transport.current!.halfOpen();
      await vi.advanceTimersByTimeAsync(299);
      expect(ping).toHaveBeenCalledTimes(2);
      expect(transport.openAttempts).toBe(1);
      // The timeout is confirmed one tick later, after input that arrived meanwhile was read.
      await vi.advanceTimersByTimeAsync(2);
      expect(errors).toEqual([new HeartbeatTimeoutError(300)]);
      expect(errors[0]).toBeInstanceOf(HeartbeatTimeoutError);
      // A zero backoff is a 0 ms timer, which timers round up to 1 ms.
      await vi.advanceTimersByTimeAsync(1);
      expect(transport.openAttempts).toBe(2);
      expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: 1 });
      // Traffic on the new link keeps it alive past the timeout.
      for (let i = 0; i < 10; i++) {
        await vi.advanceTimersByTimeAsync(50);
        transport.current!.send(`tick ${i}`);
      }
      expect(transport.openAttempts).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
