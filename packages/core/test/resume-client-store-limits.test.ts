// A stored session written by a process with larger limits than this connection's (issue 15):
// nothing stored is dropped, the backlog is re-sent once, and new sends are refused (saying why)
// only while the restored part waiting for room is over this connection's limits.
import { attach, type LinkData, LinkFailedError, ReplayWindowFullError } from '@lifeline/core';
import { MemoryClientSessionStore, type ResumableOptions, resumable } from '@lifeline/core/internal';
import { createMemoryTransport, type MemoryTransport, waitFor } from '@lifeline/core/testing';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';
import { closed, down, opened, tallyNumbered } from './support.js';

const options = {
  backoff: { initialDelayMs: 5, maxDelayMs: 20 },
  minUptimeMs: 0,
  maxAttemptsPerFailure: Number.POSITIVE_INFINITY,
} as const;

function connect(
  transport: MemoryTransport<LinkData>,
  store: MemoryClientSessionStore,
  limits: ResumableOptions = {},
) {
  const client = resumable(transport, { ackDelayMs: 0, store, ...limits });
  const conn = attach(client, options);
  const outcomes = new Map<string, unknown>();
  const send = (text: string) =>
    conn.send(text).then(
      () => void outcomes.set(text, 'sent'),
      (error: unknown) => void outcomes.set(text, error),
    );
  return { client, conn, send, outcomes };
}

/**
 * A first process (default limits) sends 1 message online and `backlog` more during an outage,
 * all stored, and dies in the outage. Returns the store it left.
 */
async function storeBacklog(
  transport: MemoryTransport<LinkData>,
  backlog: number,
  payload: (k: number) => string,
) {
  const store = new MemoryClientSessionStore();
  const first = connect(transport, store);
  await opened(first.conn);
  await first.send(payload(1));
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  transport.current!.fail();
  await waitFor(() => first.conn.state$.value.status === 'recovering', { what: 'recovering' });
  for (let k = 2; k <= 1 + backlog; k++) void first.send(payload(k));
  await waitFor(() => store.stored?.messages.length === backlog, { what: 'the backlog stored' });
  const end = closed(first.conn);
  transport.refuseOpens(1, new LinkFailedError('the process died', { recoverable: false }));
  await end;
  await waitFor(() => !store.owned, { what: 'the store released' });
  return store;
}

test('a backlog stored under larger limits (message counts): re-sent once; new sends refused, saying why, only until the server acknowledged enough of it', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const backlog = 200;
  const store = await storeBacklog(transport, backlog, (k) => `m${k}`);

  // Restarted with far smaller limits, the server still down.
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  const limits = { maxReplayMessages: 10, maxWaitingMessages: 20 };
  const second = connect(transport, store, limits);
  await waitFor(() => second.client.restored !== undefined, { what: 'restored' });
  expect(second.client.restored).toMatchObject({ pendingOutgoing: backlog, exceedsLimits: true });
  void second.send('m202');
  await waitFor(() => second.outcomes.has('m202'), { what: 'the send during the outage settled' });
  const refusal = second.outcomes.get('m202');
  expect(refusal).toBeInstanceOf(ReplayWindowFullError);
  expect((refusal as ReplayWindowFullError).limit).toBe('messages');
  expect((refusal as Error).message).toMatch(/a restored backlog waits/);

  // The server is back: the backlog drains a window at a time; once what waits of it is under the
  // limits, sends are taken again (they wait behind it), and every one goes once, in order.
  transport.acceptOpens();
  await opened(second.conn);
  await waitFor(() => second.client.handle.pending < limits.maxReplayMessages + limits.maxWaitingMessages, {
    timeoutMs: 10_000,
    what: 'the backlog under the limits',
  });
  const later = Array.from({ length: 15 }, (_, i) => `m${203 + i}`);
  for (const text of later) void second.send(text);
  await waitFor(() => later.every((text) => second.outcomes.get(text) === 'sent'), {
    timeoutMs: 10_000,
    what: 'the later sends acknowledged',
    state: () => ({ outcomes: [...second.outcomes.entries()].map(([k, v]) => `${k}:${String(v)}`) }),
  });
  await waitFor(() => second.client.handle.pending === 0, {
    timeoutMs: 10_000,
    what: 'everything acknowledged',
  });
  const received = peer.session.received.map((message) => String(message.data));
  const expected = [
    ...Array.from({ length: 1 + backlog }, (_, i) => i + 1),
    ...later.map((t) => Number(t.slice(1))),
  ];
  expect(tallyNumbered(received, expected)).toEqual({
    sent: 1 + backlog + later.length,
    received: 1 + backlog + later.length,
    lost: 0,
    duplicated: 0,
    reordered: 0,
  });
  expect(received).toEqual(expected.map((k) => `m${k}`));
  expect(peer.sessions.size).toBe(1);
  second.conn.close();
  peer.stop();
});

test('the same with byte limits: a restored backlog over maxWaitingBytes refuses new sends with limit bytes until it drained below it', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const backlog = 60;
  const body = 'x'.repeat(1_000);
  const store = await storeBacklog(transport, backlog, (k) => `m${k}:${body}`);

  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  const limits = { maxReplayBytes: 8_000, maxWaitingBytes: 16_000 };
  const second = connect(transport, store, limits);
  await waitFor(() => second.client.restored !== undefined, { what: 'restored' });
  expect(second.client.restored).toMatchObject({ pendingOutgoing: backlog, exceedsLimits: true });
  void second.send(`m62:${body}`);
  await waitFor(() => second.outcomes.has(`m62:${body}`), { what: 'the send during the outage settled' });
  const refusal = second.outcomes.get(`m62:${body}`) as ReplayWindowFullError;
  expect(refusal).toBeInstanceOf(ReplayWindowFullError);
  expect(refusal.limit).toBe('bytes');
  expect(refusal.message).toMatch(/restored backlog/);

  transport.acceptOpens();
  await opened(second.conn);
  await waitFor(() => second.client.handle.pending === 0, { timeoutMs: 10_000, what: 'the backlog drained' });
  void second.send(`m63:${body}`);
  await waitFor(() => second.outcomes.get(`m63:${body}`) === 'sent', { what: 'a send after the drain' });
  const received = peer.session.received.map((message) => String(message.data).split(':')[0]!);
  const expected = [...Array.from({ length: 1 + backlog }, (_, i) => i + 1), 63];
  expect(tallyNumbered(received, expected)).toEqual({
    sent: expected.length,
    received: expected.length,
    lost: 0,
    duplicated: 0,
    reordered: 0,
  });
  second.conn.close();
  peer.stop();
});

test('a backlog within the limits is not flagged and refuses nothing', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const store = await storeBacklog(transport, 20, (k) => `m${k}`);
  transport.refuseOpens(Number.POSITIVE_INFINITY, down());
  const second = connect(transport, store, { maxReplayMessages: 10, maxWaitingMessages: 20 });
  await waitFor(() => second.client.restored !== undefined, { what: 'restored' });
  expect(second.client.restored).toMatchObject({ pendingOutgoing: 20, exceedsLimits: false });
  void second.send('m22');
  transport.acceptOpens();
  await waitFor(() => second.outcomes.get('m22') === 'sent', { timeoutMs: 10_000, what: 'm22 acknowledged' });
  expect(peer.session.received.map((message) => String(message.data))).toEqual(
    Array.from({ length: 22 }, (_, i) => `m${i + 1}`),
  );
  second.conn.close();
  peer.stop();
});
