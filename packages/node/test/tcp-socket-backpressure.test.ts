/**
 * Issue 10 item 13: HATcpSocket's read side honours the Duplex's backpressure. A server sends
 * 32 MiB as fast as TCP lets it; the application does not read. The bytes buffered in the
 * stream stay within the readable high-water mark plus one socket read (TCP's flow control holds
 * the rest at the server), and once the application reads, every byte arrives exactly once, in
 * order (each byte's value is a function of its position).
 */
import type { Socket } from 'node:net';
import { createResumeServer } from '@lifeline/node/server';
import { HATcpSocket } from '@lifeline/node/tcp';
import { expect, test } from 'vitest';
import { cleanups } from './support/cleanups.js';
import { TcpTestServer, within } from './support/tcp-servers.js';

const TOTAL = 32 * 1024 * 1024;
const CHUNK = 64 * 1024;
const HIGH_WATER_MARK = 16_384;
/** Node reads a socket 64 KiB at a time: one read may land on top of a full buffer. */
const SOCKET_READ = 65_536;
const byteAt = (position: number) => position % 251;

function patterned(from: number, length: number): Buffer {
  const chunk = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) chunk[i] = byteAt(from + i);
  return chunk;
}

/** Writes TOTAL patterned bytes, honouring the socket's own backpressure; `progress` counts drains. */
function sendAll(socket: Socket, progress: { written: number; drains: number; done: boolean }) {
  const pump = () => {
    while (progress.written < TOTAL) {
      const length = Math.min(CHUNK, TOTAL - progress.written);
      const ok = socket.write(patterned(progress.written, length));
      progress.written += length;
      if (!ok) return;
    }
    progress.done = true;
  };
  socket.on('drain', () => {
    progress.drains++;
    pump();
  });
  pump();
}

/**
 * Waits for `socket` to connect, then, while nobody reads, samples what the stream holds until the
 * sender is done (it would be, if the client took everything) or has made no progress for a second
 * (TCP stopped it), bounded by 30 s. Returns the most the stream held.
 */
async function connectAndSample(
  socket: HATcpSocket,
  progress: { drains: number; done: boolean },
): Promise<number> {
  await within(new Promise((resolve) => socket.once('connect', resolve)), 10_000, () => 'connect');

  let maxBuffered = 0;
  let lastDrains = -1;
  let quietSince = performance.now();
  const started = performance.now();
  while (!progress.done && performance.now() - quietSince < 1_000 && performance.now() - started < 30_000) {
    if (progress.drains !== lastDrains) {
      lastDrains = progress.drains;
      quietSince = performance.now();
    }
    maxBuffered = Math.max(maxBuffered, socket.readableLength);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  maxBuffered = Math.max(maxBuffered, socket.readableLength);
  return maxBuffered;
}

test('a reader that does not read: buffered bytes stay within the high-water mark plus one socket read; then all 32 MiB arrive exactly once, in order', async () => {
  const progress = { written: 0, drains: 0, done: false };
  const server = await TcpTestServer.start((socket) => sendAll(socket, progress));
  cleanups.push(() => server.close());
  const socket = new HATcpSocket({
    port: server.port,
    mode: 'stream',
    readableHighWaterMark: HIGH_WATER_MARK,
  });
  cleanups.push(() => socket.destroy());
  const maxBuffered = await connectAndSample(socket, progress);
  console.log(
    `buffered at most ${maxBuffered} bytes against a ${HIGH_WATER_MARK}-byte mark; server wrote ${progress.written} of ${TOTAL} before TCP held it`,
  );
  expect(progress.done, 'the server wrote all 32 MiB although nobody read').toBe(false);
  expect(maxBuffered).toBeLessThanOrEqual(HIGH_WATER_MARK + SOCKET_READ);

  // Now the application reads: every byte once, in order.
  let received = 0;
  let misplaced = 0;
  const all = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) if (chunk[i] !== byteAt(received + i)) misplaced++;
      received += chunk.length;
      if (received >= TOTAL) resolve();
    });
  });
  await within(all, 60_000, () => `received ${received} of ${TOTAL}`);
  expect({ received, misplaced }).toEqual({ received: TOTAL, misplaced: 0 });
  expect(progress.done).toBe(true);
}, 120_000);

test('under the resume protocol too: a reader that does not read holds the high-water mark plus one socket read; then every message arrives exactly once, in order', async () => {
  const MESSAGES = 8_000;
  const SIZE = 1_024;
  const IN_FLIGHT = 256;
  const server = createResumeServer();
  cleanups.push(() => server.close());
  const progress = { sent: 0, acked: 0, drains: 0, done: false };
  server.sessions$.subscribe((session) => {
    // The application sends as fast as acknowledgements let it, IN_FLIGHT at most unacknowledged.
    const pump = () => {
      while (progress.sent < MESSAGES && progress.sent - progress.acked < IN_FLIGHT) {
        const message = Buffer.alloc(SIZE, byteAt(progress.sent));
        message.writeUInt32BE(progress.sent++);
        session.send(message).then(
          () => {
            progress.acked++;
            progress.drains++;
            if (progress.acked === MESSAGES) progress.done = true;
            pump();
          },
          () => {},
        );
      }
    };
    pump();
  });
  const { port } = await server.listen({ transport: 'tcp' });
  const socket = new HATcpSocket({
    port,
    mode: 'framed',
    resume: true,
    readableHighWaterMark: HIGH_WATER_MARK,
  });
  cleanups.push(() => socket.destroy());
  const maxBuffered = await connectAndSample(socket, progress);
  console.log(
    `resume: buffered at most ${maxBuffered} bytes; ${progress.acked} of ${MESSAGES} acknowledged before TCP held the rest`,
  );
  expect(progress.done, 'every message was acknowledged although nobody read').toBe(false);
  expect(maxBuffered).toBeLessThanOrEqual(HIGH_WATER_MARK + SOCKET_READ);

  const seen: number[] = [];
  let pending = Buffer.alloc(0);
  const all = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= SIZE) {
        seen.push(pending.readUInt32BE(0));
        pending = pending.subarray(SIZE);
      }
      if (seen.length >= MESSAGES) resolve();
    });
  });
  await within(all, 60_000, () => `received ${seen.length} of ${MESSAGES}`);
  const outOfPlace = seen.filter((n, i) => n !== i).length;
  expect({ received: seen.length, outOfPlace, leftover: pending.length }).toEqual({
    received: MESSAGES,
    outOfPlace: 0,
    leftover: 0,
  });
}, 120_000);
