/**
 * A `wrapTransport` may hand the connection a link that inherits from the real one
 * (`Object.create(link)` with its own `send`, to count or log writes). The connection then calls
 * the link's methods on the wrapper, while the socket's events reach the link itself: a method that
 * keeps its state on `this` kept it on the wrapper. With the link's read seam, every message went
 * to a reader the socket never saw (0 of 100 echoes, silently), and a close through the wrapper
 * left the link believing the peer closed it. Counted here: every message sent is echoed once, a recovery reads the new link, and close() ends as a user close.
 */

import type { Link, LinkData, Transport } from '@lifeline/core';
import { resumable } from '@lifeline/core/resume';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket } from '@lifeline/node/ws';
import { expect, it } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

const WAIT = { timeoutMs: 15_000 };

it('a link wrapped by Object.create(link) is read, written and closed as the link itself', async () => {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  const wrap = (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const send = (data: LinkData) => link.send(data);
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
  const socket = new HAWebSocket(server.url, { wrapTransport: wrap });
  cleanups.push(() => socket.close());
  const echoed = new Map<string, number>();
  socket.onmessage = (event) => echoed.set(String(event.data), (echoed.get(String(event.data)) ?? 0) + 1);
  await waitFor(() => socket.readyState === socket.OPEN, { ...WAIT, what: 'the open' });

  const sendAll = (from: number, to: number) => {
    for (let i = from; i < to; i++) socket.send(`m${i}`);
  };
  sendAll(0, 100);
  await waitFor(() => echoed.size >= 100, { ...WAIT, what: '100 echoes', state: () => echoed.size });

  // A recovery opens (and wraps) a new link: it is read too.
  server.terminateAll();
  await waitFor(() => socket.connection.state$.value.status === 'recovering', {
    ...WAIT,
    what: 'recovering',
  });
  await waitFor(() => socket.connection.state$.value.status === 'open', { ...WAIT, what: 'recovered' });
  sendAll(100, 200);
  await waitFor(() => echoed.size >= 200, { ...WAIT, what: '200 echoes', state: () => echoed.size });
  const duplicated = [...echoed.values()].filter((count) => count > 1).length;
  expect({ echoed: echoed.size, duplicated }).toEqual({ echoed: 200, duplicated: 0 });

  const closes: { code: number; wasClean: boolean }[] = [];
  socket.onclose = (event) => closes.push({ code: event.code, wasClean: event.wasClean });
  socket.close(1000);
  await waitFor(() => closes.length === 1, { ...WAIT, what: 'the close event' });
  expect(closes).toEqual([{ code: 1000, wasClean: true }]);
  expect(socket.connection.state$.value).toMatchObject({ status: 'closed', reason: 'user' });
});

/**
 * A wrapper's own `send` sees every message. Node's link also has `sendWith` (and `write`), which
 * the engine (and the resume protocol) prefer; a wrapper inherited them and its `send` was never
 * called: 0 of 100 sends counted. The link now offers them to itself only, so through a wrapper
 * every message goes through the wrapper's `send`.
 */
function countingWrap(counted: LinkData[]) {
  return (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const send = (data: LinkData) => {
        counted.push(data);
        return link.send(data);
      };
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
}

it("a wrapper's own send sees every message, though the link has sendWith (Node's ws)", async () => {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  const counted: LinkData[] = [];
  const socket = new HAWebSocket(server.url, { wrapTransport: countingWrap(counted) });
  cleanups.push(() => socket.close());
  const echoed: string[] = [];
  socket.onmessage = (event) => echoed.push(String(event.data));
  for (let i = 0; i < 100; i++) socket.send(i % 2 ? `m${i}` : new TextEncoder().encode(`m${i}`));
  await waitFor(() => echoed.length >= 100, { ...WAIT, what: '100 echoes', state: () => echoed.length });
  expect(counted.length).toBe(100);
  expect(
    counted.map((data) => (typeof data === 'string' ? data : new TextDecoder().decode(data as Uint8Array))),
  ).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
  expect(echoed.length).toBe(100);
});

it("resume over a wrapped link: the wrapper's send sees every frame (data and acks)", async () => {
  const server = createResumeServer();
  server.sessions$.subscribe((session) => session.messages$.subscribe(({ data }) => session.send(data)));
  const { port } = await server.listen({ port: 0 });
  cleanups.push(() => server.close());
  const counted: LinkData[] = [];
  const wrap = countingWrap(counted);
  const socket = new HAWebSocket(`ws://127.0.0.1:${port}`, {
    wrapTransport: (transport) => resumable(wrap(transport)),
  });
  cleanups.push(() => socket.close());
  const echoed: string[] = [];
  socket.onmessage = (event) => echoed.push(String(event.data));
  for (let i = 0; i < 100; i++) socket.send(`m${i}`);
  await waitFor(() => echoed.length >= 100, { ...WAIT, what: '100 echoes', state: () => echoed.length });
  // Each message is one frame through the wrapper; the handshake and the acks of the echoes are more.
  expect(counted.length).toBeGreaterThan(100);
  const frames = counted.map((frame) => new TextDecoder().decode(frame as Uint8Array));
  for (let i = 0; i < 100; i++) expect(frames.some((frame) => frame.endsWith(`m${i}`))).toBe(true);
});

it("a wrapper's send that throws refuses that message: `dropped` (or sendAsync's rejection) with the error, the rest echoed once, in order", async () => {
  const server = await EchoServer.start();
  cleanups.push(() => server.close());
  const refusal = new TypeError('the wrapper refuses m50');
  const wrap = (transport: Transport<LinkData, LinkData>): Transport<LinkData, LinkData> => ({
    async open(signal) {
      const link = await transport.open(signal);
      const send = (data: LinkData) => {
        if (data === 'm50' || data === 'a50') throw refusal;
        return link.send(data);
      };
      return Object.assign(Object.create(link) as Link<LinkData, LinkData>, { send });
    },
  });
  const socket = new HAWebSocket(server.url, { wrapTransport: wrap });
  cleanups.push(() => socket.close());
  const echoes: string[] = [];
  const dropped: { data: unknown; error: unknown }[] = [];
  socket.onmessage = (event) => echoes.push(String(event.data));
  socket.addEventListener('dropped', (event) => dropped.push((event as CustomEvent).detail));
  // Sent before the open (written by the flush of the link) and after it (written at once).
  for (let i = 0; i < 100; i++) socket.send(`m${i}`);
  await waitFor(() => socket.readyState === socket.OPEN, { ...WAIT, what: 'the open' });
  const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => socket.sendAsync(`a${i}`)));
  for (let i = 100; i < 200; i++) socket.send(`m${i}`);
  await waitFor(() => echoes.length >= 298, { ...WAIT, what: '298 echoes', state: () => echoes.length });

  const expected = [
    ...Array.from({ length: 100 }, (_, i) => `m${i}`),
    ...Array.from({ length: 100 }, (_, i) => `a${i}`),
    ...Array.from({ length: 100 }, (_, i) => `m${i + 100}`),
  ].filter((data) => data !== 'm50' && data !== 'a50');
  expect(echoes).toEqual(expected);
  expect(dropped).toEqual([{ data: 'm50', error: refusal }]);
  const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [[`a${i}`, r.reason]] : []));
  expect(rejected).toEqual([['a50', refusal]]);
  expect(socket.bufferedAmount).toBe(0);
  expect(socket.readyState).toBe(socket.OPEN);
});
