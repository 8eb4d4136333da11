// A resumable client given a `ClientSessionStore` (issue 15): the session survives the connection
// (a process or page that died without closing), writes are batched and land before the wire
// sees what they cover, and a store that cannot be read or written fails loudly.
import {
  attach,
  ClientSessionLockedError,
  ClientSessionStoreError,
  type HAConnection,
  type LinkData,
  LinkFailedError,
} from '@lifeline/core';
import {
  bytesToHex,
  type ClientSessionChange,
  type ClientSessionStore,
  decodeClientSession,
  encodeClientSession,
  MemoryClientSessionStore,
  resumable,
  type SessionEvent,
  type StoredClientSession,
} from '@lifeline/core/internal';
import { createMemoryTransport, type MemoryTransport, waitFor } from '@lifeline/core/testing';
import { expect, test } from 'vitest';
import { TestResumePeer } from './resume-peer.js';
import { closed, opened } from './support.js';

const fast = { backoff: { initialDelayMs: 0, maxDelayMs: 10 }, minUptimeMs: 0 } as const;

function connect(transport: MemoryTransport<LinkData>, store: ClientSessionStore | undefined) {
  const client = resumable(transport, { ackDelayMs: 0, ...(store ? { store } : {}) });
  const events: SessionEvent[] = [];
  client.session$.subscribe((event) => events.push(event));
  const conn = attach(client, fast);
  const received: string[] = [];
  conn.messages$.subscribe((data) => received.push(String(data)));
  return { client, conn, events, received };
}

/**
 * The client's process dies: its link goes silent, then breaks, and it never reconnects (its one
 * reopen is refused as fatal, so attach gives up without closing the session). The store's owner
 * is gone, so its ownership is released, as the OS releases a dead process's lock.
 */
async function crash(
  transport: MemoryTransport<LinkData>,
  conn: HAConnection<LinkData, LinkData>,
  store: ClientSessionStore | undefined,
) {
  const end = closed(conn);
  transport.refuseOpens(1, new LinkFailedError('the process died', { recoverable: false }));
  transport.current!.fail();
  await end;
  transport.acceptOpens();
  await store?.close();
}

async function resumeAfterCrash(store: ClientSessionStore | undefined) {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const first = connect(transport, store);
  await opened(first.conn);
  await Promise.all([first.conn.send('a1'), first.conn.send('a2'), first.conn.send('a3')]);
  const server = peer.session;
  for (const text of ['s1', 's2', 's3']) void server.endpoint.send(text);
  await waitFor(() => first.received.length === 3);
  // Written and never acknowledged (the link went silent), then the process dies: b4 and b5 exist
  // only in the store; s4 and s5 are sent by the server while nobody hears them.
  transport.current!.halfOpen();
  void first.conn.send('b4').catch(() => {});
  void first.conn.send('b5').catch(() => {});
  void server.endpoint.send('s4');
  void server.endpoint.send('s5');
  await waitFor(() => first.client.session!.lastSent === 5);
  await crash(transport, first.conn, store);

  const second = connect(transport, store);
  await opened(second.conn);
  const restored = second.client.restored;
  await second.conn.send('c6');
  await waitFor(() =>
    [...peer.sessions.values()].some((session) => session.received.some((message) => message.data === 'c6')),
  );
  // What the server still had to deliver arrives (nothing, without the store: a new session).
  if (store) await waitFor(() => second.received.length === 2);
  const result = {
    restored,
    server: [...peer.sessions.values()].map((session) => ({
      id: session.id,
      received: session.received.map((message) => message.data),
    })),
    firstId: server.id,
    secondId: second.client.session?.id,
    received: second.received,
    events: second.events.map((event) => event.type),
  };
  second.conn.close();
  peer.stop();
  return result;
}

test('a new connection given the store of one that died resumes its session: unacknowledged sends once, server messages after the watermark', async () => {
  const store = new MemoryClientSessionStore();
  const result = await resumeAfterCrash(store);
  expect(result.restored).toEqual({
    sessionId: result.firstId,
    pendingOutgoing: 2,
    lastSent: 5,
    lastReceived: 3,
    deliveredUpTo: 3,
    exceedsLimits: false,
  });
  // One server session throughout: it got every message once, in order.
  expect(result.server).toEqual([{ id: result.firstId, received: ['a1', 'a2', 'a3', 'b4', 'b5', 'c6'] }]);
  // The application got exactly the server's messages after the watermark.
  expect(result.received).toEqual(['s4', 's5']);
  expect(result.events).toEqual(['resumed']);
  // Closed on purpose: the stored session is forgotten, so the next start is a new session, and
  // ownership is released for it.
  await waitFor(() => store.stored === undefined && !store.owned);
});

test('without a store the same crash loses the session (what the store is for)', async () => {
  const result = await resumeAfterCrash(undefined);
  expect(result.restored).toBeUndefined();
  expect(result.events).toEqual(['new']);
  expect(result.secondId).not.toBe(result.firstId);
  // The server holds the abandoned session until its TTL; the new one got only the new traffic.
  expect(result.server.find((session) => session.id === result.secondId)!.received).toEqual(['c6']);
  expect(result.received).toEqual([]);
});

/** A store whose writes wait until the test releases them. */
class GatedStore implements ClientSessionStore {
  readonly inner = new MemoryClientSessionStore();
  readonly writes: ClientSessionChange[] = [];
  private gates: (() => void)[] = [];
  held = true;
  fail: Error | undefined;
  open() {
    return this.inner.open();
  }
  async write(change: ClientSessionChange): Promise<void> {
    this.writes.push(change);
    if (this.fail) throw this.fail;
    if (this.held) await new Promise<void>((resolve) => this.gates.push(resolve));
    await this.inner.write(change);
  }
  release(): void {
    for (const gate of this.gates.splice(0)) gate();
  }
  close() {
    return this.inner.close();
  }
}

test('nothing reaches the wire before the store holds it: the confirming ACK waits for the identity, DATA for its message, an ACK for its watermark', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const store = new GatedStore();
  const { conn, received } = connect(transport, store);
  try {
    await waitFor(() => store.writes.length === 1);
    // WELCOME arrived; the identity is being stored: the client has confirmed nothing yet.
    expect(store.writes[0]).toMatchObject({ reset: true, identity: { id: expect.any(Uint8Array) } });
    expect(peer.frames.map((frame) => frame.type)).toEqual(['hello']);
    store.release();
    await opened(conn);
    expect(peer.frames.map((frame) => frame.type)).toEqual(['hello', 'ack']);

    const sent = conn.send('x1');
    await waitFor(() => store.writes.length === 2);
    expect(store.writes[1]!.append?.map((message) => message.seq)).toEqual([1]);
    expect(peer.frames.filter((frame) => frame.type === 'data')).toHaveLength(0);
    store.release();
    await sent;
    expect(peer.session.received.map((message) => message.data)).toEqual(['x1']);
    // The server's acknowledgement is stored too (it shortens what a restart re-sends).
    await waitFor(() => store.writes.some((write) => write.peerAcked === 1));
    store.release();

    // A server message: delivered only once `delivered` is stored, acknowledged once `received` is.
    const acksBefore = peer.frames.filter((frame) => frame.type === 'ack').length;
    const writesBefore = store.writes.length;
    void peer.session.endpoint.send('y1');
    await waitFor(() => store.writes.some((write) => write.delivered === 1));
    expect(received).toEqual([]);
    store.release();
    await waitFor(() => received.length === 1);
    await waitFor(() => store.writes.slice(writesBefore).some((write) => write.received === 1));
    expect(peer.frames.filter((frame) => frame.type === 'ack')).toHaveLength(acksBefore);
    store.release();
    await waitFor(() => peer.frames.filter((frame) => frame.type === 'ack').length === acksBefore + 1);
    store.held = false;
  } finally {
    store.release();
    conn.close();
    peer.stop();
  }
});

test('writes are batched: a burst of 200 sends costs at most two store writes, not one per message', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const store = new GatedStore();
  store.held = false;
  const { conn } = connect(transport, store);
  try {
    await opened(conn);
    const before = store.writes.length;
    const sends: Promise<void>[] = [];
    for (let i = 1; i <= 200; i++) sends.push(conn.send(`m${i}`));
    await Promise.all(sends);
    expect(peer.session.received).toHaveLength(200);
    // The first message's write, then everything sent while it was in flight.
    const appends = store.writes.slice(before).filter((write) => write.append);
    expect(appends.map((write) => write.append!.length)).toEqual([1, 199]);
    // Acknowledgements join writes too: far fewer writes than messages in all.
    expect(store.writes.length - before).toBeLessThanOrEqual(6);
    await waitFor(() => store.inner.stored!.messages.length === 0);
    expect(store.inner.stored!.peerAcked).toBe(200);
  } finally {
    conn.close();
    peer.stop();
  }
});

test('a store that fails a write closes the connection with a ClientSessionStoreError (write-failed)', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const store = new GatedStore();
  store.held = false;
  const { conn } = connect(transport, store);
  try {
    await opened(conn);
    store.fail = new Error('disk full');
    const end = closed(conn);
    const sent = conn.send('x').catch((error: unknown) => error);
    const state = await end;
    expect(state.status === 'closed' && state.error).toBeInstanceOf(ClientSessionStoreError);
    expect(((state as { error?: unknown }).error as ClientSessionStoreError).reason).toBe('write-failed');
    expect(await sent).toBeInstanceOf(Error);
    // Written to the wire? Never: the store never held it.
    expect(peer.frames.filter((frame) => frame.type === 'data')).toHaveLength(0);
  } finally {
    peer.stop();
  }
});

test('a corrupt or unreadable store fails the open with a typed error and is not written over; a second owner is refused', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const writes: ClientSessionChange[] = [];
  const corrupt: ClientSessionStore = {
    open: async () => decodeClientSession('{"format":"lifeline-client-session","version":1,"id":"zz"}'),
    write: async (change) => {
      writes.push(change);
    },
    close: async () => {},
  };
  const { conn } = connect(transport, corrupt);
  const state = await closed(conn);
  expect(state.status === 'closed' && state.error).toBeInstanceOf(ClientSessionStoreError);
  expect(((state as { error?: unknown }).error as ClientSessionStoreError).reason).toBe('corrupt');
  expect(writes).toEqual([]);
  expect(transport.openAttempts).toBe(0);

  const failing: ClientSessionStore = {
    open: () => Promise.reject(new Error('EACCES')),
    write: async () => {},
    close: async () => {},
  };
  const second = connect(transport, failing);
  const secondState = await closed(second.conn);
  expect(secondState.status === 'closed' && (secondState.error as ClientSessionStoreError).reason).toBe(
    'unreadable',
  );

  const shared = new MemoryClientSessionStore();
  const owner = connect(transport, shared);
  await opened(owner.conn);
  const intruder = connect(transport, shared);
  const intruderState = await closed(intruder.conn);
  expect(intruderState.status === 'closed' && intruderState.error).toBeInstanceOf(ClientSessionLockedError);
  owner.conn.close();
  peer.stop();
});

test('the stored form round-trips text and binary messages and rejects every malformed field', () => {
  const state: StoredClientSession = {
    id: new Uint8Array(16).fill(1),
    token: new Uint8Array(16).fill(2),
    peerAcked: 4,
    received: 7,
    delivered: 9,
    messages: [
      { seq: 5, kind: 'text', payload: new TextEncoder().encode('héllo') },
      { seq: 6, kind: 'binary', payload: new Uint8Array([0, 255, 7]) },
    ],
  };
  expect(decodeClientSession(encodeClientSession(state))).toEqual(state);
  const good = JSON.parse(encodeClientSession(state));
  const bad = [
    'not json',
    '[]',
    JSON.stringify({ ...good, version: 2 }),
    JSON.stringify({ ...good, token: 'ab' }),
    JSON.stringify({ ...good, received: -1 }),
    JSON.stringify({ ...good, delivered: 1 }),
    JSON.stringify({ ...good, messages: [good.messages[1]] }),
    JSON.stringify({ ...good, messages: [[5, 'x', 'a']] }),
    JSON.stringify({ ...good, messages: [[5, 'b', '***']] }),
    encodeClientSession(state).slice(0, -3),
  ];
  for (const text of bad) {
    expect(() => decodeClientSession(text, '/x')).toThrow(ClientSessionStoreError);
  }
});

test('a stored session the server no longer knows is reported lost with exactly its stored messages, and the store then holds the new session', async () => {
  const transport = createMemoryTransport<LinkData>();
  const peer = new TestResumePeer(transport, { ackDelayMs: 0 });
  const store = new MemoryClientSessionStore();
  const first = connect(transport, store);
  await opened(first.conn);
  await first.conn.send('a1');
  const oldId = peer.session.id;
  transport.current!.halfOpen();
  void first.conn.send('b2').catch(() => {});
  await waitFor(() => store.stored?.messages.length === 1);
  await crash(transport, first.conn, store);
  // The server restarted with a memory store (or the session expired): it forgot the session.
  peer.forgetAll();

  const second = connect(transport, store);
  await opened(second.conn);
  expect(second.client.restored).toMatchObject({ sessionId: oldId, pendingOutgoing: 1, lastSent: 2 });
  const lost = second.events.find((event) => event.type === 'lost');
  expect(lost).toMatchObject({ reason: 'unknown-session', sessionId: oldId });
  expect(lost?.type === 'lost' && lost.unacknowledged).toEqual([
    { seq: 2, data: 'b2', maybeDelivered: true },
  ]);
  expect(second.events.map((event) => event.type)).toEqual(['lost', 'new']);
  await second.conn.send('c1');
  const newId = peer.session.id;
  expect(newId).not.toBe(oldId);
  expect(peer.session.received.map((message) => message.data)).toEqual(['c1']);
  await waitFor(() => store.stored !== undefined && store.stored.peerAcked === 1);
  expect(bytesToHex(store.stored!.id)).toBe(newId);
  second.conn.close();
  peer.stop();
});

test('a stored session that is not JSON fails without quoting the file: no part of its token in the error or its cause', () => {
  const token = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
  // A byte broken right before the token: V8's SyntaxError message quotes the text around it.
  const text = `{"format":"lifeline-client-session","version":1,"id":"${'a'.repeat(32)}","token":x"${token}"}`;
  let error: unknown;
  try {
    decodeClientSession(text, '/x');
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ClientSessionStoreError);
  const written: string[] = [];
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    written.push(String(e), e.stack ?? '', JSON.stringify(e));
  }
  for (const line of written) expect(line).not.toContain(token.slice(0, 6));
});
