/**
 * The libha contract (DESIGN.md, "The contract carried over from libha"), one describe per row,
 * against `attach()` over the in-memory transport.
 */
import {
  ClosedByUserError,
  ConnectFailedError,
  DetachedError,
  HttpStatusError,
  type Link,
  LinkFailedError,
  NotOpenError,
  type RecoveryContext,
} from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { afterEach, describe, expect, test, vi } from 'vitest';
import {
  connect,
  countingTransport,
  deferred,
  FAST,
  heldTransport,
  messages,
  recordStates,
  reset,
  settleAll,
  tally,
  track,
  waitForState,
} from './support.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('ha_attach: attach(transport, options)', () => {
  test('opens a link at once and, while nothing fails, carries messages both ways like the plain link', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    const received: string[] = [];
    conn.messages$.subscribe((message) => received.push(message));

    expect(transport.openAttempts).toBe(1);
    await waitForState(conn, 'open');
    const peer = transport.current!;
    expect(conn.link?.info).toEqual({ peerId: 1 });

    const up = messages('up', 500);
    const down = messages('down', 500);
    await Promise.all(up.map((message) => conn.send(message)));
    for (const message of down) peer.send(message);

    expect(tally(up, peer.received)).toMatchObject({ received: 500, lost: 0, duplicated: 0, outOfOrder: 0 });
    expect(tally(down, received)).toMatchObject({ received: 500, lost: 0, duplicated: 0, outOfOrder: 0 });
    expect(conn.pending).toEqual({ messages: 0, bytes: 0 });
    expect(transport.openAttempts).toBe(1);
  });

  test('emits link-open events: recovered false for the first link, true for a recovered one', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    const opens: boolean[] = [];
    conn.events$.subscribe((event) => {
      if (event.type === 'link-open') opens.push(event.recovered);
    });
    await waitForState(conn, 'open');
    transport.current!.fail();
    await transport.waitForPeer(2);
    expect(opens).toEqual([false, true]);
  });
});

describe('recovery function: options.recover(ctx)', () => {
  test('receives the attempt, the original and last errors, the previous link, the handle, a signal and a working reopen()', async () => {
    const transport = createMemoryTransport<string>();
    const handle = { token: 'secret' };
    const contexts: RecoveryContext<string, string, typeof handle>[] = [];
    const conn = connect(transport, {
      ...FAST,
      handle,
      recover: (ctx) => {
        contexts.push(ctx);
        return ctx.reopen();
      },
    });
    await waitForState(conn, 'open');
    const firstLink = conn.link!;
    const failure = reset('first');
    const refusal = new ConnectFailedError('refused', { syscallCode: 'ECONNREFUSED' });
    transport.refuseOpens(1, refusal);
    transport.current!.fail(failure);
    await waitForState(conn, 'open', (state) => state.recoveries === 1);

    expect(contexts).toHaveLength(2);
    const [first, second] = contexts as [(typeof contexts)[0], (typeof contexts)[0]];
    expect(first).toMatchObject({ attempt: 1, maxAttempts: 120, error: failure, lastError: failure, handle });
    expect(second).toMatchObject({
      attempt: 2,
      maxAttempts: 120,
      error: failure,
      lastError: refusal,
      handle,
    });
    expect(first.previousLink).toBe(firstLink);
    expect(second.previousLink).toBe(firstLink);
    expect(first.signal.aborted).toBe(false);
    // The previous link is closed by the time recovery runs: it is for reading, not for writing.
    await expect(firstLink.send('late')).rejects.toBeInstanceOf(NotOpenError);
    // The recovered link is the one reopen() made.
    expect(transport.openAttempts).toBe(3);
    expect(conn.link?.info).toEqual({ peerId: 2 });
  });

  test('may renegotiate on the new link before handing it over: the negotiation precedes the retransmitted sends', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, {
      ...FAST,
      recover: async (ctx) => {
        const link = await ctx.reopen();
        await link.send(`auth attempt ${ctx.attempt}`);
        return link;
      },
    });
    await waitForState(conn, 'open');
    transport.current!.fail();
    const sent = messages('queued', 3);
    const sends = sent.map((message) => conn.send(message));
    await Promise.all(sends);
    expect(transport.peers[1]!.received).toEqual(['auth attempt 1', ...sent]);
  });

  test('giving up (undefined) hands the ORIGINAL error to pending sends, to closed and to state$', async () => {
    const transport = createMemoryTransport<string>();
    const attempts: number[] = [];
    const conn = connect(transport, {
      ...FAST,
      recover: async (ctx) => {
        attempts.push(ctx.attempt);
        // The first attempt fails with a different recoverable error; the second gives up.
        if (ctx.attempt === 1) throw new ConnectFailedError('refused', { syscallCode: 'ECONNREFUSED' });
        return undefined;
      },
    });
    const completed = vi.fn();
    const errored = vi.fn();
    conn.messages$.subscribe({ complete: completed, error: errored });
    await waitForState(conn, 'open');
    const original = reset('original');
    transport.current!.fail(original);
    const pending = conn.send('never');

    await expect(pending).rejects.toBe(original);
    const closed = await conn.closed;
    expect(closed).toEqual({ status: 'closed', reason: 'declined', error: original });
    expect(conn.state$.value).toBe(closed);
    expect(attempts).toEqual([1, 2]);
    expect(completed).toHaveBeenCalledOnce();
    expect(errored).not.toHaveBeenCalled();
    await expect(conn.send('after')).rejects.toBe(original);
    expect(transport.openAttempts).toBe(1);
  });

  test('a recovery function that returns null gives up too', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, recover: () => null });
    await waitForState(conn, 'open');
    const original = reset('original');
    transport.current!.fail(original);
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'declined', error: original });
  });

  test('an irrecoverable error met during an attempt (401 on reopen) ends recovery with that error', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const unauthorized = new HttpStatusError(401);
    transport.refuseOpens(1, unauthorized);
    transport.current!.fail();
    await expect(conn.closed).resolves.toEqual({
      status: 'closed',
      reason: 'irrecoverable',
      error: unauthorized,
    });
    expect(transport.openAttempts).toBe(2);
  });
});

describe('default recovery: reopen with the same parameters, under the backoff', () => {
  test('waits the backoff before each reopen', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, {
      backoff: { strategy: 'exponential', initialDelayMs: 100, factor: 2, jitter: 'none' },
      minUptimeMs: 0,
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.state$.value.status).toBe('open');
    transport.refuseOpens(2);
    transport.current!.fail();

    const expected = [
      [99, 1],
      [1, 2],
      [199, 2],
      [1, 3],
      [399, 3],
      [1, 4],
    ] as const;
    for (const [ms, opens] of expected) {
      await vi.advanceTimersByTimeAsync(ms);
      expect(transport.openAttempts, `after ${ms} more ms`).toBe(opens);
    }
    expect(conn.state$.value).toMatchObject({ status: 'open' });
    expect(transport.peers).toHaveLength(2);
  });
});

describe('the failed operation is re-run after recovery', () => {
  test('sends lost with the broken link are written once on the recovered link: none lost, none duplicated, in order', async () => {
    const { transport, peers } = heldTransport();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const before = messages('before', 20);
    const lost = messages('lost', 30);
    const after = messages('after', 20);

    const first = before.map((message) => conn.send(message));
    peers[0]!.flush();
    await Promise.all(first);
    const second = lost.map((message) => conn.send(message));
    expect(peers[0]!.held).toBe(30);
    peers[0]!.fail();
    const third = after.map((message) => conn.send(message));
    await waitForState(conn, 'open', (state) => state.recoveries === 1);
    peers[1]!.flush();
    const outcome = await settleAll([...second, ...third]);

    expect(outcome).toEqual({ fulfilled: 50, rejections: [] });
    expect(tally(before, peers[0]!.received)).toMatchObject({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      unexpected: 0,
    });
    expect(tally([...lost, ...after], peers[1]!.received)).toMatchObject({
      received: 50,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      unexpected: 0,
    });
    const everything = [...peers[0]!.received, ...peers[1]!.received];
    expect(tally([...before, ...lost, ...after], everything)).toMatchObject({
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
  });

  test('a send settles only when written on the recovered link', async () => {
    const { transport, peers } = heldTransport();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const send = track(conn.send('m'));
    peers[0]!.fail();
    await waitForState(conn, 'open', (state) => state.recoveries === 1);
    expect(peers[1]!.held).toBe(1);
    expect(send.settled).toBe(false);
    peers[1]!.flush();
    await vi.waitFor(() => expect(send.settled).toBe(true));
    expect(send.rejected).toBe(false);
    expect(peers[1]!.received).toEqual(['m']);
  });

  test('sends written but not yet confirmed when the link broke appear once on the new link (at-least-once across links)', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const sent = messages('m', 50);
    // The memory link writes synchronously and confirms on the next microtask: breaking the link
    // in the same tick leaves every send written but unconfirmed.
    const sends = sent.map((message) => conn.send(message));
    transport.current!.fail();
    const more = messages('n', 10);
    const moreSends = more.map((message) => conn.send(message));
    const outcome = await settleAll([...sends, ...moreSends]);

    expect(outcome).toEqual({ fulfilled: 60, rejections: [] });
    expect(tally(sent, transport.peers[0]!.received)).toMatchObject({ received: 50, lost: 0, duplicated: 0 });
    expect(tally([...sent, ...more], transport.peers[1]!.received)).toMatchObject({
      received: 60,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      unexpected: 0,
    });
  });

  test('sends made while recovering wait in order and are written after the retransmitted ones', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    transport.refuseOpens(3);
    transport.current!.fail();
    const sent = messages('m', 100);
    const sends = sent.map((message) => conn.send(message));
    expect(conn.pending.messages).toBe(100);
    await Promise.all(sends);
    expect(transport.openAttempts).toBe(5);
    expect(tally(sent, transport.current!.received)).toMatchObject({
      received: 100,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
    });
    expect(conn.pending).toEqual({ messages: 0, bytes: 0 });
  });
});

describe('HA_RECOVERY_ICOUNT: maxAttemptsPerFailure', () => {
  test('gives up after the attempts of one failure, with the original error', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, maxAttemptsPerFailure: 3 });
    await waitForState(conn, 'open');
    transport.refuseOpens();
    const original = reset('original');
    transport.current!.fail(original);
    const send = conn.send('m');
    await expect(send).rejects.toBe(original);
    await expect(conn.closed).resolves.toEqual({
      status: 'closed',
      reason: 'attempts-exhausted',
      error: original,
    });
    expect(transport.openAttempts).toBe(1 + 3);
  });

  test('is reset once a recovered link stayed up for minUptimeMs', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, {
      maxAttemptsPerFailure: 2,
      minUptimeMs: 1_000,
      backoff: { strategy: 'exponential', initialDelayMs: 10, jitter: 'none', factor: 1 },
    });
    const states = recordStates(conn);
    await vi.advanceTimersByTimeAsync(0);

    for (let failure = 1; failure <= 3; failure++) {
      transport.refuseOpens(1);
      transport.current!.fail(reset(`failure ${failure}`));
      await vi.advanceTimersByTimeAsync(20);
      expect(conn.state$.value, `failure ${failure} recovered`).toMatchObject({ status: 'open' });
      await vi.advanceTimersByTimeAsync(1_000);
      expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: failure });
    }
    const attempts = states.flatMap((state) => (state.status === 'recovering' ? [state.attempt] : []));
    expect(attempts).toEqual([1, 2, 1, 2, 1, 2]);
    expect(transport.openAttempts).toBe(1 + 3 * 2);
  });

  test('a link that flaps inside minUptimeMs keeps spending the same budget', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, {
      maxAttemptsPerFailure: 3,
      maxRecoveries: 10,
      minUptimeMs: 1_000,
      backoff: { strategy: 'exponential', initialDelayMs: 10, jitter: 'none', factor: 1 },
    });
    const states = recordStates(conn);
    await vi.advanceTimersByTimeAsync(0);
    const original = reset('original');
    transport.current!.fail(original);
    for (let flap = 1; flap <= 3; flap++) {
      await vi.advanceTimersByTimeAsync(10);
      expect(conn.state$.value).toMatchObject({ status: 'open', recoveries: 0 });
      await vi.advanceTimersByTimeAsync(500);
      transport.current!.fail(reset(`flap ${flap}`));
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'attempts-exhausted', error: original });
    const recovering = states.flatMap((state) =>
      state.status === 'recovering' ? [[state.attempt, state.recoveriesLeft]] : [],
    );
    // One failure: the attempts count on and only one recovery is charged.
    expect(recovering).toEqual([
      [1, 9],
      [2, 9],
      [3, 9],
    ]);
    expect(transport.openAttempts).toBe(1 + 3);
  });
});

describe('HA_RECOVERY_ACOUNT: maxRecoveries', () => {
  test('gives up when the failures over the connection life exceed the budget', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, maxRecoveries: 2 });
    const states = recordStates(conn);
    await waitForState(conn, 'open');
    for (let failure = 1; failure <= 2; failure++) {
      transport.current!.fail(reset(`failure ${failure}`));
      await waitForState(conn, 'open', (state) => state.recoveries === failure);
    }
    const last = reset('third');
    transport.current!.fail(last);
    await expect(conn.closed).resolves.toEqual({
      status: 'closed',
      reason: 'recoveries-exhausted',
      error: last,
    });
    expect(transport.openAttempts).toBe(3);
    const left = states.flatMap((state) => ('recoveriesLeft' in state ? [state.recoveriesLeft] : []));
    expect(left).toEqual([2, 1, 1, 1, 0, 0, 0]);
  });

  test('maxRecoveries: 0 makes the connection plain: the first failure closes it', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, maxRecoveries: 0 });
    await waitForState(conn, 'open');
    const failure = reset('only');
    transport.current!.fail(failure);
    await expect(conn.closed).resolves.toEqual({
      status: 'closed',
      reason: 'recoveries-exhausted',
      error: failure,
    });
    expect(transport.openAttempts).toBe(1);
  });
});

describe('HA_RECOVERY_SUSPEND / HA_RECOVERY_ENABLE: suspend() and enable()', () => {
  test('while suspended and open, a failure closes the connection like a plain one', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    conn.suspend();
    expect(conn.state$.value).toEqual({ status: 'suspended', recoveries: 0, recoveriesLeft: Infinity });
    const failure = reset('while suspended');
    transport.current!.fail(failure);
    const send = conn.send('m');
    await expect(send).rejects.toBe(failure);
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'suspended', error: failure });
    expect(transport.openAttempts).toBe(1);
  });

  test('enable() after suspend() restores recovery', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    conn.suspend();
    conn.enable();
    expect(conn.state$.value).toEqual({ status: 'open', recoveries: 0, recoveriesLeft: Infinity });
    transport.current!.fail();
    await waitForState(conn, 'open', (state) => state.recoveries === 1);
    expect(transport.openAttempts).toBe(2);
  });

  test('suspend() during the backoff wait gives up at once with the original error', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { backoff: { initialDelayMs: 1_000, jitter: 'none' }, minUptimeMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    const original = reset('original');
    transport.current!.fail(original);
    expect(conn.state$.value).toMatchObject({ status: 'recovering', attempt: 1, error: original });
    const send = conn.send('m');
    conn.suspend();
    await expect(send).rejects.toBe(original);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'suspended', error: original });
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(transport.openAttempts).toBe(1);
  });

  test('suspend() during an attempt: when the attempt fails, recovery gives up with the original error', async () => {
    const transport = createMemoryTransport<string>();
    let failAttempt!: (error: unknown) => void;
    const attemptStarted = deferred();
    const conn = connect(transport, {
      ...FAST,
      recover: () =>
        new Promise<Link<string, string>>((_, reject) => {
          failAttempt = reject;
          attemptStarted.resolve();
        }),
    });
    await waitForState(conn, 'open');
    const original = reset('original');
    transport.current!.fail(original);
    await attemptStarted.promise;
    conn.suspend();
    failAttempt(reset('attempt'));
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'suspended', error: original });
  });

  test('enable() while recovery is enabled, and suspend()/enable() after close, change nothing', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const states = recordStates(conn);
    conn.enable();
    conn.close();
    conn.suspend();
    conn.enable();
    expect(states.map((state) => state.status)).toEqual(['open', 'closed']);
  });
});

describe('HA_RECOVERY_RESET_ICOUNT / RESET_ACOUNT: resetCounts()', () => {
  test('restores the lifetime budget', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { ...FAST, maxRecoveries: 1 });
    await waitForState(conn, 'open');
    transport.current!.fail();
    await waitForState(conn, 'open', (state) => state.recoveries === 1);
    expect(conn.state$.value).toMatchObject({ recoveriesLeft: 0 });
    conn.resetCounts();
    expect(conn.state$.value).toMatchObject({ status: 'open', recoveriesLeft: 1 });
    transport.current!.fail();
    await waitForState(conn, 'open', (state) => state.recoveries === 2);
    expect(transport.openAttempts).toBe(3);
  });

  test('restores the attempts of the failure under way; the attempt being prepared becomes attempt 1', async () => {
    const transport = createMemoryTransport<string>();
    const contexts: number[] = [];
    let resetOnce = true;
    const conn = connect(transport, {
      ...FAST,
      maxAttemptsPerFailure: 2,
      recover: (ctx) => {
        contexts.push(ctx.attempt);
        return ctx.reopen();
      },
    });
    const states = recordStates(conn);
    conn.events$.subscribe((event) => {
      // Reset inside the wait before the second attempt.
      if (event.type === 'recovering' && event.attempt === 2 && resetOnce) {
        resetOnce = false;
        queueMicrotask(() => conn.resetCounts());
      }
    });
    await waitForState(conn, 'open');
    const original = reset('original');
    transport.refuseOpens();
    transport.current!.fail(original);
    await expect(conn.closed).resolves.toEqual({
      status: 'closed',
      reason: 'attempts-exhausted',
      error: original,
    });
    expect(contexts).toEqual([1, 1, 2]);
    expect(transport.openAttempts).toBe(1 + 3);
    const attempts = states.flatMap((state) => (state.status === 'recovering' ? [state.attempt] : []));
    expect(attempts).toEqual([1, 2, 1, 2]);
  });
});

describe('ha_detach: detach()', () => {
  test('stops recovery, keeps the link open and returns it as a plain link', async () => {
    const counting = countingTransport<string>();
    const conn = connect(counting.transport, FAST);
    const completed = vi.fn();
    conn.messages$.subscribe({ complete: completed });
    await waitForState(conn, 'open');
    const inFlight = conn.send('in flight');
    const link = conn.detach();

    expect(link).toBe(counting.links[0]);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'detached' });
    expect(completed).toHaveBeenCalledOnce();
    expect(counting.active).toBe(0);
    await expect(inFlight).resolves.toBeUndefined();
    expect(conn.pending).toEqual({ messages: 0, bytes: 0 });
    await expect(conn.send('after')).rejects.toBeInstanceOf(DetachedError);

    const peer = counting.memory.current!;
    expect(peer.open).toBe(true);
    const received: string[] = [];
    const linkErrors: unknown[] = [];
    link!.messages$.subscribe({
      next: (message) => received.push(message),
      error: (e) => linkErrors.push(e),
    });
    await link!.send('plain');
    peer.send('from server');
    expect(peer.received).toEqual(['in flight', 'plain']);
    expect(received).toEqual(['from server']);
    peer.fail();
    expect(linkErrors).toHaveLength(1);
    expect(counting.memory.openAttempts).toBe(1);
  });

  test('while recovering returns undefined and rejects waiting sends with DetachedError', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    transport.refuseOpens();
    transport.current!.fail();
    const waiting = conn.send('m');
    expect(conn.detach()).toBeUndefined();
    await expect(waiting).rejects.toBeInstanceOf(DetachedError);
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'detached' });
  });
});

describe('ha_close: close()', () => {
  test('closes the link without recovering; later sends reject with ClosedByUserError', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    const completed = vi.fn();
    conn.messages$.subscribe({ complete: completed });
    await waitForState(conn, 'open');
    conn.close(1000, 'bye');
    expect(transport.current!.open).toBe(false);
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'user' });
    await expect(conn.send('after')).rejects.toBeInstanceOf(ClosedByUserError);
    expect(completed).toHaveBeenCalledOnce();
    expect(transport.openAttempts).toBe(1);
  });

  test('rejects the sends queued during recovery with ClosedByUserError and makes no further attempt', async () => {
    vi.useFakeTimers();
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, { backoff: { initialDelayMs: 100, jitter: 'none' }, minUptimeMs: 0 });
    await vi.advanceTimersByTimeAsync(0);
    transport.current!.fail();
    const queued = messages('q', 5).map((message) => conn.send(message));
    expect(conn.pending.messages).toBe(5);
    conn.close();
    const outcome = await settleAll(queued);
    expect(outcome.fulfilled).toBe(0);
    expect(outcome.rejections).toHaveLength(5);
    for (const error of outcome.rejections) expect(error).toBeInstanceOf(ClosedByUserError);
    expect(conn.pending).toEqual({ messages: 0, bytes: 0 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(transport.openAttempts).toBe(1);
  });

  test('during an open under way: the link that arrives late is closed, and its signal is aborted', async () => {
    const transport = createMemoryTransport<string>();
    let signal: AbortSignal | undefined;
    const gate = deferred();
    const conn = connect(transport, {
      ...FAST,
      recover: async (ctx) => {
        signal = ctx.signal;
        await gate.promise;
        return ctx.reopen();
      },
    });
    await waitForState(conn, 'open');
    transport.current!.fail();
    await vi.waitFor(() => expect(signal).toBeDefined());
    conn.close();
    expect(signal!.aborted).toBe(true);
    gate.resolve();
    // reopen() honours the aborted signal: no link is made for a closed connection.
    await vi.waitFor(() => expect(transport.openAttempts).toBe(2));
    expect(transport.peers).toHaveLength(1);
  });

  test('close() on a connection that is still connecting closes the link that arrives', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    const opened = transport.waitForPeer(1);
    conn.close();
    expect(conn.state$.value).toEqual({ status: 'closed', reason: 'user' });
    const peer = await opened;
    // Nobody owns the link the open produced: the engine closes it as it arrives.
    await vi.waitFor(() => expect(peer.open).toBe(false));
    expect(transport.openAttempts).toBe(1);
  });
});

describe('a link that completes under the engine', () => {
  test('closes the connection with reason peer and no error', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    // Somebody closed the engine's link behind its back: its messages$ completes.
    conn.link!.close();
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'peer' });
    expect(transport.openAttempts).toBe(1);
  });
});

describe('plain-link errors reach the caller typed', () => {
  test('the send of a closed connection rejects with the error that closed it', async () => {
    const transport = createMemoryTransport<string>();
    const conn = connect(transport, FAST);
    await waitForState(conn, 'open');
    const fatal = new LinkFailedError('bad frame', { recoverable: false });
    transport.current!.fail(fatal);
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'irrecoverable', error: fatal });
    await expect(conn.send('m')).rejects.toBe(fatal);
  });
});

describe('suspend() during an open under way', () => {
  test('when the attempt succeeds, the connection is open but suspended: the next failure closes it', async () => {
    const transport = createMemoryTransport<string>();
    const gate = deferred();
    const attemptStarted = deferred();
    const conn = connect(transport, {
      ...FAST,
      recover: async (ctx) => {
        attemptStarted.resolve();
        await gate.promise;
        return ctx.reopen();
      },
    });
    await waitForState(conn, 'open');
    transport.current!.fail();
    await attemptStarted.promise;
    conn.suspend();
    gate.resolve();
    await waitForState(conn, 'suspended');
    const failure = reset('while suspended');
    transport.current!.fail(failure);
    await expect(conn.closed).resolves.toEqual({ status: 'closed', reason: 'suspended', error: failure });
    expect(transport.openAttempts).toBe(2);
  });
});
