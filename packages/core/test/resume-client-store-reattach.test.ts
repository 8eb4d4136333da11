// Reattaching the same resumable transport after its connection gave up (issue 15): the second
// open reads the store again, over a session this object still holds in memory. It must not
// restore it a second time: every message is sent once, `restored` stays what the first load
// read, and a store another owner continued meanwhile wins over the stale copy in memory.
import { attach, type LinkData, LinkFailedError } from '@lifeline/core';
import {
  type ClientSessionChange,
  type ClientSessionStore,
  MemoryClientSessionStore,
  resumable,
  type SessionEvent,
} from '@lifeline/core/internal';
import { createMemoryTransport, type MemoryTransport, waitFor } from '@lifeline/core/testing';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';
import { closed, down, opened, tallyNumbered } from './support.js';

const giveUpFast = {
  backoff: { initialDelayMs: 5, maxDelayMs: 10 },
  minUptimeMs: 0,
  maxAttemptsPerFailure: 3,
} as const;

/** A memory store that refuses writes while not owned, as the file stores do (`write-failed`). */
class OwnedOnlyStore extends MemoryClientSessionStore {
  writesWhileReleased = 0;
  override write(change: ClientSessionChange): Promise<void> {
    if (!this.owned) {
      this.writesWhileReleased++;
      return Promise.reject(new Error('the store is not open'));
    }
    return super.write(change);
  }
}

/** A connection that died with 2 messages written and never acknowledged: the store holds them. */
async function leaveStoredSession(transport: MemoryTransport<LinkData>, store: ClientSessionStore) {
  const client = resumable(transport, { ackDelayMs: 0, store });
  const conn = attach(client, giveUpFast);
  await opened(conn);
  await Promise.all(['m1', 'm2', 'm3'].map((text) => conn.send(text)));
  transport.current!.halfOpen();
  void conn.send('m4').catch(() => {});
  void conn.send('m5').catch(() => {});
  await waitFor(() => client.handle.lastSent === 5);
  const end = closed(conn);
  transport.refuseOpens(1, new LinkFailedError('the process died', { recoverable: false }));
  transport.current!.fail();
  await end;
  transport.acceptOpens();
}

test('the same resumable attached again after it gave up: stored and in-memory messages sent once both ways, restored reported once', async () => {
  const store = new OwnedOnlyStore();
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  await leaveStoredSession(transport, store);
  await waitFor(() => !store.owned, { what: 'the first store released' });

  const client = resumable(transport, { ackDelayMs: 0, store });
  const events: SessionEvent[] = [];
  client.session$.subscribe((event) => events.push(event));
  const received: string[] = [];
  const first = attach(client, giveUpFast);
  first.messages$.subscribe((data) => received.push(String(data)));
  await opened(first);
  const restored = client.restored;
  expect(restored).toMatchObject({ pendingOutgoing: 2, lastSent: 5, lastReceived: 0 });
  const server = peer.session.endpoint;

  // Streaming both ways.
  for (let k = 1; k <= 20; k++) void server.send(`s${k}`);
  for (let k = 6; k <= 25; k++) void first.send(`m${k}`).catch(() => {});
  await waitFor(() => received.length === 20 && client.handle.peerAcked === 25, {
    timeoutMs: 10_000,
    what: 'the stream acknowledged',
  });
  // The server goes down: written and unacknowledged, sends while recovering (held, stored),
  // server messages nobody hears; then the connection gives up.
  transport.current!.halfOpen();
  for (let k = 26; k <= 35; k++) void first.send(`m${k}`).catch(() => {});
  for (let k = 21; k <= 30; k++) void server.send(`s${k}`);
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  const end = closed(first);
  transport.current!.fail();
  await waitFor(() => first.state$.value.status === 'recovering', { what: 'recovering' });
  for (let k = 36; k <= 45; k++) void first.send(`m${k}`).catch(() => {});
  await end;
  await waitFor(() => !store.owned, { what: 'the store released after the give-up' });

  // The server is back: the same object, attached again.
  transport.acceptOpens();
  const second = attach(client, giveUpFast);
  second.messages$.subscribe((data) => received.push(String(data)));
  await opened(second);
  for (let k = 46; k <= 50; k++) void second.send(`m${k}`).catch(() => {});
  for (let k = 31; k <= 35; k++) void server.send(`s${k}`);
  await waitFor(() => client.handle.pending === 0 && client.handle.lastSent === 50 && received.length >= 35, {
    timeoutMs: 10_000,
    what: 'everything acknowledged',
    state: () => ({
      pending: client.handle.pending,
      lastSent: client.handle.lastSent,
      received: received.length,
    }),
  });

  const atServer = [...peer.sessions.values()].map((session) => session.received.map((m) => String(m.data)));
  expect(atServer).toHaveLength(1);
  expect(tallyNumbered(atServer[0]!, 50)).toEqual({
    sent: 50,
    received: 50,
    lost: 0,
    duplicated: 0,
    reordered: 0,
  });
  expect(atServer[0]).toEqual(Array.from({ length: 50 }, (_, i) => `m${i + 1}`));
  expect(tallyNumbered(received, 35)).toEqual({
    sent: 35,
    received: 35,
    lost: 0,
    duplicated: 0,
    reordered: 0,
  });
  // Reported once, by the load that read it: the second open resumed the session in memory.
  expect(client.restored).toBe(restored);
  expect(events.map((event) => event.type)).toEqual(['resumed', 'resumed']);
  expect(store.stored?.messages).toEqual([]);
  // A released store is not written (a file store would fail the write, and the connection with it).
  expect(store.writesWhileReleased).toBe(0);
  second.close();
  await waitFor(() => store.stored === undefined && !store.owned, { what: 'closed: the store cleared' });
  peer.stop();
});

test('a stored session another owner continued while this object was released wins over the stale copy in memory', async () => {
  const store = new MemoryClientSessionStore();
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const client = resumable(transport, { ackDelayMs: 0, store });
  const first = attach(client, giveUpFast);
  await opened(first);
  await first.send('m1');
  transport.current!.halfOpen();
  void first.send('m2').catch(() => {});
  await waitFor(() => store.stored?.messages.length === 1, { what: 'm2 stored' });
  const end = closed(first);
  transport.refuseOpens(1, new LinkFailedError('gave up', { recoverable: false }));
  transport.current!.fail();
  await end;
  transport.acceptOpens();
  await waitFor(() => !store.owned, { what: 'released' });

  // Another owner (a new connection on the same store) resumes the session and sends m3 and m4:
  // the token rotates, m2..m4 are acknowledged; then it too goes away without closing.
  const other = resumable(transport, { ackDelayMs: 0, store });
  const otherConn = attach(other, giveUpFast);
  await opened(otherConn);
  await Promise.all([otherConn.send('m3'), otherConn.send('m4')]);
  const otherEnd = closed(otherConn);
  transport.refuseOpens(1, new LinkFailedError('gave up', { recoverable: false }));
  transport.current!.fail();
  await otherEnd;
  transport.acceptOpens();
  await waitFor(() => !store.owned, { what: 'released by the other owner' });

  // The first object, attached again: its memory (m2 pending, the old token) is out of date.
  const second = attach(client, giveUpFast);
  await opened(second);
  await second.send('m5');
  const atServer = [...peer.sessions.values()].map((session) => session.received.map((m) => String(m.data)));
  expect(atServer).toEqual([['m1', 'm2', 'm3', 'm4', 'm5']]);
  expect(client.restored).toMatchObject({ lastSent: 4, pendingOutgoing: 0 });
  second.close();
  peer.stop();
});
