/**
 * `HAWebSocket.bufferedAmount`, counted in bytes against a real `ws` server that stops reading
 * (its TCP socket paused), so sends pile up in `ws` and in the kernel. The value must be what
 * WHATWG defines, with "transmitted" read as "confirmed" for an HA socket: the bytes of
 * application data (UTF-8 text, binary data) passed to `send()` whose delivery is not yet
 * confirmed (written to the OS on a plain link, acknowledged by the server with `resume`). Each
 * send counts once: while it waits in the queue, while `ws` or the kernel holds it, and again
 * after a link reset requeues (or replays) it. The test counts what it sent and what was confirmed
 * (each `sendAsync` settling) and compares at every macrotask boundary, where every confirmation's
 * reaction has run. It was the queue's bytes plus `ws`'s own `bufferedAmount` (the same frames,
 * headers included): 302 sends of 64 KiB read 33.3 MB.
 */
import { once } from 'node:events';
import { defineHAWebSocket, type WebSocketConstructor } from '@lifeline/core/internal';
import { waitFor } from '@lifeline/core/testing';
import { createResumeServer } from '@lifeline/node/server';
import { HAWebSocket, type HAWebSocketOptions } from '@lifeline/node/ws';
import { expect, it } from 'vitest';
import WsWebSocket, { type WebSocket, WebSocketServer } from 'ws';
import { cleanups } from './support/cleanups.js';

type Socket = InstanceType<typeof HAWebSocket>;

const KIB64 = 65_536;
/** Fast recovery for the link-reset cases (defaults otherwise). */
const fast = { backoff: { initialDelayMs: 10, maxDelayMs: 50 } } as const;

const macrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A `ws` server on 127.0.0.1:0 whose connections stop reading on `pause()` (and new ones at once while paused). */
async function pausableServer(resume: boolean) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const sockets: WebSocket[] = [];
  let paused = false;
  const tcp = (socket: WebSocket) => (socket as unknown as { _socket: import('node:net').Socket })._socket;
  if (resume) {
    const server = createResumeServer();
    server.attach(wss);
    // Sessions are read (and acknowledged) by the server itself; the app takes every message.
    server.sessions$.subscribe((session) => session.messages$.subscribe(() => {}));
    cleanups.push(() => server.close());
  }
  wss.on('connection', (socket) => {
    sockets.push(socket);
    // A resume session's handshake must be read: new links are paused only once `pause()` asks again.
    if (paused && !resume) tcp(socket).pause();
  });
  cleanups.push(
    () => new Promise<void>((resolve) => wss.close(() => resolve())),
    () => {
      for (const socket of sockets) socket.terminate();
    },
  );
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    sockets,
    pause() {
      paused = true;
      for (const socket of sockets) tcp(socket).pause();
    },
    resume() {
      paused = false;
      for (const socket of sockets) tcp(socket).resume();
    },
  };
}

/** Bytes passed to `sendAsync` and bytes whose promise resolved (rejections are failures here). */
function tally(socket: Socket) {
  const counts = { sent: 0, confirmed: 0, failed: 0 };
  const settled: Promise<void>[] = [];
  return {
    counts,
    send(data: Parameters<Socket['send']>[0], bytes: number) {
      counts.sent += bytes;
      settled.push(
        socket.sendAsync(data).then(
          () => {
            counts.confirmed += bytes;
          },
          () => {
            counts.failed++;
          },
        ),
      );
    },
    get unconfirmed() {
      return counts.sent - counts.confirmed;
    },
    all: () => Promise.all(settled),
  };
}

/** Lets the server read again and waits for every send to be confirmed: none failed, the count back to 0. */
async function confirmAll(
  server: { resume(): void },
  socket: Socket,
  sends: ReturnType<typeof tally>,
): Promise<void> {
  server.resume();
  await waitFor(sends.all(), { what: 'every send confirmed' });
  expect(sends.counts.failed).toBe(0);
  expect(socket.bufferedAmount).toBe(0);
}

async function open(url: string, options: HAWebSocketOptions = {}): Promise<Socket> {
  const socket = new HAWebSocket(url, options);
  cleanups.push(() => socket.close());
  await once(socket as unknown as EventTarget, 'open');
  return socket;
}

/** 21,845 euro signs: 65,535 bytes of UTF-8 (43,690 of UTF-16). */
const TEXT = '€'.repeat(21_845);
const TEXT_BYTES = 65_535;

/**
 * Sends 64 KiB messages (binary and, with `text`, text in turn), `perTick` a tick, until `ws`
 * itself holds more than 1 MiB (the kernel's buffers are full; a resumable link does not tell) or
 * `budget` bytes were sent, checking the count at every tick.
 */
async function fillPipe(
  socket: Socket,
  sends: ReturnType<typeof tally>,
  perTick: number,
  budget: number,
  text = true,
) {
  const payload = new Uint8Array(KIB64).fill(7);
  while (sends.counts.sent + perTick * KIB64 <= budget) {
    for (let i = 0; i < perTick; i++) {
      if (i % 2 === 0 || !text) sends.send(payload, KIB64);
      else sends.send(TEXT, TEXT_BYTES);
    }
    await macrotask();
    expect(socket.bufferedAmount).toBe(sends.unconfirmed);
    if ((socket.connection.link?.bufferedAmount ?? 0) > 1_048_576) return;
  }
}

it('plain: counts each unconfirmed send once, never what ws and the kernel buffer besides; 0 once all are written', async () => {
  const server = await pausableServer(false);
  const socket = await open(server.url);
  server.pause();
  const sends = tally(socket);
  // 200 x 64 KiB at most: the default queue (16 MiB, 512 B of bookkeeping each) takes them all.
  // Binary only: what is counted twice is the frames `ws` holds, whatever their payload.
  await fillPipe(socket, sends, 8, 200 * KIB64, false);
  // The pipe is full: `ws` holds frames and some sends are unconfirmed (what the bug counted twice).
  expect(socket.connection.link!.bufferedAmount).toBeGreaterThan(0);
  expect(sends.unconfirmed).toBeGreaterThan(0);
  expect(socket.bufferedAmount).toBe(sends.unconfirmed);
  expect(socket.bufferedAmount).toBeLessThanOrEqual(sends.counts.sent);
  server.resume();
  await waitFor(sends.all(), { what: 'every send confirmed' });
  expect(sends.counts).toEqual({ sent: sends.counts.sent, confirmed: sends.counts.sent, failed: 0 });
  expect(socket.bufferedAmount).toBe(0);
});

it('resume: counts each unacknowledged send once, by its own bytes; 0 once all are acknowledged', async () => {
  const server = await pausableServer(true);
  const socket = await open(server.url, { resume: true });
  server.pause();
  const sends = tally(socket);
  // 96 x 64 KiB: within the client's replay window (8 MiB) and its output high-water mark.
  await fillPipe(socket, sends, 8, 96 * KIB64);
  // The server reads nothing, so it acknowledges nothing: every byte sent is unconfirmed.
  expect(socket.bufferedAmount).toBe(sends.counts.sent);
  await confirmAll(server, socket, sends);
});

it('text counts its UTF-8 bytes (not 2 per UTF-16 unit); binary its byte length (views: their own bytes only)', async () => {
  const server = await pausableServer(false);
  server.pause();
  const texts = [
    'a'.repeat(1_000),
    'é'.repeat(100),
    '€'.repeat(100),
    '😀'.repeat(100),
    'x\ud800y',
    'z\udc00',
  ];
  const utf8 = texts.map((text) => Buffer.byteLength(text));
  // 1,000 + 200 + 300 + 400 + 5 (a lone surrogate is sent as U+FFFD, 3 bytes) + 4.
  expect(utf8).toEqual([1_000, 200, 300, 400, 5, 4]);
  const backing = new ArrayBuffer(4_096);
  const binaries: [Parameters<Socket['send']>[0], number][] = [
    [new ArrayBuffer(1_000), 1_000],
    [new Uint8Array(backing, 100, 300), 300],
    [new DataView(backing, 8, 40), 40],
    [new Float64Array(backing, 1_024, 10), 80],
    [Buffer.alloc(123), 123],
    // WebSocket's send takes a Blob, and so does this (sent as its bytes).
    [new Blob([new Uint8Array(700)]), 700],
  ];
  const expected = utf8.reduce((a, b) => a + b, 0) + binaries.reduce((a, [, bytes]) => a + bytes, 0);

  // While connecting: every send waits in the queue.
  const socket = new HAWebSocket(server.url);
  cleanups.push(() => socket.close());
  for (const text of texts) socket.send(text);
  for (const [data] of binaries) socket.send(data);
  expect(socket.bufferedAmount).toBe(expected);

  // Written on a link whose peer reads nothing, behind 64 KiB messages that fill the pipe: each
  // send is still counted once, by its own bytes.
  await once(socket as unknown as EventTarget, 'open');
  const sends = tally(socket);
  await fillPipe(socket, sends, 8, 200 * KIB64);
  for (let i = 0; i < texts.length; i++) sends.send(texts[i]!, utf8[i]!);
  for (const [data, bytes] of binaries) sends.send(data, bytes);
  await macrotask();
  expect(socket.connection.link!.bufferedAmount).toBeGreaterThan(0);
  expect(socket.bufferedAmount).toBe(sends.unconfirmed);
  server.resume();
  await waitFor(sends.all(), { what: 'every send confirmed' });
  expect(sends.counts.failed).toBe(0);
  await waitFor(() => socket.bufferedAmount === 0, { what: 'bufferedAmount 0' });
});

it('plain, across a link reset: requeued sends count once, on the next link too', async () => {
  const server = await pausableServer(false);
  const socket = await open(server.url, fast);
  server.pause();
  const sends = tally(socket);
  await fillPipe(socket, sends, 8, 200 * KIB64);
  expect(sends.unconfirmed).toBeGreaterThan(0);
  // The server drops the link: what it did not confirm goes back to the queue, counted once.
  const recovered = once(socket as unknown as EventTarget, 'recovered');
  server.sockets[0]!.terminate();
  await once(socket as unknown as EventTarget, 'recovering');
  await macrotask();
  expect(sends.unconfirmed).toBeGreaterThan(0);
  expect(socket.bufferedAmount).toBe(sends.unconfirmed);
  // Rewritten on the next link, whose peer reads nothing either (paused on connection).
  await recovered;
  for (let i = 0; i < 3; i++) {
    await macrotask();
    expect(socket.bufferedAmount).toBe(sends.unconfirmed);
  }
  // More sends, until the new link's pipe is full too.
  await fillPipe(socket, sends, 8, sends.counts.sent + 200 * KIB64);
  expect(socket.connection.link!.bufferedAmount).toBeGreaterThan(0);
  expect(socket.bufferedAmount).toBe(sends.unconfirmed);
  await confirmAll(server, socket, sends);
});

it('resume, across a link reset: replayed sends count once until acknowledged', async () => {
  const server = await pausableServer(true);
  const socket = await open(server.url, { resume: true, ...fast });
  server.pause();
  const sends = tally(socket);
  await fillPipe(socket, sends, 8, 96 * KIB64);
  expect(socket.bufferedAmount).toBe(sends.counts.sent);
  const recovered = once(socket as unknown as EventTarget, 'recovered');
  server.sockets[0]!.terminate();
  await once(socket as unknown as EventTarget, 'recovering');
  await macrotask();
  expect(socket.bufferedAmount).toBe(sends.counts.sent);
  await recovered;
  // The session resumed and replays what the server had not acknowledged: still counted once.
  for (let i = 0; i < 3; i++) {
    await macrotask();
    expect(socket.bufferedAmount).toBe(sends.unconfirmed);
  }
  await waitFor(sends.all(), { what: 'every send acknowledged' });
  expect(sends.counts.failed).toBe(0);
  expect(socket.bufferedAmount).toBe(0);
});

/**
 * What the browser package builds: the platform's WebSocket with no write callback, so a send is
 * confirmed once handed to it and the platform's own `bufferedAmount` holds it from then on (`ws`
 * stands in for a browser's here; its count includes frame headers, a browser's does not).
 */
const StandardHAWebSocket = defineHAWebSocket({
  WebSocket: WsWebSocket as unknown as WebSocketConstructor,
  defaultBinaryType: 'arraybuffer',
});

it("a platform that confirms sends on handing them to its WebSocket: the queue while no link takes them, then the socket's own count, never both", async () => {
  const server = await pausableServer(false);
  server.pause();
  const socket = new StandardHAWebSocket(server.url, fast);
  cleanups.push(() => socket.close());
  // Queued while connecting: counted by the queue, text in UTF-8.
  socket.send(TEXT);
  socket.send(new Uint8Array(1_000));
  expect(socket.bufferedAmount).toBe(TEXT_BYTES + 1_000);
  await once(socket as unknown as EventTarget, 'open');
  const link = () => socket.connection.link!.bufferedAmount!;
  // Sends of one tick, read in the same tick (their confirmations not yet run): once, in the socket.
  const payload = new Uint8Array(KIB64);
  for (let i = 0; i < 100; i++) {
    socket.send(payload);
    expect(socket.bufferedAmount).toBe(link());
  }
  await macrotask();
  expect(link()).toBeGreaterThan(0);
  expect(socket.bufferedAmount).toBe(link());
  // The server drops the link: what it held is gone with it, nothing is queued.
  server.sockets[0]!.terminate();
  await once(socket as unknown as EventTarget, 'recovering');
  expect(socket.bufferedAmount).toBe(0);
  socket.send('é'.repeat(10));
  expect(socket.bufferedAmount).toBe(20);
  server.resume();
  await once(socket as unknown as EventTarget, 'recovered');
  await waitFor(() => socket.bufferedAmount === 0, { what: 'bufferedAmount 0' });
});
