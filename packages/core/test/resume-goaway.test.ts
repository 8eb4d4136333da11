/** GOAWAY (protocol version 2): the frame, the retry decision it drives, and where failover goes next. */
import { LinkFailedError } from '@lifeline/core';
import {
  decideRetry,
  decodeFrame,
  encodeGoAway,
  failoverTransport,
  GoAwayError,
  MAX_GOAWAY_URL_BYTES,
  MalformedFrameError,
  type RetryDecisionInput,
  type Transport,
} from '@lifeline/core/internal';
import { describe, expect, test } from 'vitest';

describe('the GOAWAY frame', () => {
  test('round-trips its delay and URL, and an empty URL means none', () => {
    expect(decodeFrame(encodeGoAway(1_500, 'wss://b.example/feed'))).toEqual({
      type: 'goaway',
      delayMs: 1_500,
      url: 'wss://b.example/feed',
    });
    expect(decodeFrame(encodeGoAway())).toEqual({ type: 'goaway', delayMs: 0, url: '' });
  });

  test('a URL past the limit cannot be encoded, nor decoded; a bad delay throws', () => {
    expect(() => encodeGoAway(0, 'x'.repeat(MAX_GOAWAY_URL_BYTES + 1))).toThrow(RangeError);
    expect(() => encodeGoAway(-1)).toThrow(RangeError);
    const long = new Uint8Array(2 + MAX_GOAWAY_URL_BYTES + 1).fill(0x78);
    long[0] = 0x31;
    long[1] = 0;
    expect(() => decodeFrame(long)).toThrow(MalformedFrameError);
  });
});

describe('a GoAwayError drives the retry decision', () => {
  const base: RetryDecisionInput = {
    error: new GoAwayError(0),
    closed: false,
    suspended: false,
    attemptsMade: 0,
    maxAttemptsPerFailure: 3,
    recoveriesUsed: 0,
    maxRecoveries: 5,
    newFailure: true,
    backoff: { initialDelayMs: 10_000, jitter: 'none' },
  };

  test('its delay replaces the backoff, 0 included (an HTTP Retry-After only raises it)', () => {
    expect(decideRetry(base)).toEqual({ action: 'retry', attempt: 1, delayMs: 0 });
    expect(decideRetry({ ...base, error: new GoAwayError(1_234) })).toMatchObject({ delayMs: 1_234 });
    // Through a wrapper's cause chain too, as for Retry-After.
    const wrapped = new LinkFailedError('link ended', { cause: new GoAwayError(7) });
    expect(decideRetry({ ...base, error: wrapped })).toMatchObject({ delayMs: 7 });
  });

  test('capped by retryAfter.maxDelayMs; ignored (backoff) when hints are off', () => {
    expect(
      decideRetry({ ...base, error: new GoAwayError(60_000), retryAfter: { maxDelayMs: 5_000 } }),
    ).toMatchObject({ delayMs: 5_000 });
    expect(decideRetry({ ...base, retryAfter: false })).toMatchObject({ delayMs: 10_000 });
    expect(decideRetry({ ...base, retryAfter: { enabled: false } })).toMatchObject({ delayMs: 10_000 });
  });

  test('it is recoverable: the budgets still apply', () => {
    expect(decideRetry({ ...base, attemptsMade: 3, newFailure: false })).toEqual({
      action: 'give-up',
      reason: 'attempts-exhausted',
    });
  });
});

describe('failoverTransport.redirect', () => {
  const opened: string[] = [];
  const transport = failoverTransport(
    ['a', 'b', 'c'],
    (endpoint): Transport => ({
      open: async () => {
        opened.push(endpoint);
        return { messages$: undefined as never, send: async () => {}, close: () => {} };
      },
    }),
  );

  test('the named endpoint is opened next; an unknown or missing URL skips the departing one', async () => {
    await transport.open();
    transport.redirect!('c');
    await transport.open();
    transport.redirect!(undefined);
    await transport.open();
    transport.redirect!('elsewhere');
    await transport.open();
    expect(opened).toEqual(['a', 'c', 'a', 'b']);
  });
});
