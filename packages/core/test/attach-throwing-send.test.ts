/**
 * A link whose `send` or `sendWith` throws synchronously (a wrapper's own send: user code) refuses
 * that message (see `Link.send`): that send rejects with the thrown error, unchanged, and is
 * never written again; the link stays up and the sends after it go on in order. Before, the caller
 * was told the send failed while the connection kept it and delivered it on the next link, and
 * a throw while waiting sends were written left every later send waiting until the link dropped.
 */
import { type Link, LinkFailedError, type Transport } from '@lifeline/core';
import { createMemoryTransport } from '@lifeline/core/testing';
import { describe, expect, test } from 'vitest';
import { connect, FAST, messages, tally, waitForState } from './support.js';

type Write = 'send' | 'sendWith';

/**
 * A memory transport whose links throw `error` from their `send` (or `sendWith`) when asked to
 * write `poison`, on the first `throws` links only. What each link's peer received is on `peers`.
 */
function throwingTransport(write: Write, poison: string, error: unknown, throws = Number.POSITIVE_INFINITY) {
  const memory = createMemoryTransport<string>();
  let opened = 0;
  let thrown = 0;
  const transport: Transport<string, string> = {
    async open(signal) {
      const inner = await memory.open(signal);
      const n = ++opened;
      const wrapped: Link<string, string> = Object.create(inner);
      const check = (data: string) => {
        if (data === poison && n <= throws) {
          thrown++;
          throw error;
        }
      };
      if (write === 'send') {
        wrapped.send = (data) => {
          check(data);
          return inner.send(data);
        };
      } else {
        wrapped.sendWith = (data, confirmed, token) => {
          check(data);
          inner.send(data).then(
            () => confirmed(undefined, token),
            (failure) => confirmed(failure, token),
          );
        };
      }
      return wrapped;
    },
  };
  return {
    transport,
    memory,
    get thrown() {
      return thrown;
    },
  };
}

const received = (memory: ReturnType<typeof createMemoryTransport<string>>) =>
  memory.peers.flatMap((peer) => peer.received);

/** The sends' outcomes: which rejected, with what. */
async function outcomes(sent: readonly string[], results: readonly Promise<void>[]) {
  const settled = await Promise.allSettled(results);
  return settled.flatMap((s, i) =>
    s.status === 'rejected' ? [{ data: sent[i], reason: s.reason as unknown }] : [],
  );
}

const errors = [
  ['a recoverable LinkFailedError', new LinkFailedError('wrapper: write refused', { recoverable: true })],
  ['a TypeError (a bug in the wrapper)', new TypeError('wrapper bug')],
] as const;

describe.each(['send', 'sendWith'] as const)('a link whose %s throws', (write) => {
  test.each(errors)(
    '%s on a write at once: that send alone rejects with it; the rest arrive once, in order',
    async (_, error) => {
      const sent = messages('m', 200);
      const t = throwingTransport(write, 'm-50', error);
      const conn = connect(t.transport, FAST);
      await waitForState(conn, 'open');
      const rejected = await outcomes(
        sent,
        sent.map((data) => conn.send(data)),
      );
      expect(t.thrown).toBe(1);
      expect(rejected).toEqual([{ data: 'm-50', reason: error }]);
      const expected = sent.filter((data) => data !== 'm-50');
      expect(tally(expected, received(t.memory))).toMatchObject({
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
        unexpected: 0,
      });
      expect(conn.state$.value.status).toBe('open');
      expect(t.memory.openAttempts).toBe(1);
      // Nothing is left waiting behind the throw, and the refused send is not written again by a
      // later link.
      await conn.send('after');
      t.memory.current!.fail();
      await waitForState(conn, 'open', () => t.memory.openAttempts === 2);
      await conn.send('last');
      expect(received(t.memory).slice(-2)).toEqual(['after', 'last']);
      expect(received(t.memory)).not.toContain('m-50');
    },
  );

  test.each(errors)(
    '%s while the sends that waited for a link are written: none is stuck',
    async (_, error) => {
      const sent = messages('q', 100);
      const t = throwingTransport(write, 'q-30', error);
      t.memory.refuseOpens(1);
      const conn = connect(t.transport, {
        ...FAST,
        backoff: { initialDelayMs: 5, maxDelayMs: 5, jitter: 'none' },
      });
      // Queued while the first open is refused, written by the flush of the first link that opens.
      const rejected = await outcomes(
        sent,
        sent.map((data) => conn.send(data)),
      );
      expect(t.thrown).toBe(1);
      expect(rejected).toEqual([{ data: 'q-30', reason: error }]);
      const expected = sent.filter((data) => data !== 'q-30');
      expect(tally(expected, received(t.memory))).toMatchObject({
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
        unexpected: 0,
      });
      await conn.send('after');
      expect(received(t.memory).at(-1)).toBe('after');
      expect(conn.state$.value.status).toBe('open');
    },
  );
});
