// Sends made while a resumable connection with a client store has no link (an outage, or before
// the first link): the session takes them at once (`Transport.hold`), so they are stored and a
// process that dies during the outage loses none of them. Against the in-memory resume peer.
import { attach, type HAConnection, type LinkData, LinkFailedError } from '@lifeline/core';
import {
  type ClientSessionChange,
  type ClientSessionStore,
  MemoryClientSessionStore,
  resumable,
} from '@lifeline/core/internal';
import { createMemoryTransport, type MemoryTransport, waitFor } from '@lifeline/core/testing';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';
import { closed, down, opened, tallyNumbered } from './support.js';

const options = {
  backoff: { initialDelayMs: 5, maxDelayMs: 20 },
  minUptimeMs: 0,
  maxAttemptsPerFailure: Number.POSITIVE_INFINITY,
} as const;

function connect(transport: MemoryTransport<LinkData>, store: ClientSessionStore | undefined) {
  const client = resumable(transport, { ackDelayMs: 0, ...(store ? { store } : {}) });
  const conn = attach(client, options);
  const settled = { resolved: 0, rejected: 0 };
  const send = (text: string) =>
    conn.send(text).then(
      () => void settled.resolved++,
      () => void settled.rejected++,
    );
  return { client, conn, send, settled };
}

test('sends made during an outage are stored: a process that dies in the outage loses none, the next start sends them once, in order', async () => {
  const store = new MemoryClientSessionStore();
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const first = connect(transport, store);
  await opened(first.conn);
  await Promise.all([1, 2, 3].map((k) => first.send(`m${k}`)));
  const sessionId = first.client.session!.id;

  // The outage: the link breaks and no new one opens.
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  transport.current!.fail();
  await waitFor(() => first.conn.state$.value.status === 'recovering', { what: 'recovering' });
  const K = 200;
  for (let k = 4; k <= 3 + K; k++) void first.send(`m${k}`);
  // Every one of them is in the store (they were never written on a link).
  await waitFor(() => store.stored?.messages.length === K, {
    timeoutMs: 10_000,
    what: 'the outage sends stored',
    state: () => ({
      stored: store.stored?.messages.map((m) => m.seq).join(','),
      lastSent: first.client.handle.lastSent,
      pending: first.conn.pending,
    }),
  });
  expect(store.stored!.messages.map((message) => message.seq)).toEqual(
    Array.from({ length: K }, (_, i) => 4 + i),
  );

  // The process dies, still in the outage: its next open fails for good, it never closes the session.
  const end = closed(first.conn);
  transport.refuseOpens(1, new LinkFailedError('the process died', { recoverable: false }));
  await end;
  await store.close();

  // The next start, the server still down: it reads the store and sends more, before and after
  // the store was read; those are stored too, after the restored ones.
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  const second = connect(transport, store);
  const J = 20;
  for (let k = 4 + K; k < 4 + K + J / 2; k++) void second.send(`m${k}`);
  await waitFor(() => second.client.restored !== undefined, { what: 'restored' });
  for (let k = 4 + K + J / 2; k < 4 + K + J; k++) void second.send(`m${k}`);
  await waitFor(() => store.stored?.messages.length === K + J, {
    timeoutMs: 10_000,
    what: 'the restart sends stored',
    state: () => ({ stored: store.stored?.messages.length, lastSent: second.client.handle.lastSent }),
  });
  expect(second.client.restored).toMatchObject({ sessionId, pendingOutgoing: K, lastSent: 3 + K });

  // The server is back: one session, every message once, in order.
  transport.acceptOpens();
  await opened(second.conn);
  await waitFor(() => second.settled.resolved === J && second.client.handle.peerAcked === 3 + K + J, {
    timeoutMs: 10_000,
    what: 'every send acknowledged',
    state: () => ({
      ...second.settled,
      lastSent: second.client.handle.lastSent,
      acked: second.client.handle.peerAcked,
    }),
  });
  const sessions = [...peer.sessions.values()];
  expect(sessions.map((session) => session.id)).toEqual([sessionId]);
  const received = sessions[0]!.received.map((message) => String(message.data));
  expect(tallyNumbered(received, 3 + K + J)).toEqual({
    sent: 3 + K + J,
    received: 3 + K + J,
    lost: 0,
    duplicated: 0,
    reordered: 0,
  });
  expect(received).toEqual(Array.from({ length: 3 + K + J }, (_, i) => `m${i + 1}`));
  expect(second.settled.rejected).toBe(0);
  second.conn.close();
  peer.stop();
});

/** A memory store that records each write. */
class RecordingStore extends MemoryClientSessionStore {
  readonly changes: ClientSessionChange[] = [];
  override write(change: ClientSessionChange): Promise<void> {
    this.changes.push(change);
    return super.write(change);
  }
}

test('a first start with the server unreachable: the sends taken before any session existed are stored with its identity, before any is written', async () => {
  const store = new RecordingStore();
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  const client = connect(transport, store);
  for (let k = 1; k <= 5; k++) void client.send(`m${k}`);
  await waitFor(() => client.client.handle.lastSent === 5);
  transport.acceptOpens();
  await opened(client.conn);
  await waitFor(() => client.settled.resolved === 5);
  const identity = store.changes.find((change) => change.identity);
  expect(identity?.append?.map((message) => message.seq)).toEqual([1, 2, 3, 4, 5]);
  const session = [...peer.sessions.values()][0]!;
  expect(session.received.map((message) => String(message.data))).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
  client.conn.close();
  peer.stop();
});

test('without a store, sends made during an outage still wait in the connection queue (withdrawable)', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const client = connect(transport, undefined);
  await opened(client.conn);
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  transport.current!.fail();
  await waitFor(() => client.conn.state$.value.status === 'recovering');
  for (let k = 1; k <= 5; k++) void client.send(`m${k}`);
  expect(client.client.handle.lastSent).toBe(0);
  expect(client.conn.clearQueue()).toBe(5);
  await waitFor(() => client.settled.rejected === 5);
  client.conn.close();
  peer.stop();
});

test('a session the server forgot during the outage: the sends it held are reported lost with the rest; sends made before renegotiate ran go after its own', async () => {
  const store = new MemoryClientSessionStore();
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  let conn: HAConnection<LinkData, LinkData> | undefined;
  let fromApplication: Promise<unknown> | undefined;
  const client = resumable(transport, {
    ackDelayMs: 0,
    store,
    renegotiate: async ({ link }) => {
      // The application sends while the new session is being set up: it must not go first.
      fromApplication = conn!.send('x');
      await link.send('hello-again');
    },
  });
  const lost: unknown[] = [];
  client.session$.subscribe((event) => {
    if (event.type === 'lost') lost.push(event.unacknowledged);
  });
  conn = attach(client, options);
  await opened(conn);
  await conn.send('a1');
  const oldId = client.session!.id;

  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  transport.current!.fail();
  await waitFor(() => conn!.state$.value.status === 'recovering', { what: 'recovering' });
  const outcomes = ['h2', 'h3', 'h4'].map((text) =>
    conn!.send(text).then(
      () => 'sent',
      (error) => error,
    ),
  );
  await waitFor(() => store.stored?.messages.length === 3, { what: 'the outage sends stored' });
  // The server restarted with a memory store meanwhile: it forgot the session.
  peer.forgetAll();
  transport.acceptOpens();
  await waitFor(() => fromApplication !== undefined, { what: 'renegotiate' });
  await fromApplication;

  expect(lost).toEqual([
    [
      { seq: 2, data: 'h2', maybeDelivered: false },
      { seq: 3, data: 'h3', maybeDelivered: false },
      { seq: 4, data: 'h4', maybeDelivered: false },
    ],
  ]);
  for (const outcome of await Promise.all(outcomes))
    expect(outcome).toMatchObject({ code: 'ERR_SESSION_LOST' });
  expect(peer.session.id).not.toBe(oldId);
  expect(peer.session.received.map((message) => String(message.data))).toEqual(['hello-again', 'x']);
  conn.close();
  peer.stop();
});

test('close() during the outage ends the session: the sends it held reject and the store is cleared, so no later start sends them', async () => {
  const store = new MemoryClientSessionStore();
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const client = connect(transport, store);
  await opened(client.conn);
  await client.send('m1');
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  transport.current!.fail();
  await waitFor(() => client.conn.state$.value.status === 'recovering', { what: 'recovering' });
  for (let k = 2; k <= 4; k++) void client.send(`m${k}`);
  await waitFor(() => store.stored?.messages.length === 3, { what: 'the outage sends stored' });
  client.conn.close();
  await waitFor(() => client.settled.rejected === 3, { what: 'the held sends rejected' });
  await waitFor(() => store.stored === undefined && !store.owned, { what: 'the store cleared and released' });
  expect(client.client.handle.state).toBe('closed');
  peer.stop();
});

test('the lost list says which messages may have reached the server: written ones (and restored ones) maybeDelivered, outage sends never written not', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const store = new MemoryClientSessionStore();
  const client = resumable(transport, { ackDelayMs: 0, store });
  const lost: { seq: number; data: string | Uint8Array; maybeDelivered: boolean }[][] = [];
  client.session$.subscribe((event) => {
    if (event.type === 'lost') lost.push([...event.unacknowledged]);
  });
  const conn = attach(client, options);
  await opened(conn);
  await conn.send('a1');
  // Written, never acknowledged (the link went silent): 5 that may have arrived.
  transport.current!.halfOpen();
  for (let k = 1; k <= 5; k++) void conn.send(`w${k}`).catch(() => {});
  await waitFor(() => store.stored?.messages.length === 5, { what: 'the written ones stored' });
  // The outage: 7 more, taken and stored, never written to any link.
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  transport.current!.fail();
  await waitFor(() => conn.state$.value.status === 'recovering', { what: 'recovering' });
  for (let k = 1; k <= 7; k++) void conn.send(`o${k}`).catch(() => {});
  await waitFor(() => store.stored?.messages.length === 12, { what: 'the outage sends stored' });
  // The server forgot the session meanwhile.
  peer.forgetAll();
  transport.acceptOpens();
  await waitFor(() => lost.length === 1, { timeoutMs: 10_000, what: 'the loss reported' });
  const list = lost[0]!;
  const counts = {
    listed: list.length,
    maybeDelivered: list.filter((message) => message.maybeDelivered).length,
    certainlyNot: list.filter((message) => !message.maybeDelivered).length,
  };
  expect(counts).toEqual({ listed: 12, maybeDelivered: 5, certainlyNot: 7 });
  expect(list.filter((message) => message.maybeDelivered).map((message) => message.data)).toEqual([
    'w1',
    'w2',
    'w3',
    'w4',
    'w5',
  ]);
  expect(list.filter((message) => !message.maybeDelivered).map((message) => message.data)).toEqual(
    Array.from({ length: 7 }, (_, i) => `o${i + 1}`),
  );
  conn.close();
  peer.stop();
});
