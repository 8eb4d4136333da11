// A detached session with nothing under way keeps only a compact copy of its endpoint (its
// watermarks and unacknowledged messages, with their promises) and builds the endpoint again when
// something needs it: a resume, a send, an application ack, the end. These tests hold the parked
// session to the same counts as an attached one: nothing lost, nothing twice, every promise settled.
import { attach, type LinkData, SessionLostError } from '@lifeline/core';
import { resumable } from '@lifeline/core/internal';
import {
  ResumeServer,
  type ResumeServerOptions,
  type ServerSession,
  type SessionMessage,
} from '@lifeline/core/resume/server';
import { createMemoryTransport, serveOverMemory, waitFor } from '@lifeline/core/testing';
import { filter, firstValueFrom } from 'rxjs';
import { expect, onTestFinished, test } from 'vitest';

/** Whether the session holds its endpoint parked (internal; what `pnpm bench server` measures). */
function parked(session: ServerSession): boolean {
  return (session as unknown as { isParked: boolean }).isParked === true;
}

function serve(options: ResumeServerOptions) {
  const transport = createMemoryTransport<LinkData>();
  const server = new ResumeServer(options);
  const stop = serveOverMemory(server, transport);
  const sessions: ServerSession[] = [];
  const received: SessionMessage[] = [];
  /** Whether each detach left the session parked, as seen by its `detach` event. */
  const parkedAtDetach: boolean[] = [];
  server.sessions$.subscribe((session) => {
    sessions.push(session);
    session.messages$.subscribe((message) => received.push(message));
    session.events$.subscribe((event) => {
      if (event.type === 'detach') parkedAtDetach.push(parked(session));
    });
  });
  onTestFinished(async () => {
    stop();
    await server.close();
  });
  return { transport, server, sessions, received, parkedAtDetach };
}

test('a detached idle session is parked; on resume its sends resolve, its counters and watermarks carry on, nothing twice', async () => {
  const { transport, sessions, received, parkedAtDetach } = serve({ ackDelayMs: 0 });
  const client = resumable(transport, { ackDelayMs: 0 });
  const conn = attach(client, { backoff: { initialDelayMs: 0 }, minUptimeMs: 0 });
  onTestFinished(() => conn.close());
  const got: LinkData[] = [];
  conn.messages$.subscribe((message) => got.push(message));
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  await Promise.all([conn.send('c1'), conn.send('c2')]);
  const session = sessions[0]!;
  await session.sendAsync('s1');
  // Written into a half-open link: unacknowledged when the link fails.
  transport.current!.halfOpen();
  const upTo = session.stats.framesWritten;
  const unacked = [session.sendAsync('s2'), session.sendAsync('s3')];
  // Stored and written (into the void): nothing under way when the link fails.
  await waitFor(() => session.stats.framesWritten === upTo + 2, { timeoutMs: 10_000 });
  transport.current!.fail();
  await waitFor(() => parkedAtDetach.length === 1, { timeoutMs: 10_000 });
  expect(parkedAtDetach).toEqual([true]);
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  await Promise.all(unacked);
  await conn.send('c3');
  await session.sendAsync('s4');
  expect(got).toEqual(['s1', 's2', 's3', 's4']);
  expect(received.map(({ seq, data }) => [seq, data])).toEqual([
    [1, 'c1'],
    [2, 'c2'],
    [3, 'c3'],
  ]);
  expect(received.every((message) => !message.redelivered)).toBe(true);
  // The counters survived the parking: s2 and s3 were written again, s4 once.
  expect(session.stats.replayed).toBe(2);
  expect(session.stats.framesWritten).toBe(upTo + 5);
  expect(session.pending).toBe(0);
  expect(session.lastReceived).toBe(3);
  expect(sessions).toHaveLength(1);
});

test('a send to a parked session is held and replayed on resume, once', async () => {
  const { transport, sessions, parkedAtDetach } = serve({ ackDelayMs: 0 });
  const client = resumable(transport, { ackDelayMs: 0 });
  const conn = attach(client, { backoff: { initialDelayMs: 5, maxDelayMs: 20 }, minUptimeMs: 0 });
  onTestFinished(() => conn.close());
  const got: LinkData[] = [];
  conn.messages$.subscribe((message) => got.push(message));
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  const session = sessions[0]!;
  await session.sendAsync('before');
  // The client cannot reconnect until the send below has found the session parked.
  transport.refuseOpens();
  transport.current!.fail();
  await waitFor(() => parkedAtDetach.length === 1, { timeoutMs: 10_000 });
  expect(parked(session)).toBe(true);
  const during = session.sendAsync('while detached');
  expect(session.pending).toBe(1);
  transport.acceptOpens();
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  await during;
  expect(got).toEqual(['before', 'while detached']);
  expect(session.pending).toBe(0);
});

test("ack: 'manual': a message delivered and not acknowledged survives the parking, is acknowledged later, and is not delivered again", async () => {
  const { transport, sessions, received, parkedAtDetach } = serve({ ackDelayMs: 0, ack: 'manual' });
  const client = resumable(transport, { ackDelayMs: 0 });
  const conn = attach(client, { backoff: { initialDelayMs: 0 }, minUptimeMs: 0 });
  onTestFinished(() => conn.close());
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  const sent = conn.send('m1');
  await waitFor(() => received.length === 1, { timeoutMs: 10_000 });
  const session = sessions[0]!;
  transport.current!.fail();
  await waitFor(() => parkedAtDetach.length === 1, { timeoutMs: 10_000 });
  expect(parkedAtDetach).toEqual([true]);
  expect(session.lastReceived).toBe(1);
  expect(session.lastAcknowledged).toBe(0);
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  // Not delivered again on the resumed link: it was delivered, only its acknowledgement waits.
  received[0]!.ack();
  await sent;
  const second = conn.send('m2');
  await waitFor(() => received.length === 2, { timeoutMs: 10_000 });
  received[1]!.ack();
  await second;
  expect(received.map(({ seq, data }) => [seq, data])).toEqual([
    [1, 'm1'],
    [2, 'm2'],
  ]);
  expect(session.lastAcknowledged).toBe(2);
});

test('a parked session still expires at its TTL: its unacknowledged sends reject with SessionLostError, listed once', async () => {
  const { transport, server, sessions, parkedAtDetach } = serve({ ackDelayMs: 0, sessionTtlMs: 200 });
  const client = resumable(transport, { ackDelayMs: 0 });
  const link = await client.open();
  // The link's failure below is the point: it is not reported as an unhandled error.
  link.messages$.subscribe({ error: () => {} });
  await waitFor(() => sessions.length === 1, { timeoutMs: 10_000 });
  const session = sessions[0]!;
  const events: string[] = [];
  let unacknowledged: readonly unknown[] = [];
  session.events$.subscribe((event) => {
    events.push(event.type);
    if (event.type === 'expire') unacknowledged = event.unacknowledged;
  });
  transport.current!.halfOpen();
  const lost = session.sendAsync('never acknowledged').catch((error: unknown) => error);
  await waitFor(() => session.stats.framesWritten === 1, { timeoutMs: 10_000 });
  transport.current!.fail();
  await waitFor(() => parkedAtDetach.length === 1, { timeoutMs: 10_000 });
  expect(parkedAtDetach).toEqual([true]);
  const error = await lost;
  expect(error).toBeInstanceOf(SessionLostError);
  expect((error as SessionLostError).unacknowledged).toEqual([
    { seq: 1, data: 'never acknowledged', maybeDelivered: true },
  ]);
  expect(unacknowledged).toEqual([{ seq: 1, data: 'never acknowledged', maybeDelivered: true }]);
  expect(events).toEqual(['detach', 'expire']);
  expect(server.sessions.size).toBe(0);
  expect(session.closed).toBe(true);
});

test('a session detached while a store write is under way is parked by the sweep once the write settled', async () => {
  // A TTL of 2 s makes the sweep run every 0.5 s.
  const { transport, sessions, received, parkedAtDetach } = serve({ ackDelayMs: 0, sessionTtlMs: 2_000 });
  const client = resumable(transport, { ackDelayMs: 0 });
  const conn = attach(client, { backoff: { initialDelayMs: 5, maxDelayMs: 20 }, minUptimeMs: 0 });
  onTestFinished(() => conn.close());
  const got: LinkData[] = [];
  conn.messages$.subscribe((message) => got.push(message));
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  const session = sessions[0]!;
  transport.refuseOpens();
  // The append of this message is still under way when the link fails.
  const sent = session.sendAsync('appended during the detach');
  transport.current!.fail();
  await waitFor(() => parkedAtDetach.length === 1, { timeoutMs: 10_000 });
  expect(parkedAtDetach).toEqual([false]);
  await waitFor(() => parked(session), { timeoutMs: 10_000, what: 'the sweep to park the session' });
  expect(session.pending).toBe(1);
  transport.acceptOpens();
  await sent;
  await conn.send('after');
  expect(got).toEqual(['appended during the detach']);
  expect(received.map(({ seq, data }) => [seq, data])).toEqual([[1, 'after']]);
});

test('messages$ without a teardown per subscriber: one that unsubscribed gets nothing, and messages wait while nobody reads', async () => {
  const transport = createMemoryTransport<LinkData>();
  const server = new ResumeServer({ ackDelayMs: 0 });
  const stop = serveOverMemory(server, transport);
  onTestFinished(async () => {
    stop();
    await server.close();
  });
  const first: unknown[] = [];
  const second: unknown[] = [];
  const third: unknown[] = [];
  let session: ServerSession | undefined;
  server.sessions$.subscribe((s) => {
    session = s;
  });
  const client = resumable(transport, { ackDelayMs: 0 });
  const conn = attach(client, { backoff: { initialDelayMs: 0 }, minUptimeMs: 0 });
  onTestFinished(() => conn.close());
  await firstValueFrom(conn.state$.pipe(filter((state) => state.status === 'open')));
  const a = session!.messages$.subscribe(({ data }) => first.push(data));
  const b = session!.messages$.subscribe(({ data }) => second.push(data));
  await conn.send('to both');
  a.unsubscribe();
  await conn.send('to the second');
  b.unsubscribe();
  // Nobody reads: the message waits, unacknowledged, for the next subscriber.
  const waiting = conn.send('to the third');
  expect(session!.lastReceived).toBe(2);
  session!.messages$.subscribe(({ data }) => third.push(data));
  await waiting;
  expect(first).toEqual(['to both']);
  expect(second).toEqual(['to both', 'to the second']);
  expect(third).toEqual(['to the third']);
});
