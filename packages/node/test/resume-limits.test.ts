// Limits a peer runs into: waiting sends (both sides), the output high-water mark of a server link,
// and the HTTP upgrade bounded by the handshake timeout. Real servers on port 0, counted outcomes.
import { once } from 'node:events';
import { connect } from 'node:net';
import { BackpressureError, ClosedByUserError, type LinkData, ReplayWindowFullError } from '@lifeline/core';
import { CLIENT_MAX_WAITING_MESSAGES, encodeHello, encodeWelcome, resumable } from '@lifeline/core/internal';
import { createResumeServer, type NodeResumeServer, type ServerSession } from '@lifeline/node/server';
import { wsTransport } from '@lifeline/node/ws';
import { expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';
import { RawResumeClient } from './support/raw-resume-client.js';
import { waitFor, within } from './support/tcp-servers.js';

const MiB = 1024 * 1024;
async function listen(options: Parameters<typeof createResumeServer>[0] = {}) {
  const server: NodeResumeServer = createResumeServer(options);
  cleanups.push(() => server.close());
  const { url } = await server.listen({ port: 0 });
  return { server, url };
}

/** Sends `count` messages without awaiting; counts how each settles. */
function blast(send: (data: LinkData) => Promise<void>, count: number) {
  const tally = { resolved: 0, windowFull: 0, closed: 0, other: [] as unknown[] };
  const settled = Array.from({ length: count }, (_, i) =>
    send('x'.repeat(100) + i).then(
      () => {
        tally.resolved++;
      },
      (error) => {
        if (error instanceof ReplayWindowFullError) tally.windowFull++;
        else if (error instanceof ClosedByUserError) tally.closed++;
        else tally.other.push(error);
      },
    ),
  );
  return { tally, settled: Promise.all(settled) };
}

test('a client sending without awaiting to a server that does not read: sends beyond the window and the waiting limit reject with ReplayWindowFullError', async () => {
  // The server application never reads: nothing is acknowledged, the window stays full.
  const { url } = await listen();
  const client = resumable(wsTransport(url));
  const link = await client.open();
  link.messages$.subscribe({ error: () => {} });
  const { tally, settled } = blast((data) => link.send(data), 40_000);
  // 1,024 in the window, 32,768 waiting for room (the client's defaults, the bounds of attach's
  // outgoing queue); every other send refused at once.
  const held = 1_024 + CLIENT_MAX_WAITING_MESSAGES;
  await new Promise<void>((resolve) => setImmediate(resolve));
  expect(tally.windowFull).toBe(40_000 - held);
  expect(client.session!.pending).toBe(held);
  client.close();
  await settled;
  expect(tally).toEqual({ resolved: 0, windowFull: 40_000 - held, closed: held, other: [] });
});

test('a server application sending without awaiting to a client that never acknowledges: the same limits, the same typed rejection', async () => {
  const { server, url } = await listen();
  const sessions: ServerSession[] = [];
  server.sessions$.subscribe((session) => sessions.push(session));
  const raw = await RawResumeClient.connect(url);
  cleanups.push(() => raw.close());
  raw.send(encodeHello(undefined, 0));
  await raw.next('welcome');
  const session = sessions[0]!;
  const { tally, settled } = blast((data) => session.send(data), 5_000);
  await new Promise<void>((resolve) => setImmediate(resolve));
  expect(tally.windowFull).toBe(5_000 - 2_048);
  expect(session.pending).toBe(2_048);
  session.close();
  await settled;
  expect(tally.resolved + tally.windowFull + tally.closed + tally.other.length).toBe(5_000);
  expect(tally.windowFull).toBe(2_952);
});

test('a server link whose client stopped reading is closed above the output high-water mark, with a BackpressureError in events$ and stats', async () => {
  const { server, url } = await listen({
    outputHighWaterBytes: 2 * MiB,
    maxReplayBytes: 64 * MiB,
    maxFrameBytes: 2 * MiB,
  });
  const sessions: ServerSession[] = [];
  server.sessions$.subscribe((session) => sessions.push(session));
  const overflow = waitFor(server.events$, (event) => event.type === 'link-error', 20_000);
  const raw = await RawResumeClient.connect(url);
  cleanups.push(() => raw.close());
  raw.send(encodeHello(undefined, 0));
  await raw.next('welcome');
  raw.socket.pause();
  const session = sessions[0]!;
  const detached = waitFor(session.events$, (event) => event.type === 'detach', 20_000);
  // 32 MiB: more than the kernel's socket buffers take, so the server's own buffer passes 2 MiB.
  for (let i = 0; i < 32; i++) session.send(new Uint8Array(MiB)).catch(() => {});
  const event = await overflow;
  expect(event.type === 'link-error' && event.error).toBeInstanceOf(BackpressureError);
  await detached;
  expect(server.stats.backpressureCloses).toBe(1);
  // The session outlives the link: its client may resume and receive the rest.
  expect(session.closed).toBe(false);
}, 30_000);

test('an HTTP upgrade trickled header by header is cut at the handshake timeout, not after Node’s 60 s header timeout', async () => {
  const { server, url } = await listen({ handshakeTimeoutMs: 1_500 });
  const port = Number(new URL(url).port);
  const socket = connect({ port, host: '127.0.0.1' });
  cleanups.push(() => socket.destroy());
  socket.on('error', () => {});
  await once(socket, 'connect');
  const started = performance.now();
  const closed = once(socket, 'close');
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  // The attacker: one header line every 250 ms, for at most 10 s.
  const trickle = setInterval(() => {
    if (!socket.destroyed) socket.write('X-Slow: 1\r\n');
  }, 250);
  cleanups.push(() => clearInterval(trickle));
  await within(closed, 10_000, () => 'the trickled upgrade is still open');
  const elapsed = performance.now() - started;
  expect(elapsed).toBeGreaterThanOrEqual(1_400);
  expect(elapsed).toBeLessThan(5_000);
  expect(server.stats.handshakeTimeouts).toBe(1);
}, 20_000);

test('a client whose server stopped reading drops the link above its output high-water mark with a recoverable BackpressureError', async () => {
  // A server that answers the HELLO and then reads nothing more.
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of wss.clients) socket.terminate();
        wss.close(() => resolve());
      }),
  );
  await once(wss, 'listening');
  wss.on('connection', (socket) => {
    socket.once('message', () => {
      socket.send(encodeWelcome(false, new Uint8Array(16).fill(1), new Uint8Array(16).fill(2), 0));
      socket.pause();
    });
  });
  const port = (wss.address() as { port: number }).port;
  const client = resumable(wsTransport(`ws://127.0.0.1:${port}`), {
    outputHighWaterBytes: 2 * MiB,
    maxReplayBytes: 64 * MiB,
    maxFrameBytes: 2 * MiB,
  });
  cleanups.push(() => client.close());
  const link = await client.open();
  const failed = new Promise<unknown>((resolve) => link.messages$.subscribe({ error: resolve }));
  for (let i = 0; i < 32; i++) link.send(new Uint8Array(MiB)).catch(() => {});
  const error = await within(failed, 20_000, () => 'the link is still up');
  expect(error).toBeInstanceOf(BackpressureError);
  expect((error as BackpressureError).recoverable).toBe(true);
  // The session is kept for a resume: its sends are still pending, not lost.
  expect(client.session?.pending).toBe(32);
}, 30_000);
