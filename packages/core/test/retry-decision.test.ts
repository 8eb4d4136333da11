/** `decideRetry` as a pure function, branch by branch in its order, and `backoffDelay`. */
import { HttpStatusError, LinkFailedError } from '@lifeline/core';
import { backoffDelay, DEFAULT_BACKOFF, decideRetry, type RetryDecisionInput } from '@lifeline/core/internal';
import { describe, expect, test, vi } from 'vitest';

const recoverable = new LinkFailedError('reset', { syscallCode: 'ECONNRESET' });
const fatal = new HttpStatusError(401);

/** A decision that would retry; each test flips what its branch needs. */
const base: RetryDecisionInput = {
  error: recoverable,
  closed: false,
  suspended: false,
  attemptsMade: 0,
  maxAttemptsPerFailure: 3,
  recoveriesUsed: 0,
  maxRecoveries: 5,
  newFailure: true,
  backoff: { initialDelayMs: 100, jitter: 'none' },
};

/** Every later branch set to give up too, so a test proves its branch comes first. */
const everythingWrong: Partial<RetryDecisionInput> = {
  closed: true,
  suspended: true,
  error: fatal,
  recoveriesUsed: 5,
  attemptsMade: 3,
  shouldRecover: () => false,
};

describe('decideRetry, in order', () => {
  test('1. closed by the user wins over everything', () => {
    const shouldRecover = vi.fn(() => false);
    expect(decideRetry({ ...base, ...everythingWrong, shouldRecover })).toEqual({
      action: 'give-up',
      reason: 'closed',
    });
    expect(decideRetry({ ...base, closed: true })).toEqual({ action: 'give-up', reason: 'closed' });
    expect(shouldRecover).not.toHaveBeenCalled();
  });

  test('2. suspended comes next', () => {
    expect(decideRetry({ ...base, ...everythingWrong, closed: false })).toEqual({
      action: 'give-up',
      reason: 'suspended',
    });
    expect(decideRetry({ ...base, suspended: true })).toEqual({ action: 'give-up', reason: 'suspended' });
  });

  test('3. an irrecoverable error, by the default classification or the user override', () => {
    const wrong = { ...everythingWrong, closed: false, suspended: false };
    expect(decideRetry({ ...base, ...wrong })).toEqual({ action: 'give-up', reason: 'irrecoverable' });
    expect(decideRetry({ ...base, error: fatal })).toEqual({ action: 'give-up', reason: 'irrecoverable' });
    expect(decideRetry({ ...base, classify: () => false })).toEqual({
      action: 'give-up',
      reason: 'irrecoverable',
    });
    expect(decideRetry({ ...base, error: fatal, classify: () => true })).toMatchObject({ action: 'retry' });
    expect(decideRetry({ ...base, error: fatal, classify: () => undefined })).toMatchObject({
      reason: 'irrecoverable',
    });
  });

  test('4. the lifetime budget, only when the error starts a new failure', () => {
    const wrong = { ...everythingWrong, closed: false, suspended: false, error: recoverable };
    expect(decideRetry({ ...base, ...wrong })).toEqual({ action: 'give-up', reason: 'recoveries-exhausted' });
    expect(decideRetry({ ...base, recoveriesUsed: 5 })).toEqual({
      action: 'give-up',
      reason: 'recoveries-exhausted',
    });
    expect(decideRetry({ ...base, recoveriesUsed: 4 })).toMatchObject({ action: 'retry' });
    // An attempt of the failure under way already holds its recovery: it is not charged again.
    expect(decideRetry({ ...base, recoveriesUsed: 5, newFailure: false, attemptsMade: 1 })).toMatchObject({
      action: 'retry',
      attempt: 2,
    });
  });

  test('5. the per-failure budget', () => {
    const wrong = {
      ...everythingWrong,
      closed: false,
      suspended: false,
      error: recoverable,
      recoveriesUsed: 0,
    };
    expect(decideRetry({ ...base, ...wrong })).toEqual({ action: 'give-up', reason: 'attempts-exhausted' });
    expect(decideRetry({ ...base, attemptsMade: 3, newFailure: false })).toEqual({
      action: 'give-up',
      reason: 'attempts-exhausted',
    });
    expect(decideRetry({ ...base, attemptsMade: 2, newFailure: false })).toMatchObject({
      action: 'retry',
      attempt: 3,
    });
    expect(decideRetry({ ...base, maxAttemptsPerFailure: 0 })).toEqual({
      action: 'give-up',
      reason: 'attempts-exhausted',
    });
  });

  test("6. the user's predicate, told the error and the attempt about to be made", () => {
    const shouldRecover = vi.fn((_error: unknown, attempt: number) => attempt < 3);
    expect(decideRetry({ ...base, attemptsMade: 1, newFailure: false, shouldRecover })).toMatchObject({
      action: 'retry',
      attempt: 2,
    });
    expect(decideRetry({ ...base, attemptsMade: 2, newFailure: false, shouldRecover })).toEqual({
      action: 'give-up',
      reason: 'declined',
    });
    expect(shouldRecover.mock.calls).toEqual([
      [recoverable, 2],
      [recoverable, 3],
    ]);
  });

  test('7. otherwise retry: attempt = attempts made + 1, after the backoff delay for that attempt', () => {
    expect(decideRetry(base)).toEqual({ action: 'retry', attempt: 1, delayMs: 100 });
    const exponential = { ...base, backoff: { ...base.backoff, strategy: 'exponential' as const } };
    expect(decideRetry({ ...exponential, attemptsMade: 2, newFailure: false })).toEqual({
      action: 'retry',
      attempt: 3,
      delayMs: 400,
    });
    // Proportional (the default): the bound follows the time the failure has lasted, not the count.
    expect(
      decideRetry({
        ...base,
        maxAttemptsPerFailure: 20,
        attemptsMade: 9,
        newFailure: false,
        elapsedMs: 2_000,
      }),
    ).toEqual({
      action: 'retry',
      attempt: 10,
      delayMs: 400,
    });
    const jittered = { ...base, backoff: { initialDelayMs: 100 }, random: () => 0.25 };
    expect(decideRetry(jittered)).toEqual({ action: 'retry', attempt: 1, delayMs: 25 });
  });

  test('is pure: the same input gives the same decision', () => {
    const input = { ...base, random: () => 0.7, backoff: { initialDelayMs: 1_000 } };
    expect(decideRetry(input)).toEqual(decideRetry(input));
  });
});

describe('backoffDelay', () => {
  test('defaults: proportional, a fifth of the outage so far, between 250 ms and 30 s, full jitter', () => {
    expect(DEFAULT_BACKOFF).toEqual({
      strategy: 'proportional',
      initialDelayMs: 250,
      maxDelayMs: 30_000,
      ratio: 0.2,
      factor: 2,
      jitter: 'full',
    });
    expect(backoffDelay(1, {}, () => 0.999_999)).toBe(249);
    expect(backoffDelay(1, {}, () => 0)).toBe(0);
    // The attempt number does not matter; the elapsed time does.
    expect(backoffDelay(50, {}, () => 0.5, 0)).toBe(125);
    expect(backoffDelay(2, {}, () => 0.5, 5_000)).toBe(500);
    expect(backoffDelay(2, {}, () => 0.5, 3_600_000)).toBe(15_000);
    expect(backoffDelay(20, { strategy: 'exponential' }, () => 0.5)).toBe(15_000);
  });

  test('proportional, jitter none: max(initial, ratio x elapsed), capped', () => {
    const options = { initialDelayMs: 100, ratio: 0.5, maxDelayMs: 1_000, jitter: 'none' } as const;
    expect(
      [0, 100, 400, 1_000, 5_000].map((elapsed) => backoffDelay(1, options, Math.random, elapsed)),
    ).toEqual([100, 100, 200, 500, 1_000]);
  });

  test('jitter none: the bound itself, growing by factor up to the cap', () => {
    const options = {
      strategy: 'exponential',
      initialDelayMs: 10,
      factor: 3,
      maxDelayMs: 200,
      jitter: 'none',
    } as const;
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelay(attempt, options))).toEqual([10, 30, 90, 200, 200]);
  });

  test('full jitter stays within [0, bound)', () => {
    let seed = 1;
    const random = () => {
      seed = (seed * 16_807) % 2_147_483_647;
      return (seed - 1) / 2_147_483_646;
    };
    for (let attempt = 1; attempt <= 12; attempt++) {
      const bound = Math.min(30_000, 250 * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, { strategy: 'exponential' }, random);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(bound);
      }
    }
  });
});

describe('decideRetry: retry hints', () => {
  const base = {
    closed: false,
    suspended: false,
    attemptsMade: 0,
    maxAttemptsPerFailure: 10,
    recoveriesUsed: 0,
    maxRecoveries: Number.POSITIVE_INFINITY,
    newFailure: true,
    random: () => 0,
  } as const;
  const hinted = (ms: number) => Object.assign(new LinkFailedError('reset'), { retryAfterMs: ms });

  test('waits at least the hint carried by the error (or its cause)', () => {
    expect(decideRetry({ ...base, error: hinted(2_000) })).toEqual({
      action: 'retry',
      attempt: 1,
      delayMs: 2_000,
    });
    const wrapped = new LinkFailedError('wrapped', { cause: hinted(1_500) });
    expect(decideRetry({ ...base, error: wrapped })).toMatchObject({ delayMs: 1_500 });
  });
  test('caps the hint and can ignore it', () => {
    expect(decideRetry({ ...base, error: hinted(600_000) })).toMatchObject({ delayMs: 120_000 });
    expect(decideRetry({ ...base, error: hinted(5_000), retryAfter: { maxDelayMs: 1_000 } })).toMatchObject({
      delayMs: 1_000,
    });
    expect(decideRetry({ ...base, error: hinted(5_000), retryAfter: false })).toMatchObject({ delayMs: 0 });
  });
});
