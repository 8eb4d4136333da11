/** The exact sequence of `state$` values through the connection's life. */
import { ConnectFailedError, HttpStatusError } from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { describe, expect, test } from 'vitest';
import { connect, FAST, recordStates, reset, waitForState } from './support.js';

describe('state$', () => {
  test('first open: connecting, then open with the budgets', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, maxRecoveries: 3 });
    const states = recordStates(conn);
    await waitForState(conn, 'open');
    expect(states).toEqual([{ status: 'connecting' }, { status: 'open', recoveries: 0, recoveriesLeft: 3 }]);
  });

  test('failure, recovering attempts 1..n, open again, then counted as recovered', async () => {
    const transport = createMemoryTransport<string>();
    const refusals = [
      new ConnectFailedError('refused 1', { syscallCode: 'ECONNREFUSED' }),
      new ConnectFailedError('refused 2', { syscallCode: 'ECONNREFUSED' }),
    ];
    const conn = connect(transport, {
      ...FAST,
      maxAttemptsPerFailure: 5,
      maxRecoveries: 3,
      recover: (ctx) => {
        const refusal = refusals[ctx.attempt - 1];
        if (refusal) throw refusal;
        return ctx.reopen();
      },
    });
    const states = recordStates(conn);
    await waitForState(conn, 'open');
    const failure = reset('failure');
    transport.current!.fail(failure);
    await waitForState(conn, 'open', (state) => state.recoveries === 1);

    const recovering = (attempt: number, lastError: unknown) => ({
      status: 'recovering',
      attempt,
      maxAttempts: 5,
      delayMs: 0,
      recoveriesLeft: 2,
      error: failure,
      lastError,
    });
    expect(states).toEqual([
      { status: 'connecting' },
      { status: 'open', recoveries: 0, recoveriesLeft: 3 },
      recovering(1, failure),
      recovering(2, refusals[0]),
      recovering(3, refusals[1]),
      // Up again; the recovery counts once the link stayed up for minUptimeMs (0 here).
      { status: 'open', recoveries: 0, recoveriesLeft: 2 },
      { status: 'open', recoveries: 1, recoveriesLeft: 2 },
    ]);
  });

  test('give-up: recovering up to the budget, then closed with the reason and the original error', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, maxAttemptsPerFailure: 2 });
    const states = recordStates(conn);
    await waitForState(conn, 'open');
    const failure = reset('failure');
    transport.refuseOpens();
    transport.current!.fail(failure);
    await conn.closed;
    expect(states.map((state) => state.status)).toEqual([
      'connecting',
      'open',
      'recovering',
      'recovering',
      'closed',
    ]);
    expect(states.flatMap((state) => (state.status === 'recovering' ? [state.attempt] : []))).toEqual([1, 2]);
    expect(states.at(-1)).toEqual({ status: 'closed', reason: 'attempts-exhausted', error: failure });
  });

  test('a first open that fails irrecoverably: connecting, then closed', async () => {
    const transport = createMemoryTransport<string>();
    const forbidden = new HttpStatusError(403);
    transport.refuseOpens(1, forbidden);
    const conn = connect(transport, FAST);
    const states = recordStates(conn);
    await conn.closed;
    expect(states).toEqual([
      { status: 'connecting' },
      { status: 'closed', reason: 'irrecoverable', error: forbidden },
    ]);
    expect(transport.openAttempts).toBe(1);
  });

  test('a first open that fails recoverably goes through recovering, with no previous link', async () => {
    const transport = createMemoryTransport<string>();
    const refusal = new ConnectFailedError('refused', { syscallCode: 'ECONNREFUSED' });
    transport.refuseOpens(1, refusal);
    let previous: unknown = 'unset';
    const conn = connect(transport, {
      ...FAST,
      maxRecoveries: 1,
      recover: (ctx) => {
        previous = ctx.previousLink;
        return ctx.reopen();
      },
    });
    const states = recordStates(conn);
    await waitForState(conn, 'open', (state) => state.recoveries === 1);
    expect(previous).toBeUndefined();
    expect(states.map((state) => state.status)).toEqual(['connecting', 'recovering', 'open', 'open']);
    expect(states[1]).toMatchObject({ attempt: 1, recoveriesLeft: 0, error: refusal });
  });

  test('suspended and enabled while open', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const states = recordStates(conn);
    conn.suspend();
    conn.enable();
    conn.close();
    expect(states).toEqual([
      { status: 'open', recoveries: 0, recoveriesLeft: Infinity },
      { status: 'suspended', recoveries: 0, recoveriesLeft: Infinity },
      { status: 'open', recoveries: 0, recoveriesLeft: Infinity },
      { status: 'closed', reason: 'user' },
    ]);
  });

  test('a subscriber that comes after the close still sees the final state, then completion', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const failure = reset('fatal');
    conn.suspend();
    transport.current!.fail(failure);
    await conn.closed;
    const late = recordStates(conn);
    expect(late).toEqual([{ status: 'closed', reason: 'suspended', error: failure }]);
    await expect(waitForState(conn, 'closed')).resolves.toBe(conn.state$.value);
  });
});
