/**
 * What one resume send costs (issue 13), on both sides. The client's `HAWebSocket.send()` with
 * `resume` returns nothing, so the session takes it without a promise (the endpoint's promise and
 * its reaction were two per send); the server's `ServerSession.post()` is `send()` without a
 * promise, and `send()` makes one promise per message (not a second one to keep it from being an
 * unhandled rejection). What is kept is counted: every message arrives once, in order, and is
 * acknowledged; a refused post is a `send-failed` event; what the client never acknowledged is in
 * the `close` event's list; a fire-and-forget `send()` that fails is never an unhandled rejection.
 */
import { once } from 'node:events';
import { ClosedByUserError } from '@lifeline/core';
import {
  dataPayload,
  encodeData,
  encodeHello,
  FrameTooLargeError,
  InvalidMessageError,
  outgoingMessage,
  type ResumeFrame,
  toStoredOutgoing,
} from '@lifeline/core/internal';
import { resume } from '@lifeline/core/resume';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer, type ServerSession, type ServerSessionEvent } from '@lifeline/node/server';
import { HAWebSocket } from '@lifeline/node/ws';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { cleanups } from './support/cleanups.js';
import { promisesMadeBy } from './support/promise-count.js';
import { RawResumeClient } from './support/raw-resume-client.js';

const COUNT = 1_000;

/** A resume server whose sessions are handed to the test; closed after it. */
async function resumeServer(options: Parameters<typeof createResumeServer>[0] = {}) {
  const server = createResumeServer(options);
  const sessions: ServerSession[] = [];
  const events: ServerSessionEvent[] = [];
  const received: string[] = [];
  server.sessions$.subscribe((session) => {
    sessions.push(session);
    session.events$.subscribe((event) => events.push(event));
    session.messages$.subscribe(({ data }) => received.push(String(data)));
  });
  const { url } = await server.listen();
  cleanups.push(() => server.close({ goAway: false }));
  return { server, url, sessions, events, received };
}

/** A raw client with a session welcomed; returns the DATA frames it has seen so far, live. */
async function rawSession(url: string) {
  const client = await RawResumeClient.connect(url);
  cleanups.push(() => client.close());
  client.send(encodeHello(undefined, 0));
  await client.next('welcome');
  const data = () =>
    client.frames.filter((frame): frame is Extract<ResumeFrame, { type: 'data' }> => frame.type === 'data');
  return { client, data };
}

const expected = (count: number) => Array.from({ length: count }, (_, i) => `m${i}`);

describe('client: HAWebSocket with resume', () => {
  it('send() makes no promise per message; every message arrives once, in order, and is acknowledged', async () => {
    const { url, sessions, received } = await resumeServer();
    const socket = new HAWebSocket(url, { resume: resume() });
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    const promises = promisesMadeBy(() => {
      for (let i = 0; i < COUNT; i++) socket.send(`m${i}`);
    });
    // Two per send before (the session endpoint's promise and the reaction attach put on it).
    expect(promises).toBeLessThan(10);
    await waitFor(() => received.length >= COUNT, { timeoutMs: 20_000 });
    expect(received).toEqual(expected(COUNT));
    // Acknowledged: the client's replay window is empty again.
    await waitFor(() => socket.session!.pending === 0, { timeoutMs: 20_000 });
    expect(sessions[0]!.lastReceived).toBe(COUNT);
  });

  it('sendAsync() keeps its promise: every one resolves once the server acknowledged it, in order', async () => {
    const { url, received } = await resumeServer();
    const socket = new HAWebSocket(url, { resume: resume() });
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: COUNT }, (_, i) => socket.sendAsync(`m${i}`).then(() => order.push(i))),
    );
    expect(order).toEqual(Array.from({ length: COUNT }, (_, i) => i));
    // Resolved on acknowledgement: the server had every one of them by then.
    expect(received).toEqual(expected(COUNT));
  });
});

describe('server: ServerSession.post and send', () => {
  it('post() makes no promise; every message arrives once, in order, and the acknowledgement releases it', async () => {
    const { url, sessions } = await resumeServer();
    const { client, data } = await rawSession(url);
    await waitFor(() => sessions.length === 1);
    const session = sessions[0]!;
    const promises = promisesMadeBy(() => {
      for (let i = 0; i < COUNT; i++) session.post(`m${i}`);
    });
    expect(promises).toBeLessThan(10);
    expect(session.pending).toBe(COUNT);
    await waitFor(() => data().length >= COUNT, { timeoutMs: 20_000 });
    expect(data().map((frame) => frame.data)).toEqual(expected(COUNT));
    expect(data().map((frame) => frame.seq)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    client.send(encodeData(1, COUNT, 'ack').frame);
    await waitFor(() => session.pending === 0, { timeoutMs: 20_000 });
  });

  it('send() makes one promise per message, not two, and still settles: resolves on acknowledgement', async () => {
    const { url, sessions } = await resumeServer();
    const { client, data } = await rawSession(url);
    await waitFor(() => sessions.length === 1);
    const session = sessions[0]!;
    const sent: Promise<void>[] = [];
    const promises = promisesMadeBy(() => {
      for (let i = 0; i < COUNT; i++) sent.push(session.send(`m${i}`));
    });
    // Two per send before: the endpoint's and the derived one that kept it from being unhandled.
    expect(promises).toBeLessThanOrEqual(COUNT + 10);
    await waitFor(() => data().length >= COUNT, { timeoutMs: 20_000 });
    client.send(encodeData(1, COUNT, 'ack').frame);
    await Promise.all(sent);
    expect(session.pending).toBe(0);
  });

  it('a refused post() is a send-failed event (after the call, not inside it); bad data throws at the call', async () => {
    const { url, sessions, events } = await resumeServer({ maxFrameBytes: 1_024 });
    const { data } = await rawSession(url);
    await waitFor(() => sessions.length === 1);
    const session = sessions[0]!;
    const big = 'x'.repeat(4_096);
    session.post(big);
    expect(events.filter((event) => event.type === 'send-failed')).toHaveLength(0);
    expect(() => session.post(42 as unknown as string)).toThrow(InvalidMessageError);
    session.post('ok');
    await waitFor(() => events.some((event) => event.type === 'send-failed'));
    const failed = events.filter((event) => event.type === 'send-failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ data: big });
    expect((failed[0] as { error: unknown }).error).toBeInstanceOf(FrameTooLargeError);
    // The refused one took no sequence number: the next one is 1.
    await waitFor(() => data().length === 1);
    expect(data()[0]).toMatchObject({ seq: 1, data: 'ok' });
  });

  it('what post() and send() sent and the client never acknowledged is listed at the close; no unhandled rejection', async () => {
    const { url, sessions, events } = await resumeServer();
    const { data } = await rawSession(url);
    await waitFor(() => sessions.length === 1);
    const session = sessions[0]!;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(() => process.off('unhandledRejection', onUnhandled));
    session.post('p1');
    void session.send('s2'); // ignored, as fire-and-forget sends are
    const awaited = session.send('s3').catch((error: unknown) => error);
    session.post('p4', { cursor: 'c4' });
    await waitFor(() => data().length === 4);
    session.close();
    const close = events.find((event) => event.type === 'close') as Extract<
      ServerSessionEvent,
      { type: 'close' }
    >;
    expect(close.unacknowledged.map(({ seq, data }) => [seq, data])).toEqual([
      [1, 'p1'],
      [2, 's2'],
      [3, 's3'],
      [4, 'p4'],
    ]);
    expect(close.unacknowledged.every((message) => message.maybeDelivered)).toBe(true);
    expect(await awaited).toBeInstanceOf(ClosedByUserError);
    // After the close nothing is taken and nothing more is reported.
    session.post('late');
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(events.filter((event) => event.type === 'send-failed')).toHaveLength(0);
    expect(unhandled).toEqual([]);
  });
});

describe('client: the DATA frames handed to ws', () => {
  it('are Buffers cut from a shared slab: ws takes each as it is (it turned every Uint8Array into a second view)', async () => {
    const { url, received } = await resumeServer();
    const frames: Uint8Array[] = [];
    const original = WebSocket.prototype.send;
    WebSocket.prototype.send = function (this: WebSocket, data: unknown, ...rest: unknown[]) {
      // DATA, flagged "the ack may wait" (0x12, 0x13: HAWebSocket.send's) or not.
      if (data instanceof Uint8Array && data[0]! >= 0x10 && data[0]! <= 0x13) frames.push(data);
      return (original as (...args: unknown[]) => void).call(this, data, ...rest);
    } as typeof original;
    cleanups.push(() => {
      WebSocket.prototype.send = original;
    });
    const socket = new HAWebSocket(url, { resume: resume() });
    cleanups.push(() => socket.close());
    await once(socket as unknown as EventTarget, 'open');
    for (let i = 0; i < 200; i++) socket.send(i % 2 ? `m${i}` : new Uint8Array(64).fill(i));
    await waitFor(() => received.length >= 200, { timeoutMs: 20_000 });
    expect(frames).toHaveLength(200);
    expect(frames.filter((frame) => !Buffer.isBuffer(frame))).toHaveLength(0);
    // Views of one 8 KiB slab (or two: 200 frames of about 70 bytes pass one), not a buffer each.
    expect(new Set(frames.map((frame) => frame.buffer)).size).toBeLessThanOrEqual(3);
  });

  it("a Buffer frame's payload is copied where it is kept (a Buffer's own slice is a view of the slab)", () => {
    const encoded = encodeData(1, 0, new Uint8Array([1, 2, 3]), true);
    expect(Buffer.isBuffer(encoded.frame)).toBe(true);
    const payload = dataPayload(encoded) as Uint8Array;
    expect(payload).toEqual(new Uint8Array([1, 2, 3]));
    expect(payload.buffer).not.toBe(encoded.frame.buffer);
    const stored = toStoredOutgoing(
      outgoingMessage(1, 3, encoded.frame, encoded.payloadOffset, 0, undefined, undefined),
    );
    expect(stored.payload).toEqual(new Uint8Array([1, 2, 3]));
    expect(stored.payload.buffer).not.toBe(encoded.frame.buffer);
    expect(stored.payload.byteLength).toBe(stored.payload.buffer.byteLength);
  });
});
