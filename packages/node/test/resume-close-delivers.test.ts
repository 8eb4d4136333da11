/**
 * A resume session closed by its client right after sends made on the open link: what the client
 * wrote before its CLOSE is delivered to the server's `messages$` in order, exactly once, and
 * acknowledged before the session ends, so every awaited send resolves (delivered) rather than
 * rejecting with `ClosedByUserError`, and no `send()` is lost silently; as a plain WebSocket
 * delivers what `send()` queued before `close()` (WHATWG). Counted at a real server (127.0.0.1,
 * port 0) with the memory store and the SQLite store, through `HAWebSocket` (`resume: true`) and
 * through `attach(resumable(wsTransport(url)))` + `conn.close()`, closed in the sends' tick and
 * one `setImmediate` later (the DATA frames written before the CLOSE).
 *
 * Before: the server ended the session at the CLOSE frame, dropping the DATA frames still waiting
 * for the store's "delivered" step (0 of 15 delivered), and the client closed its link at once
 * after the CLOSE, so an ACK the server wrote never settled a send (all 5 rejected).
 *
 * With a client session store (`FileClientSessionStore`), whose sends reach the link only once
 * stored: the CLOSE follows them (before: 0 of 15 delivered, 15 of 15 rejected with
 * `ClosedByUserError`, the server ignoring the DATA as sent after the CLOSE).
 *
 * Last, the bound: a server that acknowledges part of what it got after the CLOSE and never
 * closes the link; the client closes it after its linger (2 s, real time: the wait is an event,
 * bounded), with the code and reason given, and only the unacknowledged send rejects.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attach } from '@lifeline/core';
import { encodeAck, encodeWelcome, ResumeFrameType, resumable } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import { FileClientSessionStore } from '@lifeline/node/client-store';
import { createResumeServer, type ServerSessionEvent, SqliteSessionStore } from '@lifeline/node/server';
import { HAWebSocket, wsTransport } from '@lifeline/node/ws';
import { describe, expect, it, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';

const WAIT = { timeoutMs: 15_000 };
const SENDS = 10;
const AWAITED = 5;

type StoreKind = 'memory' | 'sqlite';
type When = 'same tick' | 'after setImmediate';

/** A resume server on 127.0.0.1:0 recording what its sessions receive and how they end. */
async function server(store: StoreKind) {
  let sqlite: SqliteSessionStore | undefined;
  if (store === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'lifeline-rclose-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    sqlite = new SqliteSessionStore({ path: join(dir, 'sessions.db') });
  }
  const resumeServer = createResumeServer(sqlite ? { store: sqlite } : {});
  const received: string[] = [];
  const ends: ServerSessionEvent[] = [];
  resumeServer.sessions$.subscribe((session) => {
    session.messages$.subscribe((message) => received.push(String(message.data)));
    session.events$.subscribe((event) => {
      if (event.type === 'close' || event.type === 'expire') ends.push(event);
    });
  });
  const { url } = await resumeServer.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    await resumeServer.close({ goAway: false });
    await sqlite?.close();
  });
  return { url, received, ends };
}

const nameOf = (error: unknown) => (error instanceof Error ? error.name : String(error));

interface Settled {
  resolved: number;
  rejected: string[];
}

/** Counts how `sent` settles in `tally`. */
function count(sent: Promise<void>, tally: Settled): void {
  sent.then(
    () => tally.resolved++,
    (error: unknown) => tally.rejected.push(nameOf(error)),
  );
}

/**
 * Waits until `total` sends settled and `more()` holds, then for the session's end at the server,
 * then one task more: a second close event, or a late dropped, would come within it.
 */
async function settled(tally: Settled, total: number, ends: unknown[], more = () => true) {
  await waitFor(() => tally.resolved + tally.rejected.length === total && more(), {
    ...WAIT,
    what: 'every send settled (and the close event)',
    state: () => tally,
  });
  await waitFor(() => ends.length > 0, { ...WAIT, what: 'the session end at the server' });
  await new Promise((resolve) => setImmediate(resolve));
}

describe.each(['memory', 'sqlite'] as const)('with the %s store', (store) => {
  it.each(['same tick', 'after setImmediate'] as const)(
    'HAWebSocket: send() x10, sendAsync() x5, close() %s: 15 of 15 delivered in order, 5 of 5 resolved',
    async (when: When) => {
      const { url, received, ends } = await server(store);
      const socket = new HAWebSocket(url, { resume: true });
      cleanups.push(() => socket.close());
      const tally = { resolved: 0, rejected: [] as string[], dropped: 0, errors: 0, closes: [] as unknown[] };
      socket.addEventListener('dropped', () => tally.dropped++);
      socket.addEventListener('error', () => tally.errors++);
      socket.addEventListener('close', ({ code, wasClean }) => tally.closes.push({ code, wasClean }));
      await once(socket, 'open');
      const sent: string[] = [];
      for (let i = 0; i < SENDS; i++) {
        sent.push(`m${i}`);
        socket.send(`m${i}`);
      }
      for (let i = 0; i < AWAITED; i++) {
        sent.push(`a${i}`);
        count(socket.sendAsync(`a${i}`), tally);
      }
      if (when === 'after setImmediate') await new Promise((resolve) => setImmediate(resolve));
      socket.close(1000, 'bye');
      await settled(tally, AWAITED, ends, () => tally.closes.length > 0);
      // The server half: every message written before the CLOSE delivered, once, in order.
      expect({ received, ends }).toEqual({
        received: sent,
        ends: [{ type: 'close', by: 'client', unacknowledged: [] }],
      });
      // Every sendAsync resolved (acknowledged before the end); no dropped, no error, one close event.
      expect({ ...tally }).toEqual({
        resolved: AWAITED,
        rejected: [],
        dropped: 0,
        errors: 0,
        closes: [{ code: 1000, wasClean: true }],
      });
    },
  );

  it.each(['same tick', 'after setImmediate'] as const)(
    'attach(resumable(...)): conn.send() x15, conn.close() %s: 15 of 15 delivered in order, 15 of 15 resolved',
    async (when: When) => {
      const { url, received, ends } = await server(store);
      const conn = attach(resumable(wsTransport(url)));
      cleanups.push(() => conn.close());
      await conn.send('first');
      const sent = ['first'];
      const tally: Settled = { resolved: 0, rejected: [] };
      for (let i = 0; i < SENDS + AWAITED; i++) {
        sent.push(`c${i}`);
        count(conn.send(`c${i}`), tally);
      }
      if (when === 'after setImmediate') await new Promise((resolve) => setImmediate(resolve));
      conn.close();
      await settled(tally, SENDS + AWAITED, ends);
      expect({ received, ends }).toEqual({
        received: sent,
        ends: [{ type: 'close', by: 'client', unacknowledged: [] }],
      });
      expect(tally).toEqual({ resolved: SENDS + AWAITED, rejected: [] });
    },
  );
});

it.each(['same tick', 'after setImmediate', 'between two store writes'] as const)(
  'with a client session store: conn.send() x15, conn.close() %s: 15 of 15 delivered in order, 15 of 15 resolved',
  async (when) => {
    // With a store, a send is written to the link once it is stored (a batched write a tick or
    // more later): the CLOSE must follow those writes, or the server ignores them. Before: 0 of 15
    // delivered, 15 of 15 rejected with ClosedByUserError.
    const { url, received, ends } = await server('memory');
    const dir = await mkdtemp(join(tmpdir(), 'lifeline-rclose-client-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const conn = attach(
      resumable(wsTransport(url), { store: new FileClientSessionStore(join(dir, 's.json')) }),
    );
    cleanups.push(() => conn.close());
    await conn.send('first');
    const sent = ['first'];
    const tally: Settled = { resolved: 0, rejected: [] };
    for (let i = 0; i < SENDS + AWAITED; i++) {
      // Half now, half while the first half's store write is under way.
      if (when === 'between two store writes' && i === SENDS)
        await new Promise((resolve) => setTimeout(resolve, 0));
      sent.push(`c${i}`);
      count(conn.send(`c${i}`), tally);
    }
    if (when === 'after setImmediate') await new Promise((resolve) => setImmediate(resolve));
    conn.close();
    await settled(tally, SENDS + AWAITED, ends);
    expect({ received, ends }).toEqual({
      received: sent,
      ends: [{ type: 'close', by: 'client', unacknowledged: [] }],
    });
    expect(tally).toEqual({ resolved: SENDS + AWAITED, rejected: [] });
  },
);

test('a server that acknowledges after the CLOSE but never closes the link: the client closes it after the linger, what was acknowledged resolves, the rest rejects', async () => {
  // Answers the HELLO, reads DATA, and at the CLOSE acknowledges the first message only; it never
  // closes the link, so the client's linger (2 s) bounds the close.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  );
  await once(wss, 'listening');
  const closes: { code: number; reason: string }[] = [];
  const frames: number[] = [];
  wss.on('connection', (socket) => {
    socket.on('message', (data: Buffer) => {
      frames.push(data[0]!);
      if (data[0] === ResumeFrameType.Hello)
        socket.send(encodeWelcome(false, new Uint8Array(16).fill(1), new Uint8Array(16).fill(2), 0));
      else if (data[0] === ResumeFrameType.Close) socket.send(encodeAck(1));
    });
    socket.on('close', (code, reason) => closes.push({ code, reason: String(reason) }));
  });
  const port = (wss.address() as { port: number }).port;
  const client = resumable(wsTransport(`ws://127.0.0.1:${port}`));
  cleanups.push(() => client.close());
  const events: string[] = [];
  client.session$.subscribe((event) => events.push(event.type));
  const link = await client.open();
  const tally: Settled = { resolved: 0, rejected: [] };
  count(link.send('one'), tally);
  count(link.send('two'), tally);
  client.close(4000, 'bye');
  expect(client.handle.state).toBe('closed');
  await settled(tally, 2, closes);
  expect({ ...tally, events, closes }).toEqual({
    resolved: 1,
    rejected: ['ClosedByUserError'],
    events: ['new', 'closed'],
    closes: [{ code: 4000, reason: 'bye' }],
  });
  // Nothing after the CLOSE (the link lingered on reading only).
  expect(frames.slice(frames.indexOf(ResumeFrameType.Close))).toEqual([ResumeFrameType.Close]);
});
