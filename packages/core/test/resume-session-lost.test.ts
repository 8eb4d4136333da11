import { attach, type LinkData, SessionLostError } from '@lifeline/core';
import { resumable, type SessionEvent } from '@lifeline/core/internal';
import { createMemoryTransport } from '@lifeline/core/testing';
import { filter, firstValueFrom } from 'rxjs';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';

test('a forgotten session is reported with exactly its unacknowledged messages, and renegotiate runs before new traffic', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const order: string[] = [];
  const client = resumable(transport, {
    ackDelayMs: 0,
    renegotiate: async ({ link, lost, lostSessionId, session }) => {
      order.push(
        `renegotiate ${lost.length} lost of ${lostSessionId.length === 32} new ${session.id !== lostSessionId}`,
      );
      await link.send('resubscribe');
      order.push('resubscribed');
    },
  });
  const events: SessionEvent[] = [];
  client.session$.subscribe((event) => events.push(event));
  const conn = attach(client, { backoff: { initialDelayMs: 0 }, minUptimeMs: 0 });
  try {
    await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
    await Promise.all([conn.send('a1'), conn.send('a2'), conn.send('a3')]);
    const firstSession = peer.session;
    expect(firstSession.received.map((entry) => entry.data)).toEqual(['a1', 'a2', 'a3']);

    // Written, then lost on the wire: the server never sees them, so they are never acknowledged.
    transport.current!.halfOpen();
    const unacked = ['b4', 'b5', 'b6'].map((text) => conn.send(text));
    const outcomes = unacked.map((send) =>
      send.then(
        () => 'resolved',
        (error: unknown) => error,
      ),
    );
    peer.forgetAll(); // the server restarts with an in-memory store
    transport.current!.fail();
    const queued = conn.send('c7'); // sent during recovery: new traffic for the new session
    await queued;

    const lost = events.find((event) => event.type === 'lost');
    expect(lost).toMatchObject({ type: 'lost', reason: 'unknown-session', sessionId: firstSession.id });
    const expected = [
      // Written to the link (lost on the wire): they may have arrived, as far as the client knows.
      { seq: 4, data: 'b4', maybeDelivered: true },
      { seq: 5, data: 'b5', maybeDelivered: true },
      { seq: 6, data: 'b6', maybeDelivered: true },
    ];
    expect(lost!.type === 'lost' && lost!.unacknowledged).toEqual(expected);
    for (const outcome of await Promise.all(outcomes)) {
      expect(outcome).toBeInstanceOf(SessionLostError);
      expect((outcome as SessionLostError).unacknowledged).toEqual(expected);
      expect((outcome as SessionLostError).reason).toBe('unknown-session');
    }
    expect(events.map((event) => event.type)).toEqual(['new', 'lost', 'new']);
    expect(order).toEqual(['renegotiate 3 lost of true new true', 'resubscribed']);
    // The renegotiation's message came first on the new session, then the queued traffic.
    expect(peer.session.received).toEqual([
      { seq: 1, data: 'resubscribe' },
      { seq: 2, data: 'c7' },
    ]);
    expect(peer.session.id).not.toBe(firstSession.id);
    expect(client.stats.sessionsLost).toBe(1);
  } finally {
    conn.close();
    peer.stop();
  }
});

test('a renegotiate hook that fails fails the open and runs again on the next one', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  let calls = 0;
  const client = resumable(transport, {
    renegotiate: () => {
      calls++;
      if (calls === 1) throw new Error('auth server down');
    },
  });
  const first = await client.open();
  first.messages$.subscribe({ error: () => {} });
  peer.forgetAll();
  transport.current!.fail();
  await expect(client.open()).rejects.toThrow('auth server down');
  const third = await client.open();
  expect(calls).toBe(2);
  third.messages$.subscribe();
  client.close();
  peer.stop();
});
