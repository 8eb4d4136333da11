/**
 * The receive path of a plain HAWebSocket (issue 13: CPU per received message, idle memory per
 * connection): the link hands each message, pong and its end to the connection directly (the
 * link's read seam), not through rxjs. Before, the engine subscribed to the link's `messages$`
 * through a heartbeat operator that subscribed to `pongs$` too: about three subscriptions per
 * connection (an observer, a subscriber and a teardown each) and two rxjs hops per message. The
 * counts here are of `Observable.prototype.subscribe` calls while a socket opens, receives,
 * heartbeats and closes: none. And the heartbeat, now fed by the link's reader, still hears pongs
 * (an idle link that answers pings stays up) and still finds a silent one.
 */
import { once } from 'node:events';
import { attach } from '@lifeline/core';
import { waitFor } from '@lifeline/core/testing';
import { webSocketTransport } from '@lifeline/core/websocket';
import { HAWebSocket, wsCapabilities, wsTransport } from '@lifeline/node/ws';
import { Observable } from 'rxjs';
import { expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';
import { EchoServer } from './support/ws-servers.js';

const WAIT = { timeoutMs: 15_000 };

async function echo(options?: ConstructorParameters<typeof WebSocketServer>[0]): Promise<EchoServer> {
  const server = await EchoServer.start(options);
  cleanups.push(() => server.close());
  return server;
}

it('a plain HAWebSocket opens, receives, heartbeats and closes without one rxjs subscription', async () => {
  const server = await echo();
  const subscribe = vi.spyOn(Observable.prototype, 'subscribe');
  cleanups.push(() => subscribe.mockRestore());
  let pings = 0;
  server.wss.on('connection', (peer) => peer.on('ping', () => pings++));
  // A short heartbeat, so that pings and pongs go both ways while the socket is measured.
  const socket = new HAWebSocket(server.url, { heartbeat: { intervalMs: 20, timeoutMs: 5_000 } });
  cleanups.push(() => socket.close());
  const received: string[] = [];
  socket.onmessage = (event) => received.push(event.data as string);
  await once(socket as unknown as EventTarget, 'open');
  for (let i = 0; i < 100; i++) socket.send(`m${i}`);
  await waitFor(() => received.length === 100 && pings >= 3, WAIT);
  expect(received).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
  const closed = once(socket as unknown as EventTarget, 'close');
  socket.close();
  await closed;
  expect(subscribe.mock.calls.length).toBe(0);
}, 30_000);

it('the heartbeat hears pongs through the read seam: an idle link that answers pings stays up', async () => {
  const server = await echo();
  let pings = 0;
  server.wss.on('connection', (peer) => peer.on('ping', () => pings++));
  // 15 pings of 20 ms of silence each outlast the 150 ms timeout many times over: only the pongs
  // (no message comes) keep the link up.
  const socket = new HAWebSocket(server.url, { heartbeat: { intervalMs: 20, timeoutMs: 150 } });
  cleanups.push(() => socket.close());
  const events: string[] = [];
  socket.addEventListener('recovering', () => events.push('recovering'));
  socket.addEventListener('close', () => events.push('close'));
  await once(socket as unknown as EventTarget, 'open');
  await waitFor(() => pings >= 15, WAIT);
  expect(events).toEqual([]);
  expect(server.accepted).toBe(1);
}, 30_000);

it('the heartbeat finds a link whose peer stopped answering, and recovers on a new one', async () => {
  // No automatic pongs: the server hears the pings and stays silent, as a black-holed peer.
  const server = await echo({ autoPong: false });
  const socket = new HAWebSocket(server.url, { heartbeat: { intervalMs: 20, timeoutMs: 150 } });
  cleanups.push(() => socket.close());
  const errors: unknown[] = [];
  socket.addEventListener('recovering', (event) => errors.push(event.detail.error));
  await once(socket as unknown as EventTarget, 'open');
  await waitFor(() => errors.length === 1 && server.accepted >= 2, WAIT);
  expect((errors[0] as { code?: string }).code).toBe('ERR_HEARTBEAT_TIMEOUT');
  expect(socket.readyState).toBe(socket.OPEN);
}, 30_000);

it('a link that fails between its open and the engine reading it is recovered from, not held as open', async () => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  );
  let accepted = 0;
  wss.on('connection', (peer) => {
    accepted++;
    // The first link breaks; the second is closed by the server at once, while the recover
    // function below still holds it; the third carries a message.
    if (accepted === 1) peer.terminate();
    else if (accepted === 2) peer.terminate();
    else peer.send(`hello${accepted}`);
  });
  const connection = attach(wsTransport(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`), {
    backoff: { initialDelayMs: 1, maxDelayMs: 5 },
    recover: async (context) => {
      const link = await context.reopen();
      // The application's own step before it hands the link over (a re-authentication, say)
      // takes long enough for the second link to end meanwhile, before the engine reads it.
      if (link && accepted === 2) {
        await new Promise<void>((resolve) =>
          link.messages$.subscribe({ error: () => resolve(), complete: () => resolve() }),
        );
      }
      return link;
    },
  });
  cleanups.push(() => connection.close());
  const received: unknown[] = [];
  connection.messages$.subscribe((message) => received.push(message));
  // Before, the dead second link stayed 'open' (no heartbeat by default): no third connection.
  await waitFor(() => accepted >= 3 && received.length === 1, WAIT);
  expect(received).toEqual(['hello3']);
  expect(connection.state$.value.status).toBe('open');
}, 30_000);

it("the ws socket under an HAWebSocket has no listener: its link hears open, messages, pongs and the close from the socket's emit", async () => {
  // Five listeners (open, message, error, close, pong) grew the socket's event table, a
  // prototype-less dictionary, about 0.1 KB past the empty one every `ws` socket keeps.
  const server = await echo();
  const socket = new HAWebSocket(server.url, { heartbeat: { intervalMs: 20, timeoutMs: 150 } });
  cleanups.push(() => socket.close());
  const received: string[] = [];
  socket.onmessage = (event) => received.push(event.data as string);
  await once(socket as unknown as EventTarget, 'open');
  const ws = (socket.connection.link as unknown as { socket_: import('ws').WebSocket }).socket_;
  expect(ws.eventNames()).toEqual([]);
  let pings = 0;
  for (const peer of server.wss.clients) peer.on('ping', () => pings++);
  for (let i = 0; i < 10; i++) socket.send(`m${i}`);
  // Pongs alone keep the link up past the 150 ms timeout (no message after the echoes).
  await waitFor(() => received.length === 10 && pings >= 12, WAIT);
  expect(received).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  expect(server.accepted).toBe(1);
  const closed = once(socket as unknown as EventTarget, 'close');
  socket.close(4001, 'bye');
  const [event] = (await closed) as [CloseEvent];
  expect([event.code, event.reason]).toEqual([4001, 'bye']);
}, 30_000);

it("wsCapabilities on a plain ws socket (not the links' own class) still hear its events through listeners", async () => {
  const server = await echo();
  const connection = attach(
    webSocketTransport({
      ...wsCapabilities,
      binaryType: 'nodebuffer',
      url: server.url,
      WebSocket: WebSocket,
    }),
    { heartbeat: { intervalMs: 20, timeoutMs: 150 } },
  );
  cleanups.push(() => connection.close());
  const received: unknown[] = [];
  connection.messages$.subscribe((message) => received.push(message));
  await waitFor(() => connection.state$.value.status === 'open', WAIT);
  const ws = (connection.link as unknown as { socket_: WebSocket }).socket_;
  expect(ws.eventNames().sort()).toEqual(['close', 'error', 'message', 'open', 'pong']);
  let pings = 0;
  for (const peer of server.wss.clients) peer.on('ping', () => pings++);
  for (let i = 0; i < 10; i++) await connection.send(`m${i}`);
  await waitFor(() => received.length === 10 && pings >= 12, WAIT);
  expect(received).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  expect(server.accepted).toBe(1);
  connection.close();
  await connection.closed;
  // The link stopped listening (what is left: the late-error guard, the close linger's listener).
  expect(['open', 'message', 'pong'].map((type) => ws.listenerCount(type))).toEqual([0, 0, 0]);
}, 30_000);
